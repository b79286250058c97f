"""Connection tests against real servers: Dovecot for IMAP/POP3, aiosmtpd for SMTP."""

import base64
import hmac
import logging
from dataclasses import replace

import pytest

from serverprofiles.connectors import Cause, Endpoint, check_incoming, check_outgoing
from tests.fixtures.mailservers import UTF8_PASSWORD, UTF8_USERNAME

pytestmark = pytest.mark.servers

SHORT = 2.0  # seconds: plenty on loopback, short enough to keep failures fast


def imap(dovecot, *, host=None, port=None, ssl=False, password=None, username=None):
    return Endpoint(
        "imap",
        host or dovecot.host,
        port or (dovecot.imaps_port if ssl else dovecot.imap_port),
        ssl,
        username=dovecot.username if username is None else username,
        password=dovecot.password if password is None else password,
        timeout=SHORT,
        allow_unencrypted_credentials=True,  # these tests are about the protocols, TLS or not
    )


def pop3(dovecot, *, host=None, port=None, ssl=False, password=None, username=None):
    return Endpoint(
        "pop3",
        host or dovecot.host,
        port or (dovecot.pop3s_port if ssl else dovecot.pop3_port),
        ssl,
        username=dovecot.username if username is None else username,
        password=dovecot.password if password is None else password,
        timeout=SHORT,
        allow_unencrypted_credentials=True,  # these tests are about the protocols, TLS or not
    )


def smtp(servers, *, port, ssl=False, password=None, username=None):
    return Endpoint(
        "smtp",
        servers.host,
        port,
        ssl,
        username=servers.username if username is None else username,
        password=servers.password if password is None else password,
        timeout=SHORT,
        allow_unencrypted_credentials=True,  # these tests are about the protocols, TLS or not
    )


def scripted(protocol: str, port: int, *, username: str = "u", password: str = "p") -> Endpoint:
    """A scripted server on loopback `port`, in plain text, with an account."""
    return Endpoint(
        protocol,
        "127.0.0.1",
        port,
        False,
        username=username,
        password=password,
        timeout=SHORT,
        allow_unencrypted_credentials=True,
    )


# Success ------------------------------------------------------------------------------


def test_imap_succeeds_in_plain_text_when_the_server_offers_no_starttls(dovecot):
    outcome = check_incoming(imap(dovecot, host=dovecot.plain_host))

    assert outcome.ok, outcome.message
    assert outcome.cause is None
    assert "in plain text" in outcome.message
    assert "opened INBOX" in outcome.message


def test_imap_upgrades_with_starttls_when_offered(dovecot, trust_test_certificate):
    outcome = check_incoming(imap(dovecot))

    assert outcome.ok, outcome.message
    assert "with STARTTLS" in outcome.message


def test_imap_succeeds_over_implicit_tls(dovecot, trust_test_certificate):
    outcome = check_incoming(imap(dovecot, ssl=True))

    assert outcome.ok, outcome.message
    assert "over TLS" in outcome.message


def test_imap_over_tls_verifies_the_host_name_it_connects_to(dovecot, trust_test_certificate):
    outcome = check_incoming(imap(dovecot, host="localhost", ssl=True))

    assert outcome.ok, outcome.message


def test_pop3_succeeds_in_plain_text_when_the_server_offers_no_stls(dovecot):
    outcome = check_incoming(pop3(dovecot, host=dovecot.plain_host))

    assert outcome.ok, outcome.message
    assert "in plain text" in outcome.message
    assert "mailbox status" in outcome.message


def test_pop3_upgrades_with_stls_when_offered(dovecot, trust_test_certificate):
    outcome = check_incoming(pop3(dovecot))

    assert outcome.ok, outcome.message
    assert "with STLS" in outcome.message


def test_pop3_succeeds_over_implicit_tls(dovecot, trust_test_certificate):
    outcome = check_incoming(pop3(dovecot, ssl=True))

    assert outcome.ok, outcome.message


def test_smtp_authenticates_in_plain_text(smtp_servers):
    outcome = check_outgoing(smtp(smtp_servers, port=smtp_servers.plain_port))

    assert outcome.ok, outcome.message
    assert "authenticated as" in outcome.message


