"""OAuth 2.0 logins (SASL OAUTHBEARER and XOAUTH2) against real servers: Dovecot and
aiosmtpd checking each token with the suite's token server."""

import logging

import pytest

from serverprofiles.connectors import Cause, Endpoint, check_incoming, check_outgoing

pytestmark = pytest.mark.servers

SHORT = 2.0
# The server fixtures offering both mechanisms (the check then prefers OAUTHBEARER), or
# XOAUTH2 only.
SERVERS = {
    "OAUTHBEARER": ("oauth_dovecot", "oauth_smtp_servers"),
    "XOAUTH2": ("xoauth2_dovecot", "xoauth2_smtp_servers"),
}


@pytest.fixture(params=["OAUTHBEARER", "XOAUTH2"])
def mechanism(request):
    return request.param


@pytest.fixture
def servers(request, mechanism, oauth_server, trust_test_certificate):
    dovecot, smtp = SERVERS[mechanism]
    return request.getfixturevalue(dovecot), request.getfixturevalue(smtp)


def endpoint(servers, protocol: str, *, tls: bool, token: str, username: str | None = None) -> Endpoint:
    dovecot, smtp = servers
    if protocol == "smtp":
        host, port = smtp.host, smtp.tls_port if tls else smtp.plain_port
    else:
        host = dovecot.host if tls else dovecot.plain_host
        port = getattr(dovecot, f"{protocol}s_port" if tls else f"{protocol}_port")
    return Endpoint(
        protocol,
        host,
        port,
        tls,
        username=dovecot.username if username is None else username,
        access_token=token,
        timeout=SHORT,
        allow_unencrypted_credentials=not tls,
    )


def check(endpoint: Endpoint):
    return check_outgoing(endpoint) if endpoint.protocol == "smtp" else check_incoming(endpoint)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_a_token_for_the_mailbox_logs_in(servers, oauth_server, mechanism, protocol, tls):
    token = oauth_server.issue_token(servers[0].username)

    outcome = check(endpoint(servers, protocol, tls=tls, token=token))

    assert outcome.ok, outcome.message
    assert f"as {servers[0].username} with OAuth 2.0 ({mechanism})" in outcome.message
    assert ("over TLS" if tls else "in plain text") in outcome.message


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_an_app_only_token_logs_in_to_any_mailbox_the_app_may_open(servers, oauth_server, protocol):
    token = oauth_server.issue_token()  # the client-credentials grant: no user in the token

    assert check(endpoint(servers, protocol, tls=True, token=token)).ok


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_a_token_for_another_mailbox_is_refused_with_words_to_act_on(servers, oauth_server, protocol, caplog):
    caplog.set_level(logging.DEBUG)
    token = oauth_server.issue_token("someone-else@example.test")
    target = endpoint(servers, protocol, tls=True, token=token)

    outcome = check(target)

    # Refused at once: the error continuation was answered (a client that does not
    # answer it waits until the timeout).
    assert outcome.cause == Cause.AUTHENTICATION_FAILED, outcome.message
    assert outcome.message.startswith(
        f"Authentication failed: {target.where} refused the OAuth 2.0 access token for {servers[0].username}."
    )
    assert f"may use {target.label} for this mailbox" in outcome.message
    assert token not in outcome.message
    assert not any(token in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("protocol", ["imap", "smtp"])
def test_an_expired_token_is_refused(servers, oauth_server, protocol):
    token = oauth_server.issue_token(servers[0].username, expires_in=-1)

    assert check(endpoint(servers, protocol, tls=True, token=token)).cause == Cause.AUTHENTICATION_FAILED


def test_no_token_in_any_message_or_log_record(servers, oauth_server, caplog):
    caplog.set_level(logging.DEBUG)
    token = oauth_server.issue_token(servers[0].username)
    endpoints = [endpoint(servers, protocol, tls=False, token=token) for protocol in ("imap", "pop3", "smtp")]

    outcomes = [check(target) for target in endpoints]

    assert all(outcome.ok for outcome in outcomes)
    assert not any(
        token in outcome.message or token in repr(target) for outcome, target in zip(outcomes, endpoints)
    )
    assert not any(token in record.getMessage() for record in caplog.records)


def test_a_server_offering_no_oauth_login_is_an_authentication_failure_naming_what_it_offers(
    smtp_servers, oauth_server
):
    target = Endpoint(
        "smtp",
        smtp_servers.host,
        smtp_servers.plain_port,
        False,
        username=smtp_servers.username,
        access_token=oauth_server.issue_token(smtp_servers.username),
        timeout=SHORT,
        allow_unencrypted_credentials=True,
    )

    outcome = check_outgoing(target)

    assert outcome.cause == Cause.AUTHENTICATION_FAILED
    assert (
        "offers no OAuth 2.0 login (SASL XOAUTH2 or OAUTHBEARER) on this connection, only LOGIN, PLAIN"
        in (outcome.message)
    )


def test_a_server_echoing_the_token_never_gets_it_into_the_message(scripted_server):
    def echoing(connection, stopping):
        connection.sendall(b"220 localhost ESMTP ready\r\n")
        for line in connection.makefile("rb"):
            if line.upper().startswith(b"EHLO"):
                connection.sendall(b"250-localhost\r\n250 AUTH XOAUTH2\r\n")
            else:
                connection.sendall(b"535 you said: " + line)

    token = "at-Echoed-Token-123"
    target = Endpoint(
        "smtp",
        "127.0.0.1",
        scripted_server(echoing),
        False,
        username="alice",
        access_token=token,
        timeout=SHORT,
        allow_unencrypted_credentials=True,
    )

    outcome = check_outgoing(target)

    assert outcome.cause == Cause.AUTHENTICATION_FAILED
    assert "you said" in outcome.message and "[redacted]" in outcome.message
    assert "Echoed" not in outcome.message


def test_a_caller_extends_the_words_of_a_refusal(servers, oauth_server):
    token = oauth_server.issue_token("someone-else@example.test")

    outcome = check(endpoint(servers, "imap", tls=True, token=token)).extended(
        "Give the app the IMAP.AccessAsApp permission."
    )

    assert outcome.cause == Cause.AUTHENTICATION_FAILED
    assert outcome.message.endswith("for this mailbox. Give the app the IMAP.AccessAsApp permission.")


def test_endpoint_repr_never_shows_the_token():
    target = Endpoint("imap", "imap.contoso.test", 993, True, username="alice", access_token="at-secret-xyz")

    assert "at-secret-xyz" not in repr(target)
    assert target.secrets == ("at-secret-xyz",)


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_a_token_is_not_sent_in_plain_text_unless_the_profile_allows_it(recording_servers, protocol):
    token = "at-Never-Sent-Token-7"
    target = Endpoint(
        protocol,
        recording_servers.host,
        getattr(recording_servers, f"{protocol}_port"),
        False,
        username="u",
        access_token=token,
        timeout=SHORT,
    )

    outcome = check(target)

    assert outcome.cause == Cause.ENCRYPTION_REQUIRED
    received = recording_servers.recording.data
    assert b"Never-Sent" not in received
    assert b"AUTH" not in received.upper()


def test_the_oauthbearer_user_is_escaped_as_rfc_5801_asks():
    from serverprofiles.connectors.sasl import sasl_oauthbearer

    assert (
        sasl_oauthbearer("a,b=c@example.test", "T") == "n,a=a=2Cb=3Dc@example.test,\x01auth=Bearer T\x01\x01"
    )
