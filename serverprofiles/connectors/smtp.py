"""Outgoing over SMTP: connect, implicit TLS or STARTTLS, EHLO, AUTH, QUIT. Never sends mail."""

import smtplib
import socket
from functools import cache

from serverprofiles.connectors.dialogue import (
    AuthenticationRejected,
    ConnectionDropped,
    Dialogue,
    ServerReplyError,
    security,
)
from serverprofiles.connectors.endpoints import Endpoint
from serverprofiles.connectors.outcomes import Outcome


@cache
def _local_hostname() -> str:
    return socket.getfqdn()


class _LineRecorder:
    """A reply stream that remembers the last line it read."""

    def __init__(self, stream):
        self._stream, self.last_line = stream, b""

    def readline(self, size=-1):
        self.last_line = self._stream.readline(size)
        return self.last_line

    def read(self, size=-1):
        return self._stream.read(size)

    def close(self):
        self._stream.close()


class _SMTPClient(smtplib.SMTP):
    """smtplib's client on a socket the Dialogue opened (host, port, TLS, deadline)."""

    def __init__(self, dialogue: Dialogue):
        self._dialogue = dialogue
        self._drain_on_close = False
        dialogue.client = self
        super().__init__(
            dialogue.endpoint.host,
            dialogue.endpoint.port,
            local_hostname=_local_hostname(),
            timeout=dialogue.endpoint.timeout,
        )

    def _get_socket(self, host, port, timeout):
        return self._dialogue.open_socket()

    def getreply(self):
        # smtplib drops the first four characters of a line that has no reply code;
        # keep the whole line so that the message can quote what the server said.
        if self.file is None and self.sock is not None:
            self.file = _LineRecorder(self.sock.makefile("rb"))
        code, message = super().getreply()
        if code == -1 and isinstance(self.file, _LineRecorder):
            message = self.file.last_line.strip()
        return code, message

    def close(self):
        if self._drain_on_close:
            self._dialogue.drain(self.file, self.sock)
        super().close()


def _translate(exc: Exception):
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return ConnectionDropped(str(exc))
    if isinstance(exc, smtplib.SMTPResponseException):
        return ServerReplyError(_reply(exc.smtp_code, exc.smtp_error))
    if isinstance(exc, smtplib.SMTPException):
        return ServerReplyError(str(exc))
    return None


def _reply(code, message) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"{code} {message}" if code and code != -1 else str(message)


def check_smtp(endpoint: Endpoint) -> Outcome:
    with Dialogue(endpoint, translate=_translate) as dialogue:
        client = _SMTPClient(dialogue)
        _ehlo(client, dialogue)
        secured = endpoint.ssl
        if not endpoint.ssl and client.has_extn("starttls"):
            with dialogue.negotiating_tls("negotiating TLS (STARTTLS)"):
                client.starttls(context=dialogue.tls_context())
            secured = True
            _ehlo(client, dialogue)
        how = security(endpoint, upgraded=secured, command="STARTTLS")
        if not endpoint.username:
            dialogue.succeed(f"Connected to {endpoint.where} {how} and greeted it; no authentication used.")
        else:
            dialogue.step = "authenticating (AUTH)"
            if not client.has_extn("auth"):
                raise AuthenticationRejected(
                    explanation=f"{endpoint.where} does not offer authentication (AUTH) on this "
                    f"connection{'' if secured else '; it may require TLS: turn on Use SSL'}."
                )
            try:
                client.login(endpoint.username, endpoint.password)
            except smtplib.SMTPAuthenticationError as exc:
                raise AuthenticationRejected(_reply(exc.smtp_code, exc.smtp_error)) from None
            except smtplib.SMTPException as exc:
                if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException)):
                    raise
                raise AuthenticationRejected(explanation=f"{endpoint.where}: {exc}") from None
            except UnicodeEncodeError:
                raise AuthenticationRejected(
                    explanation=f"the user name or password holds characters {endpoint.where} "
                    "cannot be sent in SMTP AUTH."
                ) from None
            dialogue.succeed(
                f"Connected to {endpoint.where} {how}, greeted it and authenticated as {endpoint.username}."
            )
        client._drain_on_close = True
        dialogue.close_politely(client.quit)
    return dialogue.outcome


def _ehlo(client: _SMTPClient, dialogue: Dialogue) -> None:
    dialogue.step = "greeting the server (EHLO)"
    code, message = client.ehlo()
    if not 200 <= code <= 299:
        raise ServerReplyError(_reply(code, message), doing="greeting the server (EHLO)")
