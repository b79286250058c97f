"""Every stored credential column, and re-encrypting them under the first key."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.apps import apps
from django.db import connection, transaction

from mailboxadmin import encryption

# (model label, ciphertext column, how a record is named in messages)
CREDENTIAL_COLUMNS = (
    ("mailboxes.Mailbox", "password_ciphertext", "mailbox id {pk}"),
    (
        "serverprofiles.EmailServerProfile",
        "incoming_password_ciphertext",
        "email server profile id {pk} (incoming)",
    ),
    (
        "serverprofiles.EmailServerProfile",
        "outgoing_password_ciphertext",
        "email server profile id {pk} (outgoing)",
    ),
    (
        "serverprofiles.EmailServerProfile",
        "oauth_client_secret_ciphertext",
        "email server profile id {pk} (OAuth client secret)",
    ),
    (
        "serverprofiles.EmailServerProfile",
        "oauth_service_account_key_ciphertext",
        "email server profile id {pk} (OAuth service account key)",
    ),
)

# Committed writes a window of rows is spread over. A page of the mailbox table holds
# 16-19 rows and, at fillfactor 80, free room for about 4 more versions. Were a page's
# rows all rewritten in one transaction, the room would run out after ~4 and the rest
# would be non-HOT updates, each touching every index of the table. Dealing the rows of
# a window out over 8 writes puts at most 3 rows of a page in any one write; each write
# commits before the next touches the page, which then prunes the versions it left
# behind (no snapshot holds them), so every update finds room and stays HOT. 8 rather
# than the bare minimum leaves room for a write whose predecessor was not yet pruned.
WRITES_PER_WINDOW = 8


@dataclass
class RotationReport:
    examined: int = 0
    changed: int = 0
    undecryptable: list[str] = field(default_factory=list)


def rotate_credentials(*, batch_size: int = 1000, dry_run: bool = False, progress=None) -> RotationReport:
    """Re-encrypt every stored credential with the first key of FIELD_ENCRYPTION_KEYS.

    Reads a window of batch_size × WRITES_PER_WINDOW rows by primary key and writes its
    re-encrypted values in WRITES_PER_WINDOW transactions of at most batch_size rows,
    each committed on its own and holding every WRITES_PER_WINDOW-th row of the window
    (see WRITES_PER_WINDOW for why). An interrupted run can simply be started again:
    values already under the first key are left alone. A value no key decrypts is
    reported by record and never written.
    """
    report = RotationReport()
    reencrypt = encryption.Reencryptor()
    with _window_writer(dry_run=dry_run) as write_window:
        for label, column, record in CREDENTIAL_COLUMNS:
            model = apps.get_model(label)
            for rows in _windows(model, column, size=batch_size * WRITES_PER_WINDOW):
                updates = []
                for pk, token in rows:
                    report.examined += 1
                    try:
                        rotated = reencrypt(token, record=record.format(pk=pk))
                    except encryption.CredentialDecryptionError:
                        report.undecryptable.append(record.format(pk=pk))
                        continue
                    if rotated is not None:
                        updates.append((pk, rotated))
                report.changed += len(updates)
                if updates:
                    write_window(model, column, updates)
                if progress:
                    progress(report)
    return report


def _windows(model, column: str, *, size: int):
    """The (pk, token) rows holding a value, `size` at a time in primary key order."""
    last_pk = 0
    while rows := list(
        model.objects.filter(pk__gt=last_pk)
        .exclude(**{column: ""})
        .order_by("pk")
        .values_list("pk", column)[:size]
    ):
        yield rows
        last_pk = rows[-1][0]


@contextmanager
def _window_writer(*, dry_run: bool):
    """A function that writes a window's updates, dealt out over WRITES_PER_WINDOW commits.

    On PostgreSQL, outside a caller's transaction (whose rows a second connection would
    not see), the writes run on a second connection in one thread: psycopg2 lets go of
    the GIL while the server works, so the next window is decrypted and re-encrypted
    meanwhile. At most one window waits to be written, and a failed write is raised
    here before anything else is written.
    """

    def write_window(model, column, updates):
        for residue in range(WRITES_PER_WINDOW):
            if write := updates[residue::WRITES_PER_WINDOW]:
                _write(model, column, write)

    if dry_run:
        yield lambda model, column, updates: None
    elif connection.vendor != "postgresql" or connection.in_atomic_block or not connection.get_autocommit():
        yield write_window
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rotate-writer") as writer:
            pending = writer.submit(lambda: None)

            def write_window_in_thread(model, column, updates):
                nonlocal pending
                pending.result()
                pending = writer.submit(write_window, model, column, updates)

            try:
                yield write_window_in_thread
                pending.result()
            finally:
                writer.submit(lambda: connection.close())  # the writer thread's own connection


def _write(model, column: str, updates: list[tuple[int, str]]) -> None:
    # Table and column names come from CREDENTIAL_COLUMNS, never from input.
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = connection.ops.quote_name(column)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            ids, tokens = zip(*updates, strict=True)
            cursor.execute(
                f"UPDATE {table} AS t SET {quoted} = v.token"  # noqa: S608
                " FROM unnest(%s::bigint[], %s::text[]) AS v(id, token) WHERE t.id = v.id",
                [list(ids), list(tokens)],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET {quoted} = %s WHERE id = %s",  # noqa: S608
                [(token, pk) for pk, token in updates],
            )
