"""SPEC 9: a stored password goes only to the server it was entered for.

The exfiltration attempts of issue 13 (finding 2) run against fake servers on loopback
that accept any login and record what they receive: none of them may receive a password.
"""

import importlib
import json

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.exceptions import PermissionDenied

from mailboxadmin import encryption
from mailboxadmin.credentials import rotate_credentials
from mailboxes.models import Mailbox, TestStatus
from mailboxes.services.mailboxes import mailbox_rebind_password, mailbox_save
from mailboxes.services.testing import mailbox_test_and_enable
from serverprofiles.connection_tests import profile_test_connection
from serverprofiles.connectors import Cause
from serverprofiles.models import AuthenticationMethod, EmailServerProfile
from serverprofiles.services import profile_save
from tests.fixtures.admin import messages_of
from tests.fixtures.mailservers import MAIL_PASSWORD, MAIL_USERNAME
from tests.fixtures.ui import page_form_data, page_messages

CHANGELIST = "/admin/mailboxes/mailbox/"
PROFILE_SECRET = "Svc-Secret-Of-Contoso-41"

bind_credentials = importlib.import_module("mailboxes.migrations.0009_bind_credentials")


def fresh(mailbox) -> Mailbox:
    return Mailbox.objects.get(pk=mailbox.pk)


def run_action(client, action, mailboxes, **fields):
    data = {"action": action, "index": "0", "_selected_action": [str(m.pk) for m in mailboxes], **fields}
    return client.post(CHANGELIST, data, follow=True)


def destinations(token: str) -> set[tuple]:
    bound = encryption.decrypt_bound(token, record="test")
    return {(d.host, d.port, d.tls) for d in bound.destinations}


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def recording_profile(make_profile, recording_servers):
    """A profile a Mailbox Manager could make, pointing at the recording servers."""

    def make(**fields):
        return make_profile(
            name="Attacker's",
            incoming_server=recording_servers.host,
            incoming_port=recording_servers.imap_port,
            incoming_ssl=False,
            outgoing_server=recording_servers.host,
            outgoing_port=recording_servers.smtp_port,
            outgoing_ssl=False,
            timeout_ms=2000,
            **fields,
        )

    return make


# Binding ----------------------------------------------------------------------------


def test_a_mailbox_password_is_bound_to_its_profiles_servers_inside_its_token(make_profile, make_user):
    profile = make_profile(
        incoming_server="IMAP.Example.Test", incoming_ssl=False, outgoing_server="smtp.example.test"
    )
    mailbox = make_user().mailbox
    mailbox.server_profile, mailbox.allow_credentials, mailbox.username = profile, True, "alice"
    mailbox.set_password("Alice-Secret-1")
    mailbox = mailbox_save(mailbox)

    assert destinations(mailbox.password_ciphertext) == {
        ("imap.example.test", 143, "starttls"),
        ("smtp.example.test", 465, "ssl"),
    }
    assert fresh(mailbox).get_password() == "Alice-Secret-1"


def test_a_profile_password_is_bound_to_incoming_and_outgoing_when_they_share_settings(make_profile):
    profile = make_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username="svc",
        password=PROFILE_SECRET,
    )

    assert destinations(profile.incoming_password_ciphertext) == {
        ("imap.example.test", 993, "ssl"),
        ("smtp.example.test", 465, "ssl"),
    }


def test_a_form_changing_profile_and_password_together_binds_to_the_new_profile(
    sysadmin_client, make_user, make_profile
):
    old, new = make_profile(name="Old"), make_profile(name="New", incoming_server="imap.new.test")
    mailbox = make_user().mailbox
    mailbox.server_profile, mailbox.allow_credentials, mailbox.username = old, True, "alice"
    mailbox.set_password("Alice-Secret-1")
    mailbox = mailbox_save(mailbox)
    url = f"/mailboxes/{mailbox.pk}/"

    sysadmin_client.post(url, page_form_data(sysadmin_client, url, server_profile=new.pk, password="Alice-2"))

    assert ("imap.new.test", 993, "ssl") in destinations(fresh(mailbox).password_ciphertext)