def test_smtp_upgrades_with_starttls_before_authenticating(smtp_servers, trust_test_certificate):
    # This server offers AUTH only after STARTTLS, so success proves the upgrade.
    outcome = check_outgoing(smtp(smtp_servers, port=smtp_servers.starttls_port))

    assert outcome.ok, outcome.message
    assert "with STARTTLS" in outcome.message


def test_smtp_succeeds_over_implicit_tls(smtp_servers, trust_test_certificate):
    outcome = check_outgoing(smtp(smtp_servers, port=smtp_servers.tls_port, ssl=True))

    assert outcome.ok, outcome.message
    assert "over TLS" in outcome.message


def test_imap_logs_in_with_a_password_that_is_not_ascii(dovecot, trust_test_certificate):
    # LOGIN carries ASCII only: the check authenticates with SASL PLAIN, in UTF-8.
    outcome = check_incoming(imap(dovecot, username=UTF8_USERNAME, password=UTF8_PASSWORD))

    assert outcome.ok, outcome.message
    assert f"logged in as {UTF8_USERNAME}" in outcome.message


def test_pop3_logs_in_with_a_password_that_is_not_ascii(dovecot, trust_test_certificate):
    outcome = check_incoming(pop3(dovecot, username=UTF8_USERNAME, password=UTF8_PASSWORD))

    assert outcome.ok, outcome.message


def test_smtp_authenticates_with_a_password_that_is_not_ascii(smtp_servers):
    outcome = check_outgoing(
        smtp(smtp_servers, port=smtp_servers.plain_port, username=UTF8_USERNAME, password=UTF8_PASSWORD)
    )

    assert outcome.ok, outcome.message


def test_without_credentials_the_check_connects_but_does_not_log_in(dovecot, trust_test_certificate):
    outcome = check_incoming(imap(dovecot, ssl=True, username="", password=""))

    assert outcome.ok, outcome.message
    assert "login not tried" in outcome.message


# Credentials in plain text (SPEC 9) ---------------------------------------------------


@pytest.mark.parametrize(
    ("check", "make", "command"),
    [(check_incoming, imap, "STARTTLS"), (check_incoming, pop3, "STLS")],
)
def test_incoming_credentials_are_not_sent_where_the_server_offers_no_tls(dovecot, check, make, command):
    endpoint = replace(make(dovecot, host=dovecot.plain_host), allow_unencrypted_credentials=False)

    outcome = check(endpoint)

    assert outcome.cause == Cause.ENCRYPTION_REQUIRED
    assert outcome.message.startswith(f"No encrypted connection: {endpoint.where} offers no {command}")
    assert "Nothing was sent" in outcome.message


def test_smtp_credentials_are_not_sent_where_the_server_offers_no_tls(smtp_servers):
    endpoint = replace(smtp(smtp_servers, port=smtp_servers.plain_port), allow_unencrypted_credentials=False)

    outcome = check_outgoing(endpoint)

    assert outcome.cause == Cause.ENCRYPTION_REQUIRED


@pytest.mark.parametrize(
    ("check", "protocol"), [(check_incoming, "imap"), (check_incoming, "pop3"), (check_outgoing, "smtp")]
)
def test_a_plain_text_server_receives_no_credential_command(recording_servers, check, protocol):
    port = getattr(recording_servers, f"{protocol}_port")
    endpoint = replace(scripted(protocol, port, password="Never-Sent-9"), allow_unencrypted_credentials=False)

    outcome = check(endpoint)

    assert outcome.cause == Cause.ENCRYPTION_REQUIRED
    received = recording_servers.recording.data
    assert recording_servers.recording.connections == 1
    assert not recording_servers.recording.holds_secret("Never-Sent-9", "u")
    for command in (b"LOGIN", b"AUTH", b"USER", b"PASS"):
        assert command not in received


def test_credentials_still_go_over_starttls_where_it_is_offered(dovecot, trust_test_certificate):
    endpoint = replace(imap(dovecot), allow_unencrypted_credentials=False)

    assert check_incoming(endpoint).ok


# Authentication failures --------------------------------------------------------------


