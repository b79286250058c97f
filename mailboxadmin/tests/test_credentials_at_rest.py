"""SPEC section 4: credentials encrypted at rest, write-only, rotatable."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from mailboxadmin import encryption
from mailboxadmin.encryption import CredentialDecryptionError
from mailboxes.models import Mailbox
from mailboxes.services.mailboxes import mailbox_save
from serverprofiles.models import AuthenticationMethod, EmailServerProfile

pytestmark = pytest.mark.django_db

SECRET = "Plain-Text-Secret-42"


def raw_column(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def mailbox_with_password(make_user, profile):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox.allow_credentials, mailbox.username = True, "alice"
    mailbox.set_password(SECRET)
    return mailbox_save(mailbox)


@pytest.fixture
def profile_with_password(make_profile):
    return make_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS, incoming_username="svc", password=SECRET
    )


def test_mailbox_password_column_holds_ciphertext(mailbox_with_password):
    stored = raw_column("mailboxes_mailbox", "password_ciphertext", mailbox_with_password.pk)
    assert SECRET not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert Mailbox.objects.get(pk=mailbox_with_password.pk).get_password() == SECRET


def test_profile_password_column_holds_ciphertext(profile_with_password):
    stored = raw_column(
        "serverprofiles_emailserverprofile", "incoming_password_ciphertext", profile_with_password.pk
    )
    assert SECRET not in stored and stored


def test_repr_and_str_never_show_the_password(mailbox_with_password, profile_with_password):
    for obj in (mailbox_with_password, profile_with_password):
        assert SECRET not in repr(obj) and SECRET not in str(obj)


def test_each_encryption_differs(mailbox_with_password, make_user):
    # The same password for the same server on another record: still another token.
    # (Entering a record's own password again keeps its token: nothing changed.)
    other = make_user().mailbox
    other.server_profile = mailbox_with_password.server_profile
    other.set_password(SECRET)
    assert other.password_ciphertext != mailbox_with_password.password_ciphertext


def test_changing_secret_key_leaves_credentials_readable(mailbox_with_password, settings):
    settings.SECRET_KEY = "a-completely-different-secret-key"
    assert Mailbox.objects.get(pk=mailbox_with_password.pk).get_password() == SECRET


def test_wrong_key_raises_an_error_naming_the_record(mailbox_with_password, settings):
    before = raw_column("mailboxes_mailbox", "password_ciphertext", mailbox_with_password.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    mailbox = Mailbox.objects.get(pk=mailbox_with_password.pk)
    with pytest.raises(CredentialDecryptionError) as info:
        mailbox.get_password()
    assert mailbox.email in str(info.value)
    assert "gAAAA" not in str(info.value)
    mailbox.name = "Renamed"
    mailbox_save(mailbox)  # saving other fields never rewrites the stored value
    assert raw_column("mailboxes_mailbox", "password_ciphertext", mailbox.pk) == before


def test_rotation_to_a_new_key_keeps_every_credential(mailbox_with_password, profile_with_password, settings):
    new_key = Fernet.generate_key().decode()
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    out = io.StringIO()
    call_command("rotate_encryption_keys", "--batch-size", "1", stdout=out)
    assert "re-encrypted 2 with the first key" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old keys removed
    assert Mailbox.objects.get(pk=mailbox_with_password.pk).get_password() == SECRET
    assert EmailServerProfile.objects.get(pk=profile_with_password.pk).get_incoming_password() == SECRET


def test_second_rotation_changes_nothing(mailbox_with_password, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "re-encrypted 0" in out.getvalue()


def test_dry_run_counts_and_writes_nothing(mailbox_with_password, settings):
    before = raw_column("mailboxes_mailbox", "password_ciphertext", mailbox_with_password.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    out = io.StringIO()
    call_command("rotate_encryption_keys", "--dry-run", stdout=out)
    assert "would re-encrypt 1" in out.getvalue()
    assert raw_column("mailboxes_mailbox", "password_ciphertext", mailbox_with_password.pk) == before


def test_undecryptable_value_is_named_and_left_unchanged(mailbox_with_password, make_user, profile, settings):
    before = raw_column("mailboxes_mailbox", "password_ciphertext", mailbox_with_password.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the original keys are lost
    with pytest.raises(CommandError, match=f"mailbox id {mailbox_with_password.pk}"):
        call_command("rotate_encryption_keys", stdout=io.StringIO())
    assert raw_column("mailboxes_mailbox", "password_ciphertext", mailbox_with_password.pk) == before


def test_rotation_output_never_shows_a_secret(mailbox_with_password, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_encryption_keys", stdout=out, stderr=err)
    assert SECRET not in out.getvalue() + err.getvalue()
    assert "gAAAA" not in out.getvalue() + err.getvalue()


def test_generate_encryption_key_prints_a_working_fernet_key():
    out = io.StringIO()
    call_command("generate_encryption_key", stdout=out)
    key = out.getvalue().strip()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("rotate_encryption_keys", "--batch-size", "0")


def test_a_binding_compares_host_names_lowercased_and_as_idna():
    assert encryption.Destination.of(" IMAP.Bücher.Example. ", 993, True) == encryption.Destination(
        "imap.xn--bcher-kva.example", 993, "ssl"
    )