# Exfiltration attempts (issue 13, finding 2) ------------------------------------------


def test_the_recording_servers_do_record_a_password_sent_to_them(
    recording_profile, recording_servers, make_test_mailbox, no_approval_required
):
    # The check below would be worthless if the fake servers could not catch a password.
    mailbox = make_test_mailbox(recording_profile(allow_unencrypted_credentials=True))

    mailbox_test_and_enable(mailbox)

    assert recording_servers.recording.holds_secret(MAIL_PASSWORD, MAIL_USERNAME)


def test_test_connection_with_a_changed_host_and_empty_password_sends_nothing(
    manager_client, make_profile, recording_servers
):
    profile = make_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username="svc@contoso.test",
        password=PROFILE_SECRET,
        incoming_server="imap.contoso.test",
        outgoing_server="smtp.contoso.test",
    )
    url = f"/serverprofiles/{profile.pk}/"
    data = page_form_data(
        manager_client,
        url,
        incoming_server=recording_servers.host,
        incoming_port=recording_servers.imap_port,
        incoming_ssl=False,
        outgoing_server=recording_servers.host,
        outgoing_port=recording_servers.smtp_port,
        outgoing_ssl=False,
        incoming_password="",
        test_connection="1",
    )

    response = manager_client.post(url, data)

    assert recording_servers.recording.connections == 0
    assert not recording_servers.recording.holds_secret(PROFILE_SECRET, "svc@contoso.test")
    content = response.content.decode()
    assert PROFILE_SECRET not in content
    assert (
        "the stored password was entered for imap.contoso.test:993 and smtp.contoso.test:465; "
        f"enter it again to use it with 127.0.0.1:{recording_servers.imap_port}"
    ) in " ".join(page_messages(response))
    assert fresh_profile(profile).incoming_server == "imap.contoso.test"  # nothing saved


def fresh_profile(profile) -> EmailServerProfile:
    return EmailServerProfile.objects.get(pk=profile.pk)


def test_set_server_profile_to_another_host_then_test_and_enable_sends_no_password(
    manager, client_for, make_test_server_profile, make_test_mailbox, recording_profile, recording_servers,
    no_approval_required,
):  # fmt: skip
    mailboxes = [make_test_mailbox(make_test_server_profile()) for _ in range(2)]
    attacker = recording_profile()
    client = client_for(manager)

    response = run_action(client, "set_server_profile", mailboxes, server_profile=attacker.pk, apply="yes")
    assert messages_of(response) == ["2 updated."]
    run_action(client, "test_and_enable", mailboxes)

    assert recording_servers.recording.connections == 0
    for mailbox in map(fresh, mailboxes):
        assert mailbox.incoming_status == mailbox.outgoing_status == TestStatus.FAILURE
        assert mailbox.incoming_error.startswith(
            "Password entered for another server: the stored password was entered for 127.0.0.2:"
        )
        assert (
            f"enter it again to use it with 127.0.0.1:{recording_servers.imap_port}" in mailbox.incoming_error
        )
        assert MAIL_PASSWORD not in mailbox.incoming_error + mailbox.outgoing_error
        for alert in mailbox.alerts.all():
            assert MAIL_PASSWORD not in alert.message


def test_a_plain_text_server_without_starttls_receives_no_password(
    recording_profile, recording_servers, make_test_mailbox, no_approval_required
):
    # The password was typed for this very server: only the lack of TLS stops it.
    mailbox = make_test_mailbox(recording_profile())

    result = mailbox_test_and_enable(mailbox)

    assert recording_servers.recording.connections == 2  # greeted, then left
    assert not recording_servers.recording.holds_secret(MAIL_PASSWORD, MAIL_USERNAME)
    assert b"LOGIN" not in recording_servers.recording.data
    assert b"AUTH" not in recording_servers.recording.data
    causes = {outcome.cause for outcome in result.outcomes.values() if outcome is not None}
    assert causes == {Cause.ENCRYPTION_REQUIRED}
    assert fresh(mailbox).incoming_error == (
        f"No encrypted connection: 127.0.0.1:{recording_servers.imap_port} (IMAP) offers no STARTTLS, "
        'so the connection is not encrypted, and the server profile does not "Allow credentials over '
        'unencrypted connections". Nothing was sent: turn on Use SSL, or enable TLS on the server.'
    )