@pytest.mark.parametrize("make", [imap, pop3])
def test_wrong_password_is_an_authentication_failure_for_incoming(dovecot, make):
    endpoint = make(dovecot, host=dovecot.plain_host, password="not-the-password")

    outcome = check_incoming(endpoint)

    assert not outcome.ok
    assert outcome.cause == Cause.AUTHENTICATION_FAILED
    assert outcome.message.startswith("Authentication failed:")
    assert f"{dovecot.plain_host}:{endpoint.port}" in outcome.message
    assert "not-the-password" not in outcome.message


def test_wrong_password_is_an_authentication_failure_for_smtp(smtp_servers):
    outcome = check_outgoing(smtp(smtp_servers, port=smtp_servers.plain_port, password="not-the-password"))

    assert outcome.cause == Cause.AUTHENTICATION_FAILED
    assert "535" in outcome.message
    assert "not-the-password" not in outcome.message


def test_smtp_auth_offered_only_after_tls_is_explained(smtp_servers, trust_test_certificate, settings):
    # Implicit TLS is off and the STARTTLS server's certificate is trusted, so the
    # check upgrades; compare with a server that offers no AUTH at all in plain text:
    # aiosmtpd's STARTTLS port hides AUTH until TLS, which the check must not skip.
    outcome = check_outgoing(smtp(smtp_servers, port=smtp_servers.starttls_port))

    assert outcome.ok, outcome.message


# Network failures ---------------------------------------------------------------------


def test_closed_port_is_connection_refused(closed_port):
    outcome = check_incoming(Endpoint("imap", "127.0.0.1", closed_port, False, timeout=SHORT))

    assert outcome.cause == Cause.CONNECTION_REFUSED
    assert f"127.0.0.1:{closed_port} (IMAP)" in outcome.message


def test_unresolvable_host_name_does_not_resolve():
    outcome = check_outgoing(Endpoint("smtp", "nonexistent.invalid", 587, False, timeout=SHORT))

    assert outcome.cause == Cause.HOST_NOT_FOUND
    assert "nonexistent.invalid does not resolve" in outcome.message


def _never_answer(connection, stopping):
    stopping.wait(30)


@pytest.mark.parametrize(("check", "protocol"), [(check_incoming, "imap"), (check_incoming, "pop3")])
def test_a_server_that_never_answers_times_out(scripted_server, check, protocol):
    port = scripted_server(_never_answer)

    outcome = check(Endpoint(protocol, "127.0.0.1", port, False, timeout=0.3))

    assert outcome.cause == Cause.TIMED_OUT
    assert "within 0.3 s" in outcome.message


def test_a_server_that_never_answers_times_out_over_smtp_tls(scripted_server, trust_test_certificate):
    port = scripted_server(_never_answer)

    outcome = check_outgoing(Endpoint("smtp", "127.0.0.1", port, True, timeout=0.3))

    assert outcome.cause == Cause.TIMED_OUT


def test_a_server_that_trickles_its_greeting_is_cut_off_by_the_dialogue_deadline(scripted_server):
    def trickle(connection, stopping):
        while not stopping.wait(0.05):
            connection.sendall(b"*")

    port = scripted_server(trickle)

    outcome = check_incoming(Endpoint("imap", "127.0.0.1", port, False, timeout=0.2))

    assert outcome.cause == Cause.TIMED_OUT
    assert "did not finish the dialogue within 0.6 s" in outcome.message


# TLS failures -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_an_untrusted_certificate_is_rejected_for_incoming(dovecot, mail_certificates, settings, protocol):
    settings.MAIL_CA_BUNDLE = str(mail_certificates.other_cert)  # trusts a different certificate
    port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port

    outcome = check_incoming(Endpoint(protocol, dovecot.host, port, True, timeout=SHORT))

    assert outcome.cause == Cause.CERTIFICATE_REJECTED
    assert outcome.message.startswith("Certificate rejected: self-signed certificate")


def test_an_untrusted_certificate_is_rejected_after_starttls(dovecot, settings):
    settings.MAIL_CA_BUNDLE = ""  # the system trust store alone

    outcome = check_incoming(imap(dovecot))

    assert outcome.cause == Cause.CERTIFICATE_REJECTED


