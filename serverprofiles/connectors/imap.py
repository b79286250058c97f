"""Incoming over IMAP: connect, TLS or STARTTLS, LOGIN, open INBOX read-only, LOGOUT."""

import ast
import imaplib
import re

from serverprofiles.connectors.dialogue import (
    AuthenticationRejected,
    ConnectionDropped,
    Dialogue,
    ServerReplyError,
    security,
)
from serverprofiles.connectors.endpoints import Endpoint
from serverprofiles.connectors.outcomes import Outcome

# One tag prefix for every connection: imaplib draws a random one per connection and
# compiles a regular expression for it each time, which costs more than the whole
# dialogue's parsing when a thousand mailboxes are tested.
_TAG_PREFIX = b"MBXA"
_TAGGED = re.compile(rb"(?P<tag>" + _TAG_PREFIX + rb"\d+) (?P<type>[A-Z]+) (?P<data>.*)", re.ASCII)


class _IMAPClient(imaplib.IMAP4):
    """imaplib's client on a socket the Dialogue opened (host, port, TLS, deadline)."""

    def __init__(self, dialogue: Dialogue):
        self._dialogue = dialogue
        self._drain_on_shutdown = False
        dialogue.client = self
        super().__init__(dialogue.endpoint.host, dialogue.endpoint.port, timeout=dialogue.endpoint.timeout)

    def _create_socket(self, timeout):
        return self._dialogue.open_socket()

    def _connect(self):
        # imaplib's own, with the fixed tag prefix above.
        self.tagpre, self.tagre = _TAG_PREFIX, _TAGGED
        self._cmd_log_len, self._cmd_log_idx, self._cmd_log = 10, 0, {}
        self.welcome = self._get_response()
        if "PREAUTH" in self.untagged_responses:
            self.state = "AUTH"
        elif "OK" in self.untagged_responses:
            self.state = "NONAUTH"
        else:
            raise self.error(self.welcome)
        self._get_capabilities()
        for version in imaplib.AllowedVersions:
            if version in self.capabilities:
                self.PROTOCOL_VERSION = version
                return
        raise self.error("server not IMAP4 compliant")

    def _get_capabilities(self):
        # A server may list its capabilities in its greeting (RFC 3501 7.1); then asking
        # for them again is a round trip for nothing. After STARTTLS they are asked anew.
        greeted = self.untagged_responses.pop("CAPABILITY", None)
        if greeted and greeted[-1]:
            self.capabilities = tuple(str(greeted[-1], self._encoding).upper().split())
        else:
            super()._get_capabilities()

    def shutdown(self):
        if self._drain_on_shutdown:
            self._dialogue.drain(self.file, self.sock)
        super().shutdown()


def _unrepr(text: str) -> str:
    """imaplib quotes a line it did not expect as a bytes repr (b'...'): the line itself."""
    if 3 <= len(text) <= 8192 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
    return text


def _translate(exc: Exception):
    if isinstance(exc, imaplib.IMAP4.abort):
        text = str(exc)
        if "EOF" in text:
            return ConnectionDropped(text)
        return ServerReplyError(_unrepr(text.removeprefix("unexpected response: ")))
    if isinstance(exc, imaplib.IMAP4.error):
        return ServerReplyError(exc.args[0] if exc.args else str(exc))
    return None


def check_imap(endpoint: Endpoint) -> Outcome:
    with Dialogue(endpoint, translate=_translate) as dialogue:
        client = _IMAPClient(dialogue)
        secured = endpoint.ssl
        if not endpoint.ssl and "STARTTLS" in client.capabilities:
            with dialogue.negotiating_tls("negotiating TLS (STARTTLS)"):
                client.starttls(dialogue.tls_context())
            secured = True
        how = security(endpoint, upgraded=secured, command="STARTTLS")
        if not endpoint.username:
            dialogue.succeed(f"Connected to {endpoint.where} {how}; login not tried (no credentials given).")
        else:
            dialogue.step = "logging in"
            _log_in(client, endpoint)
            dialogue.step = "opening INBOX"
            typ, data = client.select("INBOX", readonly=True)
            if typ != "OK":
                raise ServerReplyError(data[-1] if data else typ, doing="opening INBOX")
            count = data[0].decode(errors="replace") if data and data[0] else "?"
            dialogue.succeed(
                f"Connected to {endpoint.where} {how}, logged in as {endpoint.username} and opened "
                f"INBOX ({count} messages)."
            )
        client._drain_on_shutdown = True
        dialogue.close_politely(client.logout)
    return dialogue.outcome


def _log_in(client: _IMAPClient, endpoint: Endpoint) -> None:
    if "LOGINDISABLED" in client.capabilities:
        raise AuthenticationRejected(
            explanation=f"{endpoint.where} does not allow logging in on an unencrypted connection "
            "(LOGINDISABLED); turn on Use SSL."
        )
    try:
        if (endpoint.username + endpoint.password).isascii():
            client.login(endpoint.username, endpoint.password)
        else:  # LOGIN carries ASCII only; SASL PLAIN carries UTF-8
            credentials = f"\0{endpoint.username}\0{endpoint.password}".encode()
            client.authenticate("PLAIN", lambda _challenge: credentials)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        reply = exc.args[0] if exc.args else ""
        if "command error: BAD" in str(reply):
            raise ServerReplyError(reply, doing="logging in") from None
        raise AuthenticationRejected(reply) from None
