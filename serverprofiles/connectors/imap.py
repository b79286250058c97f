"""Incoming over IMAP: connect, TLS or STARTTLS, log in, open INBOX read-only, LOGOUT
(check_imap); or the same open session handed to mail processing (imap_session).

Spoken by IMAPClient (over the standard library's imaplib), the client the mail
processing uses too. IMAPClient opens its connection through imaplib; `_IMAP4` is
imaplib's IMAP4 with the hooks imaplib documents as overridable (`open`, `readline`,
`read`, `shutdown`): the connection is the Dialogue's socket (outbound policy, TLS,
deadline), and each line read is checked before imaplib parses it (length, greeting).
"""

import imaplib
from collections.abc import Iterator
from contextlib import contextmanager

from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from serverprofiles.connectors.dialogue import (
    GREETING_STEP,
    MAX_LINE,
    MAX_QUOTED_LINE,
    AuthenticationRejected,
    ConnectionDropped,
    Dialogue,
    MailSession,
    NotTheProtocol,
    ServerReplyError,
    drain,
    oauth_mechanism_offered,
    security,
    session_dialogue,
    session_refused,
    token_refused,
)
from serverprofiles.connectors.endpoints import Endpoint
from serverprofiles.connectors.outcomes import Outcome, unencrypted_refused
from serverprofiles.connectors.sasl import Responses, oauth_responses, sasl_plain

MAX_LITERAL = 1_000_000
# The longest line a logged-in session reads: a SEARCH answer for a million UIDs.
SESSION_MAX_LINE = 16 * 1024 * 1024
VERSIONS = {"IMAP4REV1", "IMAP4REV2", "IMAP4"}
STARTTLS_STEP = "negotiating TLS (STARTTLS)"
LOGIN_STEP = "logging in"


class _IMAP4(imaplib.IMAP4):
    """imaplib's client on the Dialogue's socket; remembers the last line it read."""

    def __init__(self, dialogue: Dialogue):
        self.dialogue = dialogue
        self.last_line = b""
        self.logging_out = False
        self.max_literal = MAX_LITERAL
        self.max_line = MAX_LINE
        dialogue.connection = self
        endpoint = dialogue.endpoint
        super().__init__(endpoint.host, endpoint.port, timeout=endpoint.timeout)

    def open(self, host="", port=None, timeout=None):
        self.host, self.port = host, port
        self.sock = self.dialogue.open_socket()
        self.file = self.sock.makefile("rb")

    def readline(self) -> bytes:
        line = self.file.readline(self.max_line + 1)
        if len(line) > self.max_line:
            raise NotTheProtocol("a line longer than the limit")
        if not line.endswith(b"\n"):
            raise ConnectionDropped("the server closed the connection")
        if not self.last_line and not line.startswith(b"* "):
            raise NotTheProtocol("a greeting that is not IMAP")  # never quoted: any service's output
        self.last_line = line
        return line

    def read(self, size: int) -> bytes:
        if size > self.max_literal:
            raise ServerReplyError(
                self.last_line[:MAX_QUOTED_LINE] + b" ... (a literal larger than the limit)"
            )
        data = self.file.read(size)
        if len(data) < size:
            raise ConnectionDropped("the server closed the connection")
        return data

    def logout(self):
        self.logging_out = True
        return super().logout()

    def shutdown(self) -> None:
        if self.logging_out:
            drain(self.sock, self.dialogue.endpoint)
        super().shutdown()

    @property
    def last_reply(self) -> bytes:
        """The last line read, without the command's tag (which means nothing to a reader)."""
        tag, _, rest = self.last_line.partition(b" ")
        return rest if self.tagpre and tag.startswith(self.tagpre) else self.last_line


class _IMAPClient(IMAPClient):
    def __init__(self, dialogue: Dialogue):
        self._dialogue = dialogue
        endpoint = dialogue.endpoint
        super().__init__(endpoint.host, endpoint.port, ssl=False, timeout=endpoint.timeout)
        # IMAPClient turns imaplib's tracing of every line on, for its debug logger:
        # lines a server echoes back can carry a password.
        self.connection.debug = 0

    def _create_IMAP4(self):
        # IMAPClient's one place that makes its imaplib connection.
        self.connection = _IMAP4(self._dialogue)
        return self.connection


def _translate(dialogue: Dialogue, exc: Exception) -> Exception:
    """imaplib's and IMAPClient's exceptions as the Dialogue's."""
    if not isinstance(exc, imaplib.IMAP4.error):
        return exc
    if isinstance(exc.__context__, OSError):  # imaplib's "socket error: ..."
        return exc.__context__
    connection: _IMAP4 | None = dialogue.connection
    if connection is None:
        return ServerReplyError(str(exc))
    if connection.untagged_responses.get("BYE"):  # the server is closing the connection
        return ServerReplyError(connection.last_reply)
    if isinstance(exc, imaplib.IMAP4.abort):  # a reply imaplib could not parse
        return NotTheProtocol()
    capabilities = _capabilities(connection)
    if dialogue.step == GREETING_STEP and capabilities and not capabilities & VERSIONS:
        return ServerReplyError(
            " ".join(sorted(capabilities)), doing=f"{GREETING_STEP} (no IMAP4rev1 capability)"
        )
    return ServerReplyError(connection.last_reply)


