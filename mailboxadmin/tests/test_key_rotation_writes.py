"""How rotate_encryption_keys writes: each window of rows dealt out over eight committed
writes, so that on PostgreSQL every rewritten row stays on its page (a HOT update)."""

import io
from collections import defaultdict
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import DatabaseError, connection

from mailboxadmin import encryption
from mailboxadmin.credentials import WRITES_PER_WINDOW
from mailboxes.models import Mailbox

ON_POSTGRESQL = django_settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


@contextmanager
def mailbox_writes():
    """The ids of each UPDATE of the stored mailbox passwords, in the order sent."""
    writes = []

    def record(execute, sql, params, many, context):
        if sql.startswith("UPDATE") and "mailboxes_mailbox" in sql and "password_ciphertext" in sql:
            # SQLite: one (token, id) pair per row; PostgreSQL: an array of ids, one of tokens.
            writes.append([pk for _token, pk in params] if many else list(params[0]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield writes


@pytest.fixture
def mailboxes_with_passwords(make_user, profile):
    """Twenty user mailboxes with credentials, their ids in order."""
    users = [make_user() for _ in range(20)]
    ids = sorted(user.mailbox.pk for user in users)
    Mailbox.objects.filter(pk__in=ids).update(
        server_profile=profile,
        allow_credentials=True,
        username="svc",
        password_ciphertext=encryption.encrypt("Plain-Text-Secret-42"),
    )
    return ids


def rotate(*args) -> str:
    out = io.StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_each_write_holds_every_eighth_row_of_its_window(mailboxes_with_passwords, settings):
    ids = mailboxes_with_passwords
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]

    with mailbox_writes() as writes:
        rotate("--batch-size", "2")  # windows of 2 × 8 = 16 rows: ids[0:16], then ids[16:20]

    assert WRITES_PER_WINDOW == 8
    assert writes == [[ids[r], ids[r + 8]] for r in range(8)] + [[ids[16 + r]] for r in range(4)]


@pytest.mark.django_db
def test_rotation_rewrites_only_values_under_an_older_key(mailboxes_with_passwords, settings):
    ids = mailboxes_with_passwords
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    already = ids[::3]  # interleaved with the rest: the key tried first keeps changing
    Mailbox.objects.filter(pk__in=already).update(password_ciphertext=encryption.encrypt("Other-Secret-7"))

    with mailbox_writes() as writes:
        out = rotate("--batch-size", "3")

    assert "20 stored passwords examined; re-encrypted 13 with the first key" in out
    assert sorted(pk for write in writes for pk in write) == [pk for pk in ids if pk not in already]
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    passwords = {m.pk: m.get_password() for m in Mailbox.objects.filter(pk__in=ids)}
    assert passwords == {pk: "Other-Secret-7" if pk in already else "Plain-Text-Secret-42" for pk in ids}


@pytest.mark.django_db
def test_a_key_listed_twice_is_still_the_first_key(mailboxes_with_passwords, settings):
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS, new_key]
    rotate()

    with mailbox_writes() as writes:
        out = rotate()

    assert "re-encrypted 0 with the first key" in out
    assert writes == []


def page_of_each_row() -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, (ctid::text::point)[0]::int FROM mailboxes_mailbox")
        return dict(cursor.fetchall())


def transaction_of_each_row() -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, xmin::text FROM mailboxes_mailbox")
        return dict(cursor.fetchall())


# Outside a test transaction, as the command runs: its writes then go through the writer
# thread's own connection, each committed. serialized_rollback restores the data
# migration's groups after the flush, like the other transactional tests.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not ON_POSTGRESQL, reason="HOT updates and xmin are PostgreSQL's")
def test_committed_writes_leave_every_row_on_its_page_on_postgresql(settings):
    from bench.seed import seed

    # COPY packs the rows in id order at the table's fillfactor, as in production.
    seed(480, credential_token=encryption.encrypt("Plain-Text-Secret-42"))
    ids = sorted(Mailbox.objects.values_list("pk", flat=True))
    pages_before = page_of_each_row()
    assert len(set(pages_before.values())) >= 25  # 16-19 rows a page
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]

    out = rotate("--batch-size", "10")  # windows of 80 rows, about five pages

    assert "re-encrypted 480 with the first key" in out
    committed = defaultdict(set)
    for pk, xid in transaction_of_each_row().items():
        committed[xid].add(pk)
    windows = [ids[start : start + 80] for start in range(0, len(ids), 80)]
    assert sorted(map(sorted, committed.values())) == sorted(
        window[residue::8] for window in windows for residue in range(8)
    )
    # A row rewritten on another page was a non-HOT update (the password has no index).
    # Writing each page's rows in one transaction moves about a third of them; an
    # autoanalyze running meanwhile may hold back the pruning of a few.
    pages_after = page_of_each_row()
    moved = [pk for pk in ids if pages_after[pk] != pages_before[pk]]
    assert len(moved) <= len(ids) // 20


@contextmanager
def update_refused_for(pk: int):
    """A trigger that makes the database refuse any UPDATE of mailbox `pk`."""
    if ON_POSTGRESQL:
        create = [
            "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse_update BEFORE UPDATE ON mailboxes_mailbox FOR EACH ROW "
            f"WHEN (OLD.id = {int(pk)}) EXECUTE FUNCTION refuse_update()",
        ]
        drop = ["DROP TRIGGER refuse_update ON mailboxes_mailbox", "DROP FUNCTION refuse_update()"]
    else:
        create = [
            f"CREATE TRIGGER refuse_update BEFORE UPDATE ON mailboxes_mailbox WHEN OLD.id = {int(pk)} "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ]
        drop = ["DROP TRIGGER refuse_update"]
    with connection.cursor() as cursor:
        for statement in create:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for statement in drop:
                cursor.execute(statement)


# On PostgreSQL the writes run in the writer thread, on SQLite in the command's own.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_refused_write_stops_the_run_and_a_second_run_finishes_it(mailboxes_with_passwords, settings):
    ids = mailboxes_with_passwords
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    first_window = ids[:16]  # --batch-size 2: writes [0, 8], [1, 9], … of the first 16 rows
    tokens_before = dict(Mailbox.objects.values_list("pk", "password_ciphertext"))

    with update_refused_for(first_window[3]), pytest.raises(DatabaseError, match="refused by the test"):
        rotate("--batch-size", "2")

    rewritten = {pk for pk in ids if Mailbox.objects.get(pk=pk).password_ciphertext != tokens_before[pk]}
    assert rewritten == {first_window[r] for r in (0, 1, 2)} | {first_window[r + 8] for r in (0, 1, 2)}

    out = rotate("--batch-size", "2")

    assert "re-encrypted 14 with the first key" in out
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert {m.get_password() for m in Mailbox.objects.filter(pk__in=ids)} == {"Plain-Text-Secret-42"}
