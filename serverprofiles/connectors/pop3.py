"""Incoming over POP3: connect, TLS or STLS, USER/PASS, STAT, QUIT.

Spoken over the Dialogue's Wire, as IMAP and SMTP are (RFC 1939, CAPA from RFC 2449,
STLS from RFC 2595).
"""

from serverprofiles.connectors.dialogue import (
    AuthenticationRejected,
    Dialogue,
    NotTheProtocol,
    ServerReplyError,
    Wire,
    security,
)
from serverprofiles.connectors.endpoints import Endpoint
from serverprofiles.connectors.outcomes import Outcome, unencrypted_refused

STLS_STEP = "negotiating TLS (STLS)"
STAT_STEP = "reading the mailbox status (STAT)"


class _Refused(ServerReplyError):
    """The server answered -ERR."""


class _POP3:
    def __init__(self, wire: Wire):
        self.wire = wire

    def reply(self) -> bytes:
        """A status line: +OK is returned, -ERR raised as _Refused, anything else is not POP3."""
        line = self.wire.readline().rstrip(b"\r\n")
        if line.startswith(b"+OK"):
            return line
        if line.startswith(b"-ERR"):
            raise _Refused(line)
        raise NotTheProtocol()

    def greeting(self) -> bytes:
        try:
            return self.reply()
        except _Refused:
            # A POP3 server greets with +OK (RFC 1939 4); other services answer -ERR too
            # (Redis: "-ERR ... requirepass"), so this one is not quoted.
            raise NotTheProtocol() from None

    def command(self, command: bytes) -> bytes:
        self.wire.send(command + b"\r\n")
        return self.reply()

    def capabilities(self) -> set[str]:
        try:
            self.command(b"CAPA")
        except _Refused:
            return set()  # CAPA is optional in POP3
        names = set()
        while (line := self.wire.readline().rstrip(b"\r\n")) != b".":
            name = line.removeprefix(b".").split(b" ")[0]  # a leading "." is doubled in lists
            names.add(name.decode("ascii", "replace").upper())
        return names

    def quit(self) -> None:
        self.command(b"QUIT")
        self.wire.drain()


def check_pop3(endpoint: Endpoint) -> Outcome:
    with Dialogue(endpoint) as dialogue:
        pop3 = _POP3(dialogue.connect())
        pop3.greeting()
        secured = endpoint.ssl
        if not endpoint.ssl:
            dialogue.step = "asking for capabilities (CAPA)"
            if "STLS" in pop3.capabilities():
                dialogue.step = STLS_STEP
                pop3.command(b"STLS")
                pop3.wire.start_tls(STLS_STEP)
                secured = True
        how = security(endpoint, upgraded=secured, command="STLS")
        if not endpoint.username:
            dialogue.succeed(f"Connected to {endpoint.where} {how}; login not tried (no credentials given).")
        elif not secured and not endpoint.allow_unencrypted_credentials:
            dialogue.outcome = unencrypted_refused(endpoint, command="STLS")
        else:
            dialogue.step = "logging in"
            try:
                pop3.command(b"USER " + endpoint.username.encode())
                pop3.command(b"PASS " + endpoint.password.encode())
            except _Refused as exc:
                raise AuthenticationRejected(exc.reply) from None
            dialogue.step = STAT_STEP
            status = pop3.command(b"STAT")
            count = status.split(b" ")[1:2]
            if not count or not count[0].isdigit():
                raise ServerReplyError(status, doing=STAT_STEP)
            dialogue.succeed(
                f"Connected to {endpoint.where} {how}, logged in as {endpoint.username} and read the "
                f"mailbox status ({count[0].decode()} messages)."
            )
        dialogue.close_politely(pop3.quit)
    return dialogue.outcome