def _capabilities(connection: _IMAP4) -> set[str]:
    return {str(word).upper() for word in getattr(connection, "capabilities", ())}


def check_imap(endpoint: Endpoint) -> Outcome:
    with Dialogue(endpoint, translate=_translate) as dialogue:
        client = _IMAPClient(dialogue)
        connected = _open(dialogue, client)
        if connected:
            dialogue.step = "opening INBOX"
            count = client.select_folder("INBOX", readonly=True).get(b"EXISTS", "?")
            dialogue.succeed(f"{connected} and opened INBOX ({count} messages).")
        dialogue.close_politely(client.logout)
    return dialogue.outcome


def _open(dialogue: Dialogue, client: _IMAPClient) -> str:
    """Secure the connection (STARTTLS where offered) and log in: what was done, for a
    success message; "" when the dialogue ends here (`dialogue.outcome` says why)."""
    endpoint = dialogue.endpoint
    imap = client.connection
    preauthenticated = imap.state == "AUTH"
    secured = endpoint.ssl
    if not endpoint.ssl and "STARTTLS" in _capabilities(imap):
        dialogue.step = STARTTLS_STEP
        client.starttls(dialogue.starttls_context(STARTTLS_STEP, lambda: imap.file))
        secured = True  # imaplib asked for the capabilities anew over TLS (RFC 3501 6.2.1)
    how = security(endpoint, upgraded=secured, command="STARTTLS")
    if not endpoint.username:
        dialogue.succeed(f"Connected to {endpoint.where} {how}; login not tried (no credentials given).")
        return ""
    if not secured and not endpoint.allow_unencrypted_credentials and not preauthenticated:
        dialogue.outcome = unencrypted_refused(endpoint, command="STARTTLS")
        return ""
    if preauthenticated:
        logged_in = "was pre-authenticated by the server"
    else:
        dialogue.step = LOGIN_STEP
        logged_in = f"logged in as {endpoint.username}{_log_in(client, imap, endpoint)}"
    return f"Connected to {endpoint.where} {how}, {logged_in}"


class IMAPSession(MailSession):
    """An IMAP session: `client` is the IMAPClient."""

    @property
    def capabilities(self) -> set[str]:
        """What the server offers now, logged in (servers announce UIDPLUS, MOVE and the like
        only after login)."""
        return {
            (word.decode("ascii", "replace") if isinstance(word, bytes) else str(word)).upper()
            for word in self.client.capabilities()
        }


@contextmanager
def imap_session(endpoint: Endpoint, *, max_literal: int = MAX_LITERAL) -> Iterator[IMAPSession]:
    """Connect, secure and log in to `endpoint` as check_imap does (outbound policy,
    credentials over TLS only, OAuth SASL, the deadline), and yield the session; LOGOUT
    when the block ends. Raises SessionFailed (with the Outcome and its cause) when the
    session cannot be opened or the server fails in the middle of it; any other
    exception of the block (the caller's own: a database error, say) passes through
    unchanged, the connection closed. `max_literal`: the largest message it may read."""
    with session_dialogue(endpoint, _translate, (imaplib.IMAP4.error,)) as dialogue:
        client = _IMAPClient(dialogue)
        connected = _open(dialogue, client)
        if not connected:
            dialogue.close_politely(client.logout)
            raise session_refused(dialogue)
        # Logged in, a literal may be a whole message, and a line long: UID SEARCH
        # answers every UID of the folder in one.
        client.connection.max_literal = max_literal
        client.connection.max_line = SESSION_MAX_LINE
        yield IMAPSession(dialogue, client)
        dialogue.close_politely(client.logout)
        dialogue.succeed(connected)


def _log_in(client: _IMAPClient, imap: _IMAP4, endpoint: Endpoint) -> str:
    """Log in with the token, or the password; what was used, for the success message."""
    capabilities = _capabilities(imap)
    try:
        if endpoint.access_token:
            mechanism = oauth_mechanism_offered(
                endpoint, {word.removeprefix("AUTH=") for word in capabilities if word.startswith("AUTH=")}
            )
            client.sasl_login(mechanism, oauth_responses(mechanism, endpoint.username, endpoint.access_token))
            return f" with OAuth 2.0 ({mechanism})"
        if "LOGINDISABLED" in capabilities:
            raise AuthenticationRejected(
                explanation=f"{endpoint.where} does not allow logging in on an unencrypted connection "
                "(LOGINDISABLED); turn on Use SSL."
            )
        if (endpoint.username + endpoint.password).isascii():
            client.login(_quoted(endpoint.username), endpoint.password)
        else:  # LOGIN carries ASCII only; SASL PLAIN carries UTF-8
            client.sasl_login("PLAIN", Responses(sasl_plain(endpoint.username, endpoint.password)))
        return ""
    except LoginError:
        reply = imap.last_reply
        if reply.split(b" ", 1)[0].upper() != b"NO":
            raise ServerReplyError(reply, doing=LOGIN_STEP) from None
        if endpoint.access_token:
            raise token_refused(endpoint, reply) from None
        raise AuthenticationRejected(reply) from None


def _quoted(text: str) -> str:
    """An IMAP quoted string (imaplib quotes the password, not the user name)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
