"""Bind each stored OAuth client secret and service account key to the profile's
incoming and outgoing servers too, beside the token URL it is already bound to (SPEC 9):
the tokens it buys go only where the secret was entered for.

A secret is bound to the servers its profile has now, and keeps the token URL it was
entered for. A value that no key in FIELD_ENCRYPTION_KEYS decrypts is left as it is (it
is reported, by record, when it is used). Reversing drops the servers again.
"""

from django.db import migrations

from mailboxadmin import encryption
from serverprofiles.bindings import TOKEN_URL, server_destination

COLUMNS = ("oauth_client_secret_ciphertext", "oauth_service_account_key_ciphertext")


def _read(token: str):
    try:
        return encryption.decrypt_bound(token, record="")
    except encryption.CredentialDecryptionError:
        return None


def _token_urls(bound) -> tuple:
    return tuple(d for d in bound.destinations if d.tls == TOKEN_URL)


def _rewrite(apps, destinations_of) -> None:
    EmailServerProfile = apps.get_model("serverprofiles", "EmailServerProfile")
    for profile in EmailServerProfile.objects.all():
        changed = []
        for column in COLUMNS:
            bound = _read(getattr(profile, column))
            if bound is None or not bound.secret or bound.destinations is None:
                continue
            destinations = destinations_of(profile, bound)
            if set(destinations) != set(bound.destinations):
                setattr(profile, column, encryption.encrypt_bound(bound.secret, destinations))
                changed.append(column)
        if changed:
            profile.save(update_fields=changed)


def bind(apps, schema_editor):
    _rewrite(
        apps,
        lambda profile, bound: (
            *_token_urls(bound),
            server_destination(profile, "incoming"),
            server_destination(profile, "outgoing"),
        ),
    )


def unbind(apps, schema_editor):
    _rewrite(apps, lambda profile, bound: _token_urls(bound))


class Migration(migrations.Migration):
    dependencies = [("serverprofiles", "0005_oauth")]

    operations = [migrations.RunPython(bind, unbind, elidable=False)]