# Entering the password again ---------------------------------------------------------


def test_a_moved_mailbox_is_refused_until_its_password_is_entered_again(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile())
    other = make_test_server_profile(incoming="pop3")  # another port; the same SMTP server
    mailbox.server_profile = other
    mailbox = mailbox_save(mailbox)

    refused = mailbox_test_and_enable(mailbox)

    assert refused.outcomes["incoming"].cause == Cause.PASSWORD_FOR_ANOTHER_SERVER
    assert refused.outcomes["outgoing"].ok  # still the server it was entered for

    mailbox.set_password(MAIL_PASSWORD)
    mailbox = mailbox_save(mailbox)
    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes["incoming"].ok, result.outcomes["incoming"].message
    assert result.outcomes["outgoing"].ok


def test_set_mailbox_credentials_binds_the_password_to_the_current_profile(
    run, monkeypatch, make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile())
    mailbox.server_profile = make_test_server_profile(incoming="pop3")
    mailbox = mailbox_save(mailbox)
    monkeypatch.setenv("MAILBOX_PASSWORD", MAIL_PASSWORD)

    run(
        "set_mailbox_credentials",
        mailbox.email,
        "--username",
        MAIL_USERNAME,
        "--password-env",
        "MAILBOX_PASSWORD",
    )

    assert not mailbox_test_and_enable(mailbox).failed


def test_a_profile_location_change_needs_the_profile_password_again(
    make_test_server_profile, dovecot, trust_test_certificate
):
    profile = make_test_server_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        password=MAIL_PASSWORD,
    )
    assert profile_test_connection(profile).ok
    edited = fresh_profile(profile)
    edited.incoming_server = dovecot.host  # the same Dovecot, at another address (with STARTTLS)
    profile_save(edited)

    refused = profile_test_connection(fresh_profile(profile))

    assert refused.incoming.cause == Cause.PASSWORD_FOR_ANOTHER_SERVER
    assert refused.incoming.message.startswith(
        "Password entered for another server: the stored password was entered for "
        f"127.0.0.2:{profile.incoming_port}"
    )
    again = fresh_profile(profile)
    again.set_incoming_password(MAIL_PASSWORD)
    profile_save(again)
    assert profile_test_connection(fresh_profile(profile)).ok


def test_a_change_of_tls_mode_alone_is_named_in_the_refusal(make_profile):
    profile = make_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username="svc",
        password=PROFILE_SECRET,
        incoming_port=993,
    )
    profile.incoming_ssl = False  # same host and port, STARTTLS instead of implicit TLS

    result = profile_test_connection(profile)

    assert result.incoming.message == (
        "Password entered for another server: the stored password was entered for "
        "imap.example.test:993 (SSL); enter it again to use it with imap.example.test:993 (STARTTLS). "
        "Nothing was sent."
    )


# Re-binding by a System Administrator ---------------------------------------------------


def test_rebind_is_offered_only_to_a_system_administrator(
    client_for, superuser, manager, readonly, make_user
):
    mailbox = make_user().mailbox

    def offered(user) -> bool:
        response = client_for(user).get(CHANGELIST)
        action_form = response.context["action_form"] if response.status_code == 200 else None
        return action_form is not None and "rebind_passwords" in dict(action_form.fields["action"].choices)

    assert offered(superuser)
    assert not offered(manager)
    assert not offered(readonly)
    response = run_action(client_for(manager), "rebind_passwords", [mailbox])
    assert "No action selected." in messages_of(response)


def test_rebind_lets_a_moved_mailbox_use_its_password_at_the_new_server(
    client_for, superuser, make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile())
    mailbox.server_profile = make_test_server_profile(incoming="pop3")
    mailbox = mailbox_save(mailbox)

    response = run_action(client_for(superuser), "rebind_passwords", [mailbox])

    assert messages_of(response) == ["1 re-bound."]
    assert not mailbox_test_and_enable(mailbox).failed


