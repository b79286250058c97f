"""Bind every stored password to the servers it is used with now (SPEC 9).

Mailbox and server profile passwords alike, in one migration: a mailbox's password to
its profile's incoming and outgoing servers (none without a profile: it must be entered
again); a profile's incoming password to its incoming server (and the outgoing one when
outgoing uses the same settings), its outgoing password to its outgoing server. A value
already bound, or one that no key in FIELD_ENCRYPTION_KEYS decrypts, is left as it is
(the latter is reported, by record, when it is used). Reversing writes the bare secrets
back, as they were stored before.
"""

from django.db import migrations

from mailboxadmin import encryption
from serverprofiles.bindings import mailbox_password_destinations, profile_password_destinations

BATCH = 1000
PROFILE_FIELDS = (
    "server_type",
    "incoming_server",
    "incoming_port",
    "incoming_ssl",
    "outgoing_server",
    "outgoing_port",
    "outgoing_ssl",
    "use_same_settings_for_outgoing",
)


def _read(token: str):
    try:
        return encryption.decrypt_bound(token, record="")
    except encryption.CredentialDecryptionError:
        return None


def _windows(queryset, column: str):
    last_pk = 0
    while rows := list(queryset.filter(pk__gt=last_pk).exclude(**{column: ""}).order_by("pk")[:BATCH]):
        yield rows
        last_pk = rows[-1].pk


def _bind(rows, column: str, destinations_of) -> list:
    changed = []
    for row in rows:
        bound = _read(getattr(row, column))
        if bound is not None and bound.destinations is None:
            setattr(row, column, encryption.encrypt_bound(bound.secret, destinations_of(row)))
            changed.append(row)
    return changed


def _unbind(rows, column: str, _destinations_of) -> list:
    changed = []
    for row in rows:
        bound = _read(getattr(row, column))
        if bound is not None and bound.destinations is not None:
            setattr(row, column, encryption.encrypt(bound.secret))
            changed.append(row)
    return changed


def _rewrite(apps, change) -> None:
    Mailbox = apps.get_model("mailboxes", "Mailbox")
    EmailServerProfile = apps.get_model("serverprofiles", "EmailServerProfile")
    profiles = {p.pk: p for p in EmailServerProfile.objects.only("pk", *PROFILE_FIELDS)}
    for direction in ("incoming", "outgoing"):
        column = f"{direction}_password_ciphertext"
        for rows in _windows(EmailServerProfile.objects.all(), column):
            changed = change(rows, column, lambda p, d=direction: profile_password_destinations(p, d))
            EmailServerProfile.objects.bulk_update(changed, [column])
    mailboxes = Mailbox.objects.only("pk", "server_profile_id", "password_ciphertext")
    for rows in _windows(mailboxes, "password_ciphertext"):
        changed = change(
            rows,
            "password_ciphertext",
            lambda m: mailbox_password_destinations(profiles.get(m.server_profile_id)),
        )
        Mailbox.objects.bulk_update(changed, ["password_ciphertext"])


def bind(apps, schema_editor):
    _rewrite(apps, _bind)


def unbind(apps, schema_editor):
    _rewrite(apps, _unbind)


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0008_administer_roles"),
        ("serverprofiles", "0002_allow_unencrypted_credentials"),
    ]

    operations = [migrations.RunPython(bind, unbind, elidable=False)]
