"""SPEC 7 end to end: Test & Enable and Test Connection of OAuth 2.0 profiles against the
suite's token server, an OAuth Dovecot (IMAP, POP3) and an OAuth aiosmtpd (SMTP)."""

import itertools
import json
import logging
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError

from mailboxes.models import Mailbox, MailboxAlert, TestStatus
from mailboxes.services.testing import mailbox_test_and_enable, run_mailbox_tests
from serverprofiles import oauth
from serverprofiles.connection_tests import profile_test_connection
from serverprofiles.connectors import Cause
from serverprofiles.models import AuthenticationMethod, EmailServerProfile, ServerType
from serverprofiles.services import profile_create, profile_save
from tests.fixtures.ui import page_form_data

names = itertools.count(1)

pytestmark = [pytest.mark.servers, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def no_cached_tokens():
    oauth.cache_clear()
    yield
    oauth.cache_clear()


@pytest.fixture
def make_oauth_profile(db, oauth_dovecot, oauth_smtp_servers, oauth_server):
    """An OAuth profile on the OAuth test servers, its token from the token server."""

    def make(*, incoming: str = "imap", tls: bool = False, secret: str | None = None, key=None, **fields):
        if incoming == "imap":
            port = oauth_dovecot.imaps_port if tls else oauth_dovecot.imap_port
        else:
            port = oauth_dovecot.pop3s_port if tls else oauth_dovecot.pop3_port
        values = {
            "server_type": ServerType.IMAP_SMTP if incoming == "imap" else ServerType.POP3_SMTP,
            "incoming_server": oauth_dovecot.host if tls else oauth_dovecot.plain_host,
            "incoming_port": port,
            "incoming_ssl": tls,
            "outgoing_server": oauth_smtp_servers.host,
            "outgoing_port": oauth_smtp_servers.tls_port if tls else oauth_smtp_servers.plain_port,
            "outgoing_ssl": tls,
            "timeout_ms": 3000,
            "allow_unencrypted_credentials": not tls,
            "incoming_auth": AuthenticationMethod.OAUTH2,
            "oauth_provider": "other",
            "oauth_token_url": oauth_server.token_url,
            "oauth_client_id": oauth_server.client_id,
            "oauth_scope": "https://outlook.office365.com/.default",
        }
        values.update(fields)
        values.setdefault("name", f"OAuth {next(names)}")
        profile = EmailServerProfile(**values)
        if key is not None:
            profile.set_oauth_service_account_key(json.dumps(key))
        else:
            profile.set_oauth_client_secret(secret or oauth_server.client_secret)
        return profile_create(profile)

    return make


@pytest.fixture
def oauth_mailbox(make_user, no_approval_required):
    from mailboxes.models import IncomingMethod, OutgoingMethod
    from mailboxes.services.mailboxes import mailbox_save

    def make(profile, **fields):
        mailbox = make_user().mailbox
        mailbox.server_profile = profile
        mailbox.incoming_method = IncomingMethod.SERVER_SIDE_SYNC
        mailbox.outgoing_method = OutgoingMethod.SERVER_SIDE_SYNC
        for name, value in fields.items():
            setattr(mailbox, name, value)
        return mailbox_save(mailbox)

    return make


def statuses(mailbox) -> tuple:
    mailbox = Mailbox.objects.get(pk=mailbox.pk)
    return mailbox.incoming_status, mailbox.outgoing_status


@pytest.mark.parametrize("incoming", ["imap", "pop3"])
def test_test_and_enable_logs_in_with_a_token_in_plain_text(make_oauth_profile, oauth_mailbox, incoming):
    mailbox = oauth_mailbox(make_oauth_profile(incoming=incoming))

    result = mailbox_test_and_enable(mailbox)

    assert not result.failed, result.causes
    assert statuses(mailbox) == (TestStatus.SUCCESS, TestStatus.SUCCESS)


@pytest.mark.parametrize("incoming", ["imap", "pop3"])
def test_test_and_enable_logs_in_with_a_token_over_tls(
    make_oauth_profile, oauth_mailbox, trust_test_certificate, incoming
):
    mailbox = oauth_mailbox(make_oauth_profile(incoming=incoming, tls=True))

    result = mailbox_test_and_enable(mailbox)

    assert not result.failed, result.causes
    assert statuses(mailbox) == (TestStatus.SUCCESS, TestStatus.SUCCESS)


def test_wrong_client_secret_is_the_token_endpoints_refusal_quoted(make_oauth_profile, oauth_mailbox, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-Client-Secret-4477"
    mailbox = oauth_mailbox(make_oauth_profile(secret=wrong))

    result = mailbox_test_and_enable(mailbox)

    assert {o.cause for o in result.outcomes.values() if o} == {Cause.TOKEN_REFUSED}
    saved = Mailbox.objects.get(pk=mailbox.pk)
    assert "invalid_client" in saved.incoming_error and "Invalid client secret" in saved.incoming_error
    assert_nowhere(wrong, caplog)


def test_token_endpoint_port_closed_is_connection_refused(make_oauth_profile, oauth_mailbox, closed_port):
    mailbox = oauth_mailbox(make_oauth_profile(oauth_token_url=f"http://127.0.0.1:{closed_port}/token"))

    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes["incoming"].cause == Cause.CONNECTION_REFUSED
    assert "token endpoint" in result.outcomes["incoming"].message


def test_a_token_for_another_mailbox_is_the_mail_servers_refusal(
    make_oauth_profile, oauth_mailbox, oauth_server
):
    oauth_server.register_client("narrow-app", "Narrow-Secret-55", mailboxes=["someone-else@example.test"])
    profile = make_oauth_profile(
        oauth_client_id="narrow-app",
        secret="Narrow-Secret-55",
        oauth_provider="microsoft",
        oauth_tenant_id="contoso.com",
    )
    mailbox = oauth_mailbox(profile, allow_credentials=False)

    result = mailbox_test_and_enable(mailbox)

    incoming, outgoing = result.outcomes["incoming"], result.outcomes["outgoing"]
    assert incoming.cause == outgoing.cause == Cause.TOKEN_REJECTED
    assert incoming.message.startswith("Mail server rejected the token: ")
    assert "IMAP.AccessAsApp" in incoming.message and "SMTP.SendAsApp" in outgoing.message
    assert "Add-MailboxPermission" in incoming.message


def test_thirty_mailboxes_of_one_profile_ask_for_one_token(
    make_oauth_profile, oauth_mailbox, oauth_server, monkeypatch
):
    profile = make_oauth_profile(max_connections=10)
    mailboxes = [oauth_mailbox(profile) for _ in range(30)]
    decrypted = []  # the profile's stored secret is decrypted once a run, too
    stored_secret = EmailServerProfile.get_bound_oauth_secret

    def decrypt(self):
        decrypted.append(self.pk)
        return stored_secret(self)

    monkeypatch.setattr(EmailServerProfile, "get_bound_oauth_secret", decrypt)

    results = run_mailbox_tests([m.pk for m in mailboxes])

    assert [r.failed for r in results] == [False] * 30, [r.causes for r in results if r.failed][:2]
    assert oauth_server.requests["/token"] == 1
    assert decrypted == [profile.pk]


def test_within_a_run_a_secret_entered_again_is_the_one_used(make_oauth_profile, oauth_server):
    # A run decrypts a profile's secret once: the stored value is its key, so a secret
    # entered meanwhile is read anew (here a wrong one: the token endpoint refuses it).
    profile = make_oauth_profile()
    with oauth.token_run():
        assert isinstance(oauth.profile_access_token(profile), str)
        profile.set_oauth_client_secret("Wrong-Client-Secret-2")
        refused = oauth.profile_access_token(profile)

    assert refused.cause == Cause.TOKEN_REFUSED
    assert oauth_server.requests["/token"] == 2


def test_thirty_mailboxes_with_a_refused_client_ask_once(make_oauth_profile, oauth_mailbox, oauth_server):
    profile = make_oauth_profile(secret="Wrong-Client-Secret-1")
    mailboxes = [oauth_mailbox(profile) for _ in range(30)]

    results = run_mailbox_tests([m.pk for m in mailboxes])

    assert all(r.outcomes["incoming"].cause == Cause.TOKEN_REFUSED for r in results)
    assert oauth_server.requests["/token"] == 1


def test_an_expired_cached_token_is_replaced(make_oauth_profile, oauth_mailbox, oauth_server):
    oauth_server.token_lifetime = oauth.TOKEN_LEEWAY + 2  # stale two seconds after it is issued
    mailbox = oauth_mailbox(make_oauth_profile())

    first = mailbox_test_and_enable(mailbox)
    time.sleep(2.1)
    second = mailbox_test_and_enable(mailbox)

    assert not first.failed and not second.failed
    assert oauth_server.requests["/token"] == 2


def test_google_service_account_token_acts_for_each_mailbox(make_oauth_profile, oauth_mailbox, oauth_server):
    key = oauth_server.add_service_account()
    profile = make_oauth_profile(
        oauth_provider="google", oauth_client_id=key["client_id"], oauth_scope="", key=key
    )
    mailboxes = [oauth_mailbox(profile) for _ in range(2)]

    results = run_mailbox_tests([m.pk for m in mailboxes])

    assert [r.failed for r in results] == [False, False], [r.causes for r in results]
    assert oauth_server.requests["/token"] == 2  # one token per mailbox: each is its subject


def test_exchange_online_is_tested_over_imap_and_smtp_with_oauth(
    make_oauth_profile, oauth_mailbox, oauth_dovecot, oauth_smtp_servers, trust_test_certificate
):
    profile = make_oauth_profile(
        tls=True,
        server_type=ServerType.EXCHANGE_ONLINE,
        incoming_auth=AuthenticationMethod.SERVER_TO_SERVER,
        oauth_provider="microsoft",
        oauth_tenant_id="contoso.onmicrosoft.com",
    )
    from mailboxes.models import ActMethod

    mailbox = oauth_mailbox(profile, act_method=ActMethod.SERVER_SIDE_SYNC)

    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes["incoming"].ok and result.outcomes["outgoing"].ok, result.causes
    assert result.outcomes["act"].cause == Cause.NOT_SUPPORTED
    assert "Not supported for this server type" in result.outcomes["act"].message


def test_test_connection_asks_for_a_token_and_secures_the_servers(make_oauth_profile, oauth_server):
    profile = make_oauth_profile()

    result = profile_test_connection(profile)

    assert result.ok, (result.incoming.message, result.outgoing.message)
    assert "access token" in result.incoming.message
    assert oauth_server.requests["/token"] == 1


def test_test_connection_with_a_typed_wrong_secret_quotes_the_refusal(make_oauth_profile):
    profile = make_oauth_profile()
    profile.set_oauth_client_secret("Typed-Wrong-Secret-8")

    result = profile_test_connection(profile)

    assert result.incoming.cause == Cause.TOKEN_REFUSED
    assert "Typed-Wrong-Secret-8" not in result.incoming.message


def test_a_stored_secret_is_not_sent_to_another_token_url(make_oauth_profile, oauth_mailbox, oauth_server):
    profile = make_oauth_profile()
    profile.oauth_token_url = oauth_server.token_url.replace("/token", "/elsewhere")
    profile.save()
    mailbox = oauth_mailbox(profile)

    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes["incoming"].cause == Cause.SECRET_FOR_ANOTHER_TOKEN_URL
    assert oauth_server.requests["/token"] == 0


class IMAPSRecorder:
    """An IMAPS server with a certificate the product trusts, offering XOAUTH2, that keeps
    every line a client sends it: a server someone would like a token sent to."""

    def __init__(self, server_context):
        self.context = server_context
        self.received = bytearray()

    def script(self, connection, stopping):
        tls = self.context.wrap_socket(connection, server_side=True)
        tls.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] hello\r\n")
        for line in tls.makefile("rb"):
            self.received += line
            tag, _, rest = line.partition(b" ")
            if rest.upper().startswith(b"LOGOUT"):
                tls.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            tls.sendall(b"+ \r\n" if rest.upper().startswith(b"AUTHENTICATE") else tag + b" OK done\r\n")


def test_a_profile_moved_to_another_server_sends_no_token_there_until_its_secret_is_entered_again(
    make_oauth_profile, oauth_mailbox, oauth_server, manager_client, scripted_server, trust_test_certificate
):
    """SPEC 9: the client secret is bound to its token URL and to the servers the profile
    had when it was entered. A token is as good as a password (an app-only one opens every
    mailbox the app may), so a Mailbox Manager who points the profile at another server
    gets no token sent there, nor asked for."""
    from mailboxes.models import OutgoingMethod

    profile = make_oauth_profile()
    mailbox = oauth_mailbox(profile, outgoing_method=OutgoingMethod.NONE)
    recorder = IMAPSRecorder(trust_test_certificate.server_context())
    url = f"/serverprofiles/{profile.pk}/"
    moved = page_form_data(
        manager_client, url, incoming_server="127.0.0.1", incoming_port=scripted_server(recorder.script)
    )
    assert manager_client.post(url, moved).status_code == 302

    result = mailbox_test_and_enable(Mailbox.objects.get(pk=mailbox.pk))

    outcome = result.outcomes["incoming"]
    assert outcome.cause == Cause.SECRET_FOR_ANOTHER_SERVER
    entered_for = f"{profile.incoming_server}:{profile.incoming_port}"
    assert f"the stored client secret was entered for the servers {entered_for} and " in outcome.message
    assert "enter it again to log in to 127.0.0.1:" in outcome.message
    assert outcome.message.endswith("Nothing was sent.")
    assert oauth_server.requests["/token"] == 0
    assert recorder.received == b""


def test_a_secret_entered_again_for_the_new_server_logs_in_there(
    make_oauth_profile, oauth_mailbox, oauth_dovecot, oauth_server, trust_test_certificate
):
    profile = make_oauth_profile()
    mailbox = oauth_mailbox(profile)
    profile.incoming_server, profile.incoming_port = oauth_dovecot.host, oauth_dovecot.imaps_port
    profile.incoming_ssl = True
    profile = profile_save(profile)
    assert mailbox_test_and_enable(mailbox).outcomes["incoming"].cause == Cause.SECRET_FOR_ANOTHER_SERVER

    profile.set_oauth_client_secret(oauth_server.client_secret)
    profile_save(profile)
    result = mailbox_test_and_enable(Mailbox.objects.get(pk=mailbox.pk))

    assert result.outcomes["incoming"].ok, result.causes
    assert f":{oauth_dovecot.imaps_port}" in result.outcomes["incoming"].message


def assert_nowhere(secret: str, caplog, *, extra=()) -> None:
    texts = [r.getMessage() for r in caplog.records] + list(extra)
    texts += list(MailboxAlert.objects.values_list("message", flat=True))
    for row in Mailbox.objects.values("incoming_error", "outgoing_error", "act_error"):
        texts += row.values()
    texts += list(LogEntry.objects.values_list("change_message", flat=True))
    assert all(secret not in text for text in texts)


def test_no_secret_or_token_in_any_alert_log_history_export_or_output(
    make_oauth_profile, oauth_mailbox, oauth_server, caplog, capsys, tmp_path
):
    caplog.set_level(logging.DEBUG)
    issued = []
    original = oauth_server._grant
    oauth_server._grant = lambda *args: issued.append(original(*args)) or issued[-1]
    try:
        profile = make_oauth_profile()
        mailboxes = [oauth_mailbox(profile) for _ in range(2)]
        oauth_mailbox(make_oauth_profile(name="Refused", secret="Wrong-Secret-Here-31"))
        with pytest.raises(CommandError, match="1 of 3 mailboxes failed"):
            call_command("test_mailboxes", "--all")
        run_mailbox_tests([m.pk for m in mailboxes])
        call_command("export_config", "--output", str(tmp_path / "config.json"))
    finally:
        oauth_server._grant = original
    output = capsys.readouterr()
    exported = (tmp_path / "config.json").read_text()
    tokens = [grant["access_token"] for grant in issued]
    assert tokens
    for secret in [oauth_server.client_secret, "Wrong-Secret-Here-31", *tokens]:
        assert_nowhere(secret, caplog, extra=[output.out, output.err, exported])


def test_a_token_that_cannot_be_sent_is_refused_before_connecting(
    make_oauth_profile, oauth_mailbox, oauth_server, monkeypatch
):
    answer = {"access_token": "two\r\nlines", "token_type": "Bearer", "expires_in": 3600}
    monkeypatch.setattr(oauth_server, "_grant", lambda *args: answer)
    mailbox = oauth_mailbox(make_oauth_profile())

    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes["incoming"].cause == Cause.TOKEN_REFUSED
    assert "cannot be used" in result.outcomes["incoming"].message
    assert "two" not in result.outcomes["incoming"].message
