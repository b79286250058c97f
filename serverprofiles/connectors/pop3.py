"""Incoming over POP3: connect, TLS or STLS, log in, STAT, QUIT (check_pop3); or the same
open session handed to mail processing (pop3_session).

Spoken by the standard library's poplib. `POP3Client` is poplib's POP3 on the
Dialogue's socket (poplib has no public hook for its connection: `_create_socket` is the
one POP3_SSL overrides too), with what poplib lacks: AUTH (RFC 5034, for XOAUTH2 and
OAUTHBEARER) and a STAT whose reply can be quoted. poplib raises `error_proto` with the
server's reply (bytes) or with its own words (str); `_translate` tells them apart.
"""

import base64
import poplib
from collections.abc import Iterator
from contextlib import contextmanager

from serverprofiles.connectors.dialogue import (
    GREETING_STEP,
    MAX_LINE,
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
from serverprofiles.connectors.sasl import Responses, oauth_responses

STLS_STEP = "negotiating TLS (STLS)"
STAT_STEP = "reading the mailbox status (STAT)"
CAPA_STEP = "asking for capabilities (CAPA)"
MAX_CHALLENGES = 5


class POP3Client(poplib.POP3):
    def __init__(self, dialogue: Dialogue, *, max_line: int = MAX_LINE):
        self.dialogue = dialogue
        self.max_line = max_line
        dialogue.connection = self
        endpoint = dialogue.endpoint
        super().__init__(endpoint.host, endpoint.port, timeout=endpoint.timeout)

    def _create_socket(self, timeout):
        return self.dialogue.open_socket()

    def _getline(self):
        # poplib's own, with a longer line allowed: its 2,048 bytes are less than
        # real messages' lines (RETR and TOP carry the message's lines, and a message may
        # be one long line: a session allows up to the largest message it reads).
        line = self.file.readline(self.max_line + 1)
        if len(line) > self.max_line:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets

    def capabilities(self) -> dict[str, list[str]]:
        """CAPA's answer; none when the server does not know CAPA (it is optional)."""
        try:
            return {name.upper(): arguments for name, arguments in self.capa().items()}
        except poplib.error_proto as exc:
            # capa() answers every failure with its own words; what the server did is
            # the exception it was handling.
            cause = exc.__context__ if isinstance(exc.__context__, poplib.error_proto) else exc
            if _refusal(cause):
                return {}
            raise cause from None

    def authenticate(self, mechanism: str, responses: Responses) -> bytes:
        """AUTH (RFC 5034): the response to each "+" challenge from `responses`, "*" when
        it has none left; the server's final +OK is returned, its -ERR raised."""
        reply = self._shortcmd(f"AUTH {mechanism}")
        for _ in range(MAX_CHALLENGES):
            if not (reply == b"+" or reply.startswith(b"+ ")):
                return reply
            answer = responses(base64.b64decode(reply[2:]))
            reply = self._shortcmd("*" if answer is None else base64.b64encode(answer.encode()).decode())
        raise ServerReplyError(reply, doing="authenticating (AUTH)")

    def message_count(self) -> int:
        reply = self._shortcmd("STAT")
        count = reply.split(b" ")[1:2]
        if not count or not count[0].isdigit():
            raise ServerReplyError(reply, doing=STAT_STEP)
        return int(count[0])

    def quit(self):
        reply = self._shortcmd("QUIT")
        drain(self.sock, self.dialogue.endpoint)
        self.close()
        return reply


def _refusal(exc: poplib.error_proto) -> bool:
    """Whether the server answered -ERR (rather than poplib finding fault)."""
    return bool(exc.args) and isinstance(exc.args[0], bytes) and exc.args[0].startswith(b"-ERR")


def _translate(dialogue: Dialogue, exc: Exception) -> Exception:
    """poplib's error_proto as the Dialogue's exceptions."""
    if not isinstance(exc, poplib.error_proto):
        return exc
    reply = exc.args[0] if exc.args else ""
    if reply == "-ERR EOF":  # poplib's words for a connection closed by the server
        return ConnectionDropped("the server closed the connection")
    if _refusal(exc) and dialogue.step != GREETING_STEP:
        return ServerReplyError(reply)
    # A POP3 server greets with +OK (RFC 1939 4); other services answer -ERR too (Redis:
    # "-ERR ... requirepass"), so neither that nor a line that is not POP3 is quoted.
    return NotTheProtocol()


def check_pop3(endpoint: Endpoint) -> Outcome:
    with Dialogue(endpoint, translate=_translate) as dialogue:
        pop3 = POP3Client(dialogue)
        connected = _open(dialogue, pop3)
        if connected:
            dialogue.step = STAT_STEP
            count = pop3.message_count()
            dialogue.succeed(f"{connected} and read the mailbox status ({count} messages).")
        dialogue.close_politely(pop3.quit)
    return dialogue.outcome


def _open(dialogue: Dialogue, pop3: POP3Client) -> str:
    """Secure the connection (STLS where offered) and log in: what was done, for a
    success message; "" when the dialogue ends here (`dialogue.outcome` says why)."""
    endpoint = dialogue.endpoint
    secured = endpoint.ssl
    capabilities = {}
    if not endpoint.ssl:
        dialogue.step = CAPA_STEP
        capabilities = pop3.capabilities()
        if "STLS" in capabilities:
            dialogue.step = STLS_STEP
            pop3.stls(dialogue.starttls_context(STLS_STEP, lambda: pop3.file))
            secured = True
            capabilities = None  # to be asked anew over TLS (RFC 2595 4)
    how = security(endpoint, upgraded=secured, command="STLS")
    if not endpoint.username:
        dialogue.succeed(f"Connected to {endpoint.where} {how}; login not tried (no credentials given).")
        return ""
    if not secured and not endpoint.allow_unencrypted_credentials:
        dialogue.outcome = unencrypted_refused(endpoint, command="STLS")
        return ""
    dialogue.step = "logging in"
    if endpoint.access_token:
        if capabilities is None or endpoint.ssl:
            dialogue.step = CAPA_STEP
            capabilities = pop3.capabilities()
            dialogue.step = "logging in"
        mechanism = oauth_mechanism_offered(endpoint, capabilities.get("SASL", ()))
        try:
            pop3.authenticate(mechanism, oauth_responses(mechanism, endpoint.username, endpoint.access_token))
        except poplib.error_proto as exc:
            if not _refusal(exc):
                raise
            raise token_refused(endpoint, exc.args[0]) from None
        logged_in = f"logged in as {endpoint.username} with OAuth 2.0 ({mechanism})"
    else:
        try:
            pop3.user(endpoint.username)
            pop3.pass_(endpoint.password)
        except poplib.error_proto as exc:
            if not _refusal(exc):
                raise
            raise AuthenticationRejected(exc.args[0]) from None
        logged_in = f"logged in as {endpoint.username}"
    return f"Connected to {endpoint.where} {how}, {logged_in}"


class POP3Session(MailSession):
    """A POP3 session: `client` is the POP3Client."""


@contextmanager
def pop3_session(endpoint: Endpoint, *, max_line: int = MAX_LINE) -> Iterator[POP3Session]:
    """Connect, secure and log in to `endpoint` as check_pop3 does, and yield the
    session; QUIT when the block ends (the server then carries out the DELEs: RFC 1939's
    UPDATE state). Raises SessionFailed when the session cannot be opened or the server
    fails in it; any other exception of the block passes through unchanged, the
    connection closed without QUIT (so nothing is deleted). `max_line`: the longest line
    it may read (a message's, in RETR)."""
    with session_dialogue(endpoint, _translate, (poplib.error_proto,)) as dialogue:
        pop3 = POP3Client(dialogue, max_line=max_line)
        connected = _open(dialogue, pop3)
        if not connected:
            dialogue.close_politely(pop3.quit)
            raise session_refused(dialogue)
        yield POP3Session(dialogue, pop3)
        dialogue.step = "logging out (QUIT), which deletes the messages marked for deletion"
        pop3.quit()
        dialogue.succeed(connected)