def test_an_untrusted_certificate_is_rejected_for_smtp(smtp_servers, mail_certificates, settings):
    settings.MAIL_CA_BUNDLE = str(mail_certificates.other_cert)

    outcome = check_outgoing(smtp(smtp_servers, port=smtp_servers.tls_port, ssl=True))

    assert outcome.cause == Cause.CERTIFICATE_REJECTED
    assert "self-signed certificate" in outcome.message


def test_implicit_tls_against_a_plain_text_port_is_a_failed_handshake(dovecot, trust_test_certificate):
    outcome = check_incoming(imap(dovecot, port=dovecot.imap_port, ssl=True))

    assert outcome.cause == Cause.TLS_HANDSHAKE_FAILED
    assert "Check Use SSL and the port" in outcome.message


def test_an_unreadable_ca_bundle_is_named(dovecot, settings, tmp_path):
    settings.MAIL_CA_BUNDLE = str(tmp_path / "missing.pem")

    outcome = check_incoming(imap(dovecot, ssl=True))

    assert outcome.cause == Cause.TLS_HANDSHAKE_FAILED
    assert "MAIL_CA_BUNDLE" in outcome.message


# Servers that misbehave ---------------------------------------------------------------


# What other services say first, or to a mail client's first line. Each carries a word
# that must never reach a message: whatever answers may print its secrets.
OTHER_SERVICES = {
    "ssh": b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3 leaked-banner\r\n",
    "redis": b"-ERR Client sent AUTH, but no password is set; requirepass leaked-secret\r\n",
    "http": b"HTTP/1.1 400 Bad Request\r\nServer: leaked-server/1.0\r\nContent-Length: 0\r\n\r\n",
}
NOT_A_SERVER = {
    "imap": "is not an IMAP server",
    "pop3": "is not a POP3 server",
    "smtp": "is not an SMTP server",
}


@pytest.mark.parametrize("service", OTHER_SERVICES)
@pytest.mark.parametrize(
    ("check", "protocol"), [(check_incoming, "imap"), (check_incoming, "pop3"), (check_outgoing, "smtp")]
)
def test_another_service_answering_is_not_a_mail_server_and_is_never_quoted(
    scripted_server, check, protocol, service
):
    def answer(connection, stopping):
        connection.sendall(OTHER_SERVICES[service])
        stopping.wait(5)

    port = scripted_server(answer)

    outcome = check(scripted(protocol, port))

    assert outcome.cause == Cause.SERVER_ERROR
    assert NOT_A_SERVER[protocol] in outcome.message
    assert "while reading the server's greeting" in outcome.message
    assert "leaked" not in outcome.message


