"""Incoming over POP3: connect, TLS or STLS, log in, STAT, QUIT.

Spoken by the standard library's poplib. `POP3Client` is poplib's POP3 on the
Dialogue's socket (poplib has no public hook for its connection: `_create_socket` is the
one POP3_SSL overrides too), with what poplib lacks: AUTH (RFC 5034, for XOAUTH2 and
OAUTHBEARER) and a STAT whose reply can be quoted. poplib raises `error_proto` with the
server's reply (bytes) or with its own words (str); `_translate` tells them apart.
"""

import base64
import poplib

from serverprofiles.connectors.dialogue import (
    GREETING_STEP,
    AuthenticationRejected,
    ConnectionDropped,
    Dialogue,
    NotTheProtocol,
    ServerReplyError,
    drain,
    oauth_mechanism_offered,
    security,
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
    def __init__(self, dialogue: Dialogue):
        self.dialogue = dialogue
        dialogue.connection = self
        endpoint = dialogue.endpoint
        super().__init__(endpoint.host, endpoint.port, timeout=endpoint.timeout)

    def _create_socket(self, timeout):
        return self.dialogue.open_socket()

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
        elif not secured and not endpoint.allow_unencrypted_credentials:
            dialogue.outcome = unencrypted_refused(endpoint, command="STLS")
        else:
            dialogue.step = "logging in"
            if endpoint.access_token:
                if capabilities is None or endpoint.ssl:
                    dialogue.step = CAPA_STEP
                    capabilities = pop3.capabilities()
                    dialogue.step = "logging in"
                mechanism = oauth_mechanism_offered(endpoint, capabilities.get("SASL", ()))
                try:
                    pop3.authenticate(
                        mechanism, oauth_responses(mechanism, endpoint.username, endpoint.access_token)
                    )
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
            dialogue.step = STAT_STEP
            count = pop3.message_count()
            dialogue.succeed(
                f"Connected to {endpoint.where} {how}, {logged_in} and read the mailbox status "
                f"({count} messages)."
            )
        dialogue.close_politely(pop3.quit)
    return dialogue.outcome