def test_rebind_service_refuses_a_mailbox_manager(manager, make_test_server_profile, make_test_mailbox):
    mailbox = make_test_mailbox(make_test_server_profile())
    with pytest.raises(PermissionDenied, match="System Administrator"):
        mailbox_rebind_password(mailbox=mailbox, actor=manager)


def test_profile_rebind_is_offered_only_to_a_system_administrator(client_for, superuser, manager, profile):
    url = "/admin/serverprofiles/emailserverprofile/"

    def offered(user) -> bool:
        response = client_for(user).get(url)
        return "rebind_passwords" in dict(response.context["action_form"].fields["action"].choices)

    assert offered(superuser)
    assert not offered(manager)


# Key rotation and values stored before binding ----------------------------------------------


def test_rotation_keeps_each_binding(settings, make_test_server_profile, make_test_mailbox):
    mailbox = make_test_mailbox(make_test_server_profile())
    before = mailbox.password_ciphertext
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]

    report = rotate_credentials()

    after = fresh(mailbox).password_ciphertext
    assert report.changed == 1 and after != before
    assert encryption.decrypt_bound(after, record="") == encryption.decrypt_bound(before, record="")


def test_values_stored_before_binding_are_bound_by_the_migration(
    make_test_server_profile, make_user, make_profile
):
    profile = make_test_server_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        password=MAIL_PASSWORD,
    )
    mailbox = make_user().mailbox
    mailbox.server_profile, mailbox.allow_credentials, mailbox.username = make_profile(), True, "alice"
    mailbox.set_password("Alice-Secret-1")
    mailbox = mailbox_save(mailbox)
    legacy_profile, legacy_mailbox = encryption.encrypt(MAIL_PASSWORD), encryption.encrypt("Alice-Secret-1")
    EmailServerProfile.objects.filter(pk=profile.pk).update(incoming_password_ciphertext=legacy_profile)
    Mailbox.objects.filter(pk=mailbox.pk).update(password_ciphertext=legacy_mailbox)
    assert profile_test_connection(fresh_profile(profile)).incoming.cause == Cause.PASSWORD_FOR_ANOTHER_SERVER

    bind_credentials.bind(apps, None)

    assert profile_test_connection(fresh_profile(profile)).ok
    assert destinations(fresh(mailbox).password_ciphertext) == {
        ("imap.example.test", 993, "ssl"),
        ("smtp.example.test", 465, "ssl"),
    }
    assert fresh(mailbox).get_password() == "Alice-Secret-1"

    bind_credentials.unbind(apps, None)  # and back, as the migration is reversed

    assert encryption.decrypt_bound(fresh(mailbox).password_ciphertext, record="").destinations is None
    assert fresh(mailbox).get_password() == "Alice-Secret-1"


def test_apply_config_binds_the_password_it_sets_to_the_profile_it_names(
    run, tmp_path, monkeypatch, make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile())
    other = make_test_server_profile(incoming="pop3")
    monkeypatch.setenv("MAILBOX_PASSWORD", MAIL_PASSWORD)
    path = tmp_path / "config.json"
    entry = {"email": mailbox.email, "server_profile": other.name, "password_env": "MAILBOX_PASSWORD"}
    path.write_text(json.dumps({"mailboxes": [entry]}))

    run("apply_config", str(path))

    assert not mailbox_test_and_enable(mailbox).failed
    assert "unchanged 1" in run("apply_config", str(path)).output  # the same password, bound alike


def test_the_mailbox_page_asks_for_the_password_again_after_a_move(
    sysadmin_client, make_test_server_profile, make_test_mailbox
):
    mailbox = make_test_mailbox(make_test_server_profile())
    url = f"/mailboxes/{mailbox.pk}/"
    assert "enter it again" not in sysadmin_client.get(url).content.decode()
    other = make_test_server_profile(incoming="pop3")
    mailbox.server_profile = other
    mailbox_save(mailbox)

    page = sysadmin_client.get(url).content.decode()

    assert (
        f"The stored password was entered for another server than 127.0.0.2:{other.incoming_port}: "
        "enter it again to use it there."
    ) in page
    assert MAIL_PASSWORD not in page
