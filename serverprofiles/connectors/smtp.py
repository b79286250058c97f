"""Outgoing over SMTP: connect, implicit TLS or STARTTLS, EHLO, AUTH, QUIT. Never sends mail.

Spoken by the standard library's smtplib rather than aiosmtplib: a check is one short
blocking dialogue in a worker thread, as the IMAP and POP3 checks are, and smtplib needs
no event loop per thread. `_SMTP` is smtplib's SMTP on the Dialogue's socket
(`_get_socket`, the hook SMTP_SSL and LMTP override too), whose replies are checked to
be SMTP before they are used or quoted. AUTH goes through `SMTP.auth` with the
connectors' own SASL answers (sasl.py), sent as UTF-8: smtplib's own encode
credentials as ASCII and fail on others (CPython issue 73936).
"""

import smtplib
import socket
from functools import cache

from serverprofiles.connectors.dialogue import (
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
from serverprofiles.connectors.sasl import Responses, cram_md5, oauth_responses, sasl_plain

EHLO_STEP = "greeting the server (EHLO)"
STARTTLS_STEP = "negotiating TLS (STARTTLS)"
AUTH_STEP = "authenticating (AUTH)"
# In this order of preference where the server offers several.
MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


@cache
def _local_hostname() -> str:
    return socket.getfqdn()


class _UTF8(str):
    """An answer smtplib encodes "as ASCII": as UTF-8 instead."""

    def encode(self, encoding="utf-8", errors="strict") -> bytes:
        return str.encode(self, "utf-8", errors)


class _SMTP(smtplib.SMTP):
    def __init__(self, dialogue: Dialogue):
        self.dialogue = dialogue
        dialogue.connection = self
        hostname = _local_hostname()
        # RFC 5321 4.1.4: without a fully qualified name, an address literal (set once
        # connected).
        self.needs_address_literal = "." not in hostname or not hostname.isascii()
        super().__init__(local_hostname=hostname, timeout=dialogue.endpoint.timeout)

    def _get_socket(self, host, port, timeout):
        sock = self.dialogue.open_socket()
        if self.needs_address_literal:
            self.local_hostname = f"[{sock.getsockname()[0]}]"
        return sock

    def getreply(self) -> tuple[int, bytes]:
        try:
            code, message = super().getreply()
        except smtplib.SMTPResponseException as exc:  # "Line too long."
            raise NotTheProtocol() from exc
        if code == -1:  # a line that does not start with a reply code
            raise NotTheProtocol()
        return code, message

    def quit(self):
        reply = self.docmd("QUIT")
        drain(self.sock, self.dialogue.endpoint)
        self.close()
        return reply

    def authenticate(self, mechanism: str, responses: Responses, *, initial_response: bool) -> None:
        def answer(challenge=None):
            return _UTF8(responses(challenge) or "")

        self.auth(mechanism, answer, initial_response_ok=initial_response)


def _reply(code: int, message: bytes) -> str:
    return f"{code} {message.decode('utf-8', 'replace')}"


def _translate(dialogue: Dialogue, exc: Exception) -> Exception:
    """smtplib's exceptions as the Dialogue's."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, OSError):  # a timeout, a reset: the cause itself
            return exc.__context__
        return ConnectionDropped("the server closed the connection")
    if isinstance(exc, smtplib.SMTPResponseException):
        return ServerReplyError(_reply(exc.smtp_code, exc.smtp_error))
    if isinstance(exc, smtplib.SMTPException):
        return ServerReplyError(str(exc))
    return exc


def check_smtp(endpoint: Endpoint) -> Outcome:
    with Dialogue(endpoint, translate=_translate) as dialogue:
        smtp = _SMTP(dialogue)
        code, message = smtp.connect(endpoint.host, endpoint.port)
        if code != 220:
            raise ServerReplyError(_reply(code, message))
        dialogue.step = EHLO_STEP
        _ehlo(smtp)
        secured = endpoint.ssl
        if not endpoint.ssl and smtp.has_extn("STARTTLS"):
            dialogue.step = STARTTLS_STEP
            smtp.starttls(context=dialogue.starttls_context(STARTTLS_STEP, lambda: smtp.file))
            secured = True
            dialogue.step = EHLO_STEP
            _ehlo(smtp)  # asked anew over TLS (RFC 3207 4.2)
        how = security(endpoint, upgraded=secured, command="STARTTLS")
        if not endpoint.username:
            dialogue.succeed(f"Connected to {endpoint.where} {how} and greeted it; no authentication used.")
        elif not secured and not endpoint.allow_unencrypted_credentials:
            dialogue.outcome = unencrypted_refused(endpoint, command="STARTTLS")
        else:
            dialogue.step = AUTH_STEP
            used = _authenticate(smtp, endpoint, secured)
            dialogue.succeed(
                f"Connected to {endpoint.where} {how}, greeted it and authenticated as "
                f"{endpoint.username}{used}."
            )
        dialogue.close_politely(smtp.quit)
    return dialogue.outcome


def _ehlo(smtp: _SMTP) -> None:
    code, message = smtp.ehlo()
    if not 200 <= code <= 299:
        raise ServerReplyError(_reply(code, message), doing=EHLO_STEP)


def _authenticate(smtp: _SMTP, endpoint: Endpoint, secured: bool) -> str:
    """AUTH with the token or the password; what was used, for the success message."""
    if not smtp.has_extn("AUTH"):
        raise AuthenticationRejected(
            explanation=f"{endpoint.where} does not offer authentication (AUTH) on this "
            f"connection{'' if secured else '; it may require TLS: turn on Use SSL'}."
        )
    offered = smtp.esmtp_features["auth"].upper().split()
    try:
        if endpoint.access_token:
            mechanism = oauth_mechanism_offered(endpoint, offered)
            responses = oauth_responses(mechanism, endpoint.username, endpoint.access_token)
            smtp.authenticate(mechanism, responses, initial_response=True)
            return f" with OAuth 2.0 ({mechanism})"
        mechanism = next((m for m in MECHANISMS if m in offered), None)
        if mechanism is None:
            raise AuthenticationRejected(
                explanation=f"{endpoint.where} offers only the authentication mechanisms "
                f"{', '.join(offered) or '(none)'}; this test can use {', '.join(MECHANISMS)}."
            )
        username, password = endpoint.username, endpoint.password
        if mechanism == "PLAIN":
            # A server that ignores the initial response asks for it with an empty 334.
            credentials = sasl_plain(username, password)
            smtp.authenticate("PLAIN", Responses(credentials, credentials), initial_response=True)
        elif mechanism == "LOGIN":
            smtp.authenticate("LOGIN", Responses(username, password), initial_response=False)
        else:
            smtp.authenticate("CRAM-MD5", Responses(cram_md5(username, password)), initial_response=False)
        return ""
    except smtplib.SMTPAuthenticationError as exc:
        reply = _reply(exc.smtp_code, exc.smtp_error)
        if endpoint.access_token:
            raise token_refused(endpoint, reply) from None
        raise AuthenticationRejected(reply) from None
