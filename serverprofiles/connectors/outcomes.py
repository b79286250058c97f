"""What a connection test found: success, or a failure with a cause an administrator can act on."""

from dataclasses import dataclass, replace

from django.db import models

# A2: the alert starts with the contract's words, then says who does what about it.
APPROVAL_REQUIRED_MESSAGE = (
    "The email address requires approval. A System Administrator (or anyone with the permission "
    "“Approve Email Addresses for Users or Queues”) approves it with Approve Email, on this "
    "mailbox or on its row in the mailbox list; then run Test & Enable again."
)


class Cause(models.TextChoices):
    """A4: every failure is exactly one of these."""

    HOST_NOT_FOUND = "host-not-found", "Host name does not resolve"
    DESTINATION_NOT_ALLOWED = "destination-not-allowed", "Destination not allowed"
    CONNECTION_REFUSED = "connection-refused", "Connection refused"
    TIMED_OUT = "timed-out", "Timed out"
    TLS_HANDSHAKE_FAILED = "tls-handshake-failed", "TLS handshake failed"
    CERTIFICATE_REJECTED = "certificate-rejected", "Certificate rejected"
    AUTHENTICATION_FAILED = "authentication-failed", "Authentication failed"
    # SPEC 7: OAuth 2.0. An unreachable token endpoint has the causes of an unreachable server.
    TOKEN_REFUSED = "token-refused", "Token endpoint refused the client"
    TOKEN_REJECTED = "token-rejected", "Mail server rejected the token"
    # SPEC 9: refused before anything was sent.
    PASSWORD_FOR_ANOTHER_SERVER = "password-for-another-server", "Password entered for another server"
    # An OAuth client secret or key is no password, and is bound to a Token URL, not a server.
    SECRET_FOR_ANOTHER_TOKEN_URL = "secret-for-another-token-url", "Secret entered for another Token URL"
    # Nor may the tokens it buys go to servers other than the profile's when it was entered.
    SECRET_FOR_ANOTHER_SERVER = "secret-for-another-server", "Secret entered for another server"
    ENCRYPTION_REQUIRED = "encryption-required", "No encrypted connection"
    SERVER_ERROR = "server-error", "Server error"
    NOT_SUPPORTED = "not-supported", "Not supported for this server type"
    APPROVAL_REQUIRED = "approval-required", "The email address requires approval"


@dataclass(frozen=True)
class Outcome:
    """The result of one workload's test. `message` never contains a password."""

    ok: bool
    cause: Cause | None
    message: str

    def __str__(self):
        return self.message

    @classmethod
    def success(cls, message: str) -> "Outcome":
        return cls(True, None, message)

    @classmethod
    def failure(cls, cause: Cause, detail: str) -> "Outcome":
        """A failure whose message starts with the cause's words, then says what to do."""
        return cls(False, cause, f"{cause.label}: {detail}")

    def extended(self, advice: str) -> "Outcome":
        """This outcome with `advice` added to its message: how a caller that knows more
        (an OAuth provider's usual fix, say) completes the words."""
        return replace(self, message=f"{self.message} {advice}")

    @classmethod
    def approval_required(cls) -> "Outcome":
        return cls(False, Cause.APPROVAL_REQUIRED, APPROVAL_REQUIRED_MESSAGE)


def unencrypted_refused(endpoint, *, command: str) -> Outcome:
    """SPEC 9: credentials are not sent in plain text unless the profile allows it."""
    return Outcome.failure(
        Cause.ENCRYPTION_REQUIRED,
        f"{endpoint.where} offers no {command}, so the connection is not encrypted, and the "
        'server profile does not "Allow credentials over unencrypted connections". Nothing was '
        "sent: turn on Use SSL, or enable TLS on the server.",
    )


def not_supported(what: str) -> Outcome:
    return Outcome.failure(
        Cause.NOT_SUPPORTED,
        f"{what} cannot be tested, because this version of Mailbox Admin has no Exchange "
        "connector yet. Nothing was contacted.",
    )