@pytest.mark.parametrize(
    ("check", "protocol", "greeting"),
    [
        (check_incoming, "imap", b"* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        (check_incoming, "pop3", b"+OK ready\r\n"),
        (check_outgoing, "smtp", b"220 localhost ESMTP ready\r\n"),
    ],
)
def test_a_mail_server_turning_into_another_service_mid_dialogue_is_never_quoted(
    scripted_server, check, protocol, greeting
):
    def greet_then_answer_http(connection, stopping):
        connection.sendall(greeting)
        connection.recv(1024)
        connection.sendall(OTHER_SERVICES["http"])
        stopping.wait(5)

    port = scripted_server(greet_then_answer_http)

    outcome = check(scripted(protocol, port))

    assert outcome.cause == Cause.SERVER_ERROR
    assert NOT_A_SERVER[protocol] in outcome.message
    assert "leaked" not in outcome.message


@pytest.mark.parametrize(
    ("check", "protocol", "refusal", "quoted"),
    [
        (check_incoming, "imap", b"* BYE Too many connections from your address\r\n", "Too many connections"),
        (check_outgoing, "smtp", b"554 5.7.1 No SMTP service here\r\n", "No SMTP service here"),
    ],
)
def test_a_mail_server_refusing_the_connection_in_its_greeting_is_quoted(
    scripted_server, check, protocol, refusal, quoted
):
    port = scripted_server(lambda connection, stopping: connection.sendall(refusal))

    outcome = check(scripted(protocol, port))

    assert outcome.cause == Cause.SERVER_ERROR
    assert quoted in outcome.message
    assert "b'" not in outcome.message  # the reply itself, not a Python bytes repr


GREETINGS = {
    "imap": b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n",
    "pop3": b"+OK ready\r\n",
    "smtp": b"220 localhost ESMTP ready\r\n",
}


@pytest.mark.parametrize(
    ("check", "protocol"), [(check_incoming, "imap"), (check_incoming, "pop3"), (check_outgoing, "smtp")]
)
def test_a_server_hanging_up_mid_dialogue_is_a_server_error(scripted_server, check, protocol):
    def greet_then_hang_up(connection, stopping):
        connection.sendall(GREETINGS[protocol])
        connection.recv(1024)

    port = scripted_server(greet_then_hang_up)

    outcome = check(scripted(protocol, port))

    assert outcome.cause == Cause.SERVER_ERROR
    assert "closed the connection unexpectedly" in outcome.message


def _echoing(greeting: bytes, replies: dict[bytes, bytes], prefix: bytes):
    """A server that answers known commands and echoes everything else back (passwords too)."""

    def script(connection, stopping):
        connection.sendall(greeting)
        for line in connection.makefile("rb"):
            word = line.split(b" ")[0].upper().strip()
            connection.sendall(replies.get(word, prefix + line))

    return script


def _imap_echoing(connection, stopping):
    connection.sendall(GREETINGS["imap"])
    for line in connection.makefile("rb"):
        tag, _, rest = line.partition(b" ")
        if rest.upper().startswith(b"CAPABILITY"):
            connection.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
        else:
            connection.sendall(tag + b" NO you said: " + line)


ECHOING = {
    "imap": _imap_echoing,
    "pop3": _echoing(GREETINGS["pop3"], {b"CAPA": b"-ERR\r\n", b"USER": b"+OK\r\n"}, b"-ERR you said: "),
    "smtp": _echoing(
        GREETINGS["smtp"], {b"EHLO": b"250-localhost\r\n250 AUTH PLAIN LOGIN\r\n"}, b"535 you said: "
    ),
}


@pytest.mark.parametrize(
    ("check", "protocol"), [(check_incoming, "imap"), (check_incoming, "pop3"), (check_outgoing, "smtp")]
)
def test_a_server_echoing_the_password_never_gets_it_into_the_message(
    scripted_server, check, protocol, caplog
):
    caplog.set_level(logging.DEBUG)  # the libraries' own loggers (imapclient, imaplib) too
    port = scripted_server(ECHOING[protocol])
    password = 'Echo-"me"-9x'

    outcome = check(scripted(protocol, port, username="alice", password=password))

    assert outcome.cause == Cause.AUTHENTICATION_FAILED
    assert "you said" in outcome.message
    assert "[redacted]" in outcome.message
    assert "Echo-" not in outcome.message
    assert not any("Echo-" in record.getMessage() for record in caplog.records)


def test_a_server_that_stays_connected_after_logout_still_passes(scripted_server):
    def imap_that_never_hangs_up(connection, stopping):
        connection.sendall(GREETINGS["imap"])
        for line in connection.makefile("rb"):
            tag, _, rest = line.partition(b" ")
            command = rest.split(b" ")[0].strip().upper()
            if command == b"CAPABILITY":
                connection.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
            elif command == b"EXAMINE":
                connection.sendall(b"* 3 EXISTS\r\n")
            elif command == b"LOGOUT":
                connection.sendall(b"* BYE\r\n")
            connection.sendall(tag + b" OK done\r\n")
        stopping.wait(30)

    port = scripted_server(imap_that_never_hangs_up)

    outcome = check_incoming(
        Endpoint(
            "imap",
            "127.0.0.1",
            port,
            False,
            username="u",
            password="p",
            timeout=0.5,
            allow_unencrypted_credentials=True,
        )
    )

    assert outcome.ok, outcome.message
    assert "(3 messages)" in outcome.message


def _utf8_account(protocol: str, port: int) -> Endpoint:
    """A scripted server on `port`, logged in to with the account whose password is not ASCII."""
    return scripted(protocol, port, username=UTF8_USERNAME, password=UTF8_PASSWORD)


def _smtp_server(auth_line: bytes, authenticate, heard: list):
    """An SMTP server that lists `auth_line` in its EHLO reply and runs
    `authenticate(command, lines)` for AUTH, `lines` giving the client's next lines."""

    def script(connection, stopping):
        lines = connection.makefile("rb")
        connection.sendall(b"220 localhost ESMTP ready\r\n")
        for line in lines:
            heard.append(line)
            command = line.split(b" ")[0].strip().upper()
            if command == b"EHLO":
                connection.sendall(b"250-localhost\r\n" + auth_line + b"\r\n")
            elif command == b"AUTH":
                connection.sendall(authenticate(line, lines, connection))
            elif command == b"QUIT":
                connection.sendall(b"221 bye\r\n")
                return
            else:
                connection.sendall(b"502 what\r\n")

    return script


def _login_exchange(line, lines, connection):
    connection.sendall(b"334 VXNlcm5hbWU6\r\n")
    username = base64.b64decode(next(lines).strip()).decode()
    connection.sendall(b"334 UGFzc3dvcmQ6\r\n")
    password = base64.b64decode(next(lines).strip()).decode()
    ok = (username, password) == (UTF8_USERNAME, UTF8_PASSWORD)
    return b"235 ok\r\n" if ok else b"535 no\r\n"


@pytest.mark.parametrize("auth_line", [b"250 AUTH LOGIN", b"250 AUTH=LOGIN"])
def test_smtp_uses_auth_login_where_plain_is_not_offered(scripted_server, auth_line):
    # "AUTH=LOGIN" is how some old servers list it.
    heard = []
    port = scripted_server(_smtp_server(auth_line, _login_exchange, heard))

    outcome = check_outgoing(_utf8_account("smtp", port))

    assert outcome.ok, outcome.message
    assert heard[1].strip() == b"AUTH LOGIN"


def test_smtp_uses_cram_md5_where_it_is_the_only_mechanism(scripted_server):
    challenge = b"<1896.697170952@localhost>"

    def cram_md5(line, lines, connection):
        connection.sendall(b"334 " + base64.b64encode(challenge) + b"\r\n")
        username, _, digest = base64.b64decode(next(lines).strip()).rpartition(b" ")
        expected = hmac.new(UTF8_PASSWORD.encode(), challenge, "md5").hexdigest().encode()
        return b"235 ok\r\n" if (username, digest) == (UTF8_USERNAME.encode(), expected) else b"535 no\r\n"

    port = scripted_server(_smtp_server(b"250 AUTH CRAM-MD5", cram_md5, []))

    outcome = check_outgoing(_utf8_account("smtp", port))

    assert outcome.ok, outcome.message


def test_smtp_sends_the_plain_credentials_again_when_the_server_asks_for_them(scripted_server):
    # A server that ignores AUTH PLAIN's initial response asks for it with an empty 334.
    def ask_again(line, lines, connection):
        connection.sendall(b"334 \r\n")
        sent = base64.b64decode(next(lines).strip())
        return b"235 ok\r\n" if sent == f"\0{UTF8_USERNAME}\0{UTF8_PASSWORD}".encode() else b"535 no\r\n"

    port = scripted_server(_smtp_server(b"250 AUTH PLAIN", ask_again, []))

    outcome = check_outgoing(_utf8_account("smtp", port))

    assert outcome.ok, outcome.message


def test_smtp_offering_no_mechanism_the_check_knows_is_an_authentication_failure(scripted_server):
    port = scripted_server(_smtp_server(b"250 AUTH GSSAPI NTLM", lambda *_: b"535 no\r\n", []))

    outcome = check_outgoing(scripted("smtp", port))

    assert outcome.cause == Cause.AUTHENTICATION_FAILED
    assert "offers only the authentication mechanisms GSSAPI, NTLM" in outcome.message


def _imap_injecting_after_starttls(connection, stopping):
    connection.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
    for line in connection.makefile("rb"):
        tag, _, rest = line.partition(b" ")
        if rest.upper().startswith(b"STARTTLS"):
            # The go-ahead and, in the same packet, a reply meant to be read as if it came over TLS.
            connection.sendall(tag + b" OK Begin TLS now\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
            break
        connection.sendall(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n" + tag + b" OK done\r\n")
    stopping.wait(5)


def _smtp_injecting_after_starttls(connection, stopping):
    connection.sendall(b"220 localhost ESMTP ready\r\n")
    lines = connection.makefile("rb")
    next(lines)
    connection.sendall(b"250-localhost\r\n250 STARTTLS\r\n")
    next(lines)
    connection.sendall(b"220 go ahead\r\n250 injected\r\n")
    stopping.wait(5)


def _pop3_injecting_after_stls(connection, stopping):
    connection.sendall(b"+OK ready\r\n")
    for line in connection.makefile("rb"):
        if line.upper().startswith(b"STLS"):
            connection.sendall(b"+OK begin TLS\r\n+OK injected\r\n")
            break
        connection.sendall(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n")  # CAPA, asked as often as the client likes
    stopping.wait(5)


@pytest.mark.parametrize(
    ("check", "protocol", "script"),
    [
        (check_incoming, "imap", _imap_injecting_after_starttls),
        (check_incoming, "pop3", _pop3_injecting_after_stls),
        (check_outgoing, "smtp", _smtp_injecting_after_starttls),
    ],
)
def test_plain_text_sent_with_the_starttls_go_ahead_is_refused(scripted_server, check, protocol, script):
    port = scripted_server(script)

    outcome = check(scripted(protocol, port))

    assert outcome.cause == Cause.SERVER_ERROR
    assert "sent before the TLS handshake, so refused" in outcome.message


def test_imap_preauthenticated_connection_with_literals_in_replies_passes(scripted_server):
    heard = []

    def preauth(connection, stopping):
        connection.sendall(b"* PREAUTH [CAPABILITY IMAP4rev1] welcome back\r\n")
        for line in connection.makefile("rb"):
            heard.append(line)
            tag, _, rest = line.partition(b" ")
            if rest.upper().startswith(b"CAPABILITY"):
                connection.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
            elif rest.upper().startswith(b"EXAMINE"):
                # A literal ({5} and its five bytes) in the middle of an untagged reply.
                connection.sendall(b'* LIST () "/" {5}\r\nINBOX\r\n* 2 EXISTS\r\n' + tag + b" OK done\r\n")
            elif rest.upper().startswith(b"LOGOUT"):
                connection.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            else:
                connection.sendall(tag + b" BAD what\r\n")

    port = scripted_server(preauth)

    outcome = check_incoming(scripted("imap", port))

    assert outcome.ok, outcome.message
    assert "was pre-authenticated by the server" in outcome.message
    assert "(2 messages)" in outcome.message
    assert not any(b"LOGIN" in line.upper() for line in heard)


def test_a_pop3_status_without_a_message_count_is_a_server_error_quoting_it(scripted_server):
    def odd_stat(connection, stopping):
        connection.sendall(b"+OK ready\r\n")
        for line in connection.makefile("rb"):
            command = line.split(b" ")[0].strip().upper()
            replies = {b"CAPA": b"-ERR no\r\n", b"STAT": b"+OK many messages\r\n", b"QUIT": b"+OK bye\r\n"}
            connection.sendall(replies.get(command, b"+OK\r\n"))
            if command == b"QUIT":
                return

    port = scripted_server(odd_stat)

    outcome = check_incoming(scripted("pop3", port))

    assert outcome.cause == Cause.SERVER_ERROR
    assert 'while reading the mailbox status (STAT): "+OK many messages"' in outcome.message


def test_an_imap_server_closing_with_bye_mid_dialogue_is_a_server_error_quoting_it(scripted_server):
    def bye_at_login(connection, stopping):
        connection.sendall(GREETINGS["imap"])
        connection.makefile("rb").readline()
        connection.sendall(b"* BYE Server shutting down for maintenance\r\n")

    port = scripted_server(bye_at_login)

    outcome = check_incoming(scripted("imap", port))

    assert outcome.cause == Cause.SERVER_ERROR
    assert "Server shutting down for maintenance" in outcome.message


def test_imap_authenticate_asked_for_more_than_plain_carries_is_cancelled(scripted_server):
    heard = []

    def asks_twice(connection, stopping):
        connection.sendall(GREETINGS["imap"])
        lines = connection.makefile("rb")
        while not (line := next(lines)).split(b" ")[1].upper().startswith(b"AUTHENTICATE"):
            connection.sendall(
                b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + line.split(b" ")[0] + b" OK done\r\n"
            )
        tag = line.split(b" ")[0]
        for _ in range(2):
            connection.sendall(b"+ \r\n")
            heard.append(next(lines).strip())
        connection.sendall(tag + b" BAD authentication cancelled\r\n")
        stopping.wait(5)

    port = scripted_server(asks_twice)

    outcome = check_incoming(_utf8_account("imap", port))

    assert outcome.cause == Cause.SERVER_ERROR
    assert "authentication cancelled" in outcome.message
    assert heard[0] == base64.b64encode(f"\0{UTF8_USERNAME}\0{UTF8_PASSWORD}".encode())
    assert heard[1] == b"*"  # the client's cancel (RFC 3501 6.2.2)


def test_an_imap_server_without_imap4rev1_is_a_server_error(scripted_server):
    def without_imap4rev1(connection, stopping):
        connection.sendall(b"* OK [CAPABILITY POP3] hi\r\n")
        tag = connection.makefile("rb").readline().split(b" ")[0]
        connection.sendall(b"* CAPABILITY POP3\r\n" + tag + b" OK done\r\n")
        stopping.wait(5)

    port = scripted_server(without_imap4rev1)

    outcome = check_incoming(Endpoint("imap", "127.0.0.1", port, False, timeout=SHORT))

    assert outcome.cause == Cause.SERVER_ERROR
    assert "no IMAP4rev1 capability" in outcome.message


@pytest.mark.parametrize(("check", "protocol"), [(check_incoming, "imap"), (check_outgoing, "smtp")])
def test_a_reply_line_without_end_is_cut_off_and_not_quoted(scripted_server, check, protocol):
    # No mail server sends a line this long, however it starts.
    start = {"imap": b"* OK ", "smtp": b"220 "}[protocol]

    def endless(connection, stopping):
        connection.sendall(start + b"LONG" + b"x" * 70_000)
        stopping.wait(5)

    port = scripted_server(endless)

    outcome = check(Endpoint(protocol, "127.0.0.1", port, False, timeout=SHORT))

    assert outcome.cause == Cause.SERVER_ERROR
    assert NOT_A_SERVER[protocol] in outcome.message
    assert "LONG" not in outcome.message


# Exchange and the endpoint itself -----------------------------------------------------


def test_exchange_is_not_supported_and_nothing_is_contacted():
    endpoint = Endpoint("exchange", "https://mail.contoso.test/EWS/Exchange.asmx", None, True)

    for outcome in (check_incoming(endpoint), check_outgoing(endpoint)):
        assert outcome.cause == Cause.NOT_SUPPORTED
        assert "no Exchange connector" in outcome.message


def test_endpoint_repr_never_shows_the_password():
    endpoint = Endpoint("imap", "imap.contoso.test", 993, True, username="alice", password="hunter2-xyz")

    assert "hunter2-xyz" not in repr(endpoint)
    assert "hunter2-xyz" not in str(endpoint)
    assert "alice" in repr(endpoint)


@pytest.mark.parametrize("timeout", [0, 60.001, -1])
def test_endpoint_refuses_a_timeout_outside_the_profile_range(timeout):
    with pytest.raises(ValueError, match="between 1 and 60000 ms"):
        Endpoint("imap", "imap.contoso.test", 993, True, timeout=timeout)


@pytest.mark.parametrize("host", ["imap.contoso.test:993", "https://imap.contoso.test", "", "a b"])
def test_endpoint_accepts_only_a_host_name(host):
    with pytest.raises(ValueError, match="host name"):
        Endpoint("imap", host, 993, True)


def test_a_missing_test_server_fails_under_ci_and_is_skipped_only_elsewhere(monkeypatch):
    from tests.fixtures.mailservers import require

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Dovecot is not available"):
        require("Dovecot", "apt-get install dovecot-imapd")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require("Dovecot", "apt-get install dovecot-imapd")


@pytest.mark.parametrize("field", ["username", "password"])
def test_endpoint_refuses_credentials_that_would_inject_a_command(field):
    values = {"username": "alice", "password": "secret"}
    values[field] += "\r\nA2 DELETE INBOX"

    with pytest.raises(ValueError, match="control characters") as raised:
        Endpoint("imap", "imap.contoso.test", 993, True, **values)

    assert "DELETE" not in str(raised.value)
