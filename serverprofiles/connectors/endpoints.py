"""Where a connection test goes, and with which credentials."""

from dataclasses import dataclass, field

from mailboxadmin.validators import has_control_characters, is_host_name

PROTOCOLS = ("imap", "pop3", "smtp", "exchange")
PROTOCOL_LABELS = {"imap": "IMAP", "pop3": "POP3", "smtp": "SMTP", "exchange": "Exchange"}
# P6: a profile's timeout is 1–60000 ms. A mail server that has not answered within a
# minute is not going to; tests run in the background, so no web request waits on it,
# but a worker and a connection slot do, for up to DIALOGUE_TIMEOUTS times as long.
MAX_TIMEOUT_MS = 60000
MIN_TIMEOUT_SECONDS = 0.001
MAX_TIMEOUT_SECONDS = MAX_TIMEOUT_MS / 1000
# A whole dialogue may last this many timeouts: a server that trickles bytes just
# fast enough to beat each read's timeout still cannot hold a connection for long.
DIALOGUE_TIMEOUTS = 3


class CredentialError(ValueError):
    """A user name or password that cannot be sent to a mail server as it is."""


@dataclass(frozen=True)
class Endpoint:
    """One server to test: the configured host and port, and nothing else.

    An empty `username` means: connect and secure the connection, but do not log in.
    With an `access_token` the check logs in as `username` with OAuth 2.0 (SASL
    OAUTHBEARER where the server offers it, else XOAUTH2) instead of the password.
    Neither secret appears in the repr. Credentials go over plain text only with
    `allow_unencrypted_credentials` (SPEC 9).
    """

    protocol: str
    host: str
    port: int | None
    ssl: bool
    username: str = ""
    password: str = field(default="", repr=False)
    access_token: str = field(default="", repr=False)
    timeout: float = 10.0
    allow_unencrypted_credentials: bool = False

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"Unknown protocol {self.protocol!r}.")
        if not MIN_TIMEOUT_SECONDS <= self.timeout <= MAX_TIMEOUT_SECONDS:
            raise ValueError(f"The connection timeout must be between 1 and {MAX_TIMEOUT_MS} ms.")
        if self.protocol != "exchange":
            if not is_host_name(self.host):
                raise ValueError(f"{self.host!r} is not a host name.")
            if self.port is None or not 1 <= self.port <= 65535:
                raise ValueError("The port must be between 1 and 65535.")
        # A line break in a credential would end the command early and start another.
        if has_control_characters(self.username):
            raise CredentialError("The user name contains control characters such as line breaks.")
        if has_control_characters(self.password):
            raise CredentialError("The password contains control characters such as line breaks.")
        if has_control_characters(self.access_token) or " " in self.access_token:
            raise CredentialError("The access token contains spaces or control characters.")

    @property
    def label(self) -> str:
        return PROTOCOL_LABELS[self.protocol]

    @property
    def where(self) -> str:
        """host:port (PROTOCOL), as messages name the server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port} ({self.label})"

    @property
    def deadline(self) -> float:
        return self.timeout * DIALOGUE_TIMEOUTS

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(secret for secret in (self.password, self.access_token) if secret)


def profile_endpoint(
    profile, direction: str, *, username: str = "", password: str = "", access_token: str = ""
) -> Endpoint:
    """The endpoint of a server profile's incoming or outgoing server (saved or not)."""
    from serverprofiles.models import DEFAULT_PORTS

    if direction == "incoming":
        protocol, host, port, ssl = (
            profile.incoming_protocol,
            profile.incoming_server,
            profile.incoming_port,
            profile.incoming_ssl,
        )
    else:
        protocol, host, port, ssl = (
            profile.outgoing_protocol,
            profile.outgoing_server,
            profile.outgoing_port,
            profile.outgoing_ssl,
        )
    if port is None and protocol != "exchange":
        port = DEFAULT_PORTS[(protocol, ssl)]
    return Endpoint(
        protocol=protocol,
        host=(host or "").strip(),
        port=port,
        ssl=ssl,
        username=username or "",
        password=password or "",
        access_token=access_token or "",
        timeout=profile.timeout_ms / 1000,
        allow_unencrypted_credentials=profile.allow_unencrypted_credentials,
    )
