"""Outgoing over SMTP: connect, implicit TLS or STARTTLS, EHLO, AUTH, QUIT. Never sends mail.

Spoken directly over the Dialogue's Wire, as IMAP is (RFC 5321 replies, RFC 3207
STARTTLS, RFC 4954 AUTH with PLAIN, LOGIN or CRAM-MD5): credentials go as UTF-8, which
smtplib refused for PLAIN, and a line that is not an SMTP reply is never quoted.
"""

import base64
import hmac
import socket
from functools import cache

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

EHLO_STEP = "greeting the server (EHLO)"
STARTTLS_STEP = "negotiating TLS (STARTTLS)"
AUTH_STEP = "authenticating (AUTH)"
# In this order of preference where the server offers several.
MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


@cache
def _local_hostname() -> str:
    return socket.getfqdn()


class _Reply:
    """A reply: its code and its lines' texts."""

    def __init__(self, code: int, lines: list[bytes]):
        self.code, self.lines = code, lines

    def __str__(self) -> str:
        return f"{self.code} " + "\n".join(line.decode("utf-8", "replace") for line in self.lines)


class _SMTP:
    def __init__(self, wire: Wire):
        self.wire = wire
        self.extensions: dict[str, str] = {}

    def reply(self) -> _Reply:
        lines = []
        while True:
            line = self.wire.readline()
            code = line[:3]
            if not (code.isdigit() and len(code) == 3 and line[3:4] in (b"-", b" ", b"\r", b"\n")):
                raise NotTheProtocol()
            lines.append(line[4:].strip())
            if line[3:4] != b"-":
                return _Reply(int(code), lines)

    def command(self, command: bytes) -> _Reply:
        self.wire.send(command + b"\r\n")
        return self.reply()

    def expect(self, command: bytes, code: int, *, doing: str) -> _Reply:
        reply = self.command(command)
        if reply.code != code:
            raise ServerReplyError(str(reply), doing=doing)
        return reply

    def ehlo(self) -> None:
        hostname = _local_hostname()
        if "." not in hostname or not hostname.isascii():  # RFC 5321 4.1.4: an address literal
            hostname = f"[{self.wire.local_address}]"
        reply = self.command(b"EHLO " + hostname.encode())
        if not 200 <= reply.code <= 299:
            raise ServerReplyError(str(reply), doing=EHLO_STEP)
        self.extensions = {}
        for line in reply.lines[1:]:
            # "AUTH=LOGIN" is how some old servers list AUTH, beside or instead of "AUTH LOGIN".
            keyword, _, parameters = line.decode("ascii", "replace").replace("=", " ", 1).partition(" ")
            if keyword:
                keyword = keyword.upper()
                self.extensions[keyword] = f"{self.extensions.get(keyword, '')} {parameters.upper()}".strip()

    def quit(self) -> None:
        self.command(b"QUIT")
        self.wire.drain()


def check_smtp(endpoint: Endpoint) -> Outcome:
    with Dialogue(endpoint) as dialogue:
        smtp = _SMTP(dialogue.connect())
        greeting = smtp.reply()
        if greeting.code != 220:
            raise ServerReplyError(str(greeting))
        dialogue.step = EHLO_STEP
        smtp.ehlo()
        secured = endpoint.ssl
        if not endpoint.ssl and "STARTTLS" in smtp.extensions:
            dialogue.step = STARTTLS_STEP
            smtp.expect(b"STARTTLS", 220, doing=STARTTLS_STEP)
            smtp.wire.start_tls(STARTTLS_STEP)
            secured = True
            dialogue.step = EHLO_STEP
            smtp.ehlo()  # asked anew over TLS (RFC 3207 4.2)
        how = security(endpoint, upgraded=secured, command="STARTTLS")
        if not endpoint.username:
            dialogue.succeed(f"Connected to {endpoint.where} {how} and greeted it; no authentication used.")
        elif not secured and not endpoint.allow_unencrypted_credentials:
            dialogue.outcome = unencrypted_refused(endpoint, command="STARTTLS")
        else:
            dialogue.step = AUTH_STEP
            _authenticate(smtp, endpoint, secured)
            dialogue.succeed(
                f"Connected to {endpoint.where} {how}, greeted it and authenticated as {endpoint.username}."
            )
        dialogue.close_politely(smtp.quit)
    return dialogue.outcome


def _authenticate(smtp: _SMTP, endpoint: Endpoint, secured: bool) -> None:
    if "AUTH" not in smtp.extensions:
        raise AuthenticationRejected(
            explanation=f"{endpoint.where} does not offer authentication (AUTH) on this "
            f"connection{'' if secured else '; it may require TLS: turn on Use SSL'}."
        )
    offered = smtp.extensions["AUTH"].split()
    mechanism = next((m for m in MECHANISMS if m in offered), None)
    if mechanism is None:
        raise AuthenticationRejected(
            explanation=f"{endpoint.where} offers only the authentication mechanisms "
            f"{', '.join(offered) or '(none)'}; this test can use {', '.join(MECHANISMS)}."
        )
    username, password = endpoint.username.encode(), endpoint.password.encode()  # UTF-8 (RFC 4616)
    if mechanism == "PLAIN":
        reply = smtp.command(b"AUTH PLAIN " + _b64(b"\0" + username + b"\0" + password))
        if reply.code == 334:  # a server that ignores the initial response asks for it
            reply = smtp.command(_b64(b"\0" + username + b"\0" + password))
    elif mechanism == "LOGIN":
        reply = smtp.command(b"AUTH LOGIN")
        for answer in (username, password):
            if reply.code != 334:
                break
            reply = smtp.command(_b64(answer))
    else:
        reply = smtp.command(b"AUTH CRAM-MD5")
        if reply.code == 334:
            challenge = base64.b64decode(reply.lines[0], validate=False)
            digest = hmac.new(password, challenge, "md5").hexdigest().encode()
            reply = smtp.command(_b64(username + b" " + digest))
    # 503: already authenticated (smtplib counts it a success too).
    if reply.code not in (235, 503):
        raise AuthenticationRejected(str(reply))


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)
