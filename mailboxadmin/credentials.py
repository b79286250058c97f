"""Every stored credential column, and re-encrypting them under the first key."""

from dataclasses import dataclass, field

from django.apps import apps
from django.db import transaction

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


@dataclass
class RotationReport:
    examined: int = 0
    changed: int = 0
    undecryptable: list[str] = field(default_factory=list)


def rotate_credentials(*, batch_size: int = 1000, dry_run: bool = False, progress=None) -> RotationReport:
    """Re-encrypt every stored credential with the first key of FIELD_ENCRYPTION_KEYS.

    Reads batch_size rows at a time by primary key and writes the batch's re-encrypted
    values in one transaction, committed before the next batch is read, so memory stays
    flat and an interrupted run can simply be started again: values already under the
    first key are left alone. A value no key decrypts is reported by record and never
    written.
    """
    report = RotationReport()
    for label, column, record in CREDENTIAL_COLUMNS:
        model = apps.get_model(label)
        for batch in _batches(model, column, size=batch_size):
            rotated = []
            for instance in batch:
                report.examined += 1
                name = record.format(pk=instance.pk)
                try:
                    token = encryption.reencrypt(getattr(instance, column), record=name)
                except encryption.CredentialDecryptionError:
                    report.undecryptable.append(name)
                    continue
                if token is not None:
                    setattr(instance, column, token)
                    rotated.append(instance)
            report.changed += len(rotated)
            if rotated and not dry_run:
                with transaction.atomic():
                    model.objects.bulk_update(rotated, [column])
            if progress:
                progress(report)
    return report


def _batches(model, column: str, *, size: int):
    """The records holding a value (their pk and `column` only), `size` at a time in
    primary key order."""
    last_pk = 0
    while batch := list(
        model.objects.filter(pk__gt=last_pk).exclude(**{column: ""}).order_by("pk").only(column)[:size]
    ):
        yield batch
        last_pk = batch[-1].pk
