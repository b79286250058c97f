"""Incoming over POP3: connect, TLS or STLS, USER/PASS, STAT, QUIT."""

import poplib

from serverprofiles.connectors.dialogue import (
    AuthenticationRejected,
    ConnectionDropped,
    Dialogue,
    ServerReplyError,
    security,
)
from serverprofiles.connectors.endpoints import Endpoint
from serverprofiles.connectors.outcomes import Outcome


class _POP3Client(poplib.POP3):
    """poplib's client on a socket the Dialogue opened (host, port, TLS, deadline)."""

    def __init__(self, dialogue: Dialogue):
        self._dialogue = dialogue
        self._drain_on_close = False
        dialogue.client = self
        super().__init__(dialogue.endpoint.host, dialogue.endpoint.port, timeout=dialogue.endpoint.timeout)

    def _create_socket(self, timeout):
        return self._dialogue.open_socket()

    def close(self):
        if self._drain_on_close:
            self._dialogue.drain(self.file, self.sock)
        super().close()


def _translate(exc: Exception):
    if isinstance(exc, poplib.error_proto):
        reply = exc.args[0] if exc.args else ""
        if reply in ("-ERR EOF", b"-ERR EOF"):
            return ConnectionDropped("EOF")
        return ServerReplyError(reply)
    return None


def check_pop3(endpoint: Endpoint) -> Outcome:
    with Dialogue(endpoint, translate=_translate) as dialogue:
        client = _POP3Client(dialogue)
        secured = endpoint.ssl
        if not endpoint.ssl:
            dialogue.step = "asking for capabilities (CAPA)"
            try:
                capabilities = client.capa()
            except poplib.error_proto as exc:
                if "EOF" in str(exc):
                    raise
                capabilities = {}  # CAPA is optional in POP3
            if "STLS" in capabilities:
                with dialogue.negotiating_tls("negotiating TLS (STLS)"):
                    client.stls(dialogue.tls_context())
                secured = True
        how = security(endpoint, upgraded=secured, command="STLS")
        if not endpoint.username:
            dialogue.succeed(f"Connected to {endpoint.where} {how}; login not tried (no credentials given).")
        else:
            dialogue.step = "logging in"
            try:
                client.user(endpoint.username)
                client.pass_(endpoint.password)
            except poplib.error_proto as exc:
                reply = exc.args[0] if exc.args else ""
                if reply in ("-ERR EOF", b"-ERR EOF"):
                    raise
                raise AuthenticationRejected(reply) from None
            dialogue.step = "reading the mailbox status (STAT)"
            count, _size = client.stat()
            dialogue.succeed(
                f"Connected to {endpoint.where} {how}, logged in as {endpoint.username} and read the "
                f"mailbox status ({count} messages)."
            )
        client._drain_on_close = True
        dialogue.close_politely(client.quit)
    return dialogue.outcome
