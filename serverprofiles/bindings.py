"""Where a stored password may be sent (SPEC 9): the servers it was entered for.

A password is bound, inside its encrypted value, to the host, port and TLS mode of the
server(s) it was typed for. A test that would send it anywhere else is refused before
anything is sent; typing it again binds it to the then-current server.

The functions read only a profile's fields, so the data migration that bound the values
stored before (mailboxes 0009) can use them on its historical models.
"""

from urllib.parse import urlsplit, urlunsplit

from mailboxadmin.encryption import BoundSecret, Destination
from serverprofiles.connectors.endpoints import Endpoint
from serverprofiles.connectors.outcomes import Cause, Outcome

INCOMING_PROTOCOLS = {"imap-smtp": "imap", "pop3-smtp": "pop3"}
EXCHANGE_TYPES = ("exchange", "exchange-hybrid", "exchange-online")
TOKEN_URL = "token-url"  # the "TLS mode" of a token URL destination: its scheme says it


def server_destination(profile, direction: str) -> Destination:
    """The incoming or outgoing server of `profile` (saved or not), ports filled as on save."""
    from serverprofiles.models import DEFAULT_PORTS

    if profile.server_type == "exchange-online":  # SPEC 7: over IMAP and SMTP
        protocol = "imap" if direction == "incoming" else "smtp"
    elif profile.server_type in EXCHANGE_TYPES:
        protocol = "exchange"
    elif direction == "incoming":
        protocol = INCOMING_PROTOCOLS.get(profile.server_type, "exchange")
    else:
        protocol = "smtp"
    host = getattr(profile, f"{direction}_server")
    port = getattr(profile, f"{direction}_port")
    ssl = getattr(profile, f"{direction}_ssl")
    if port is None and protocol != "exchange":
        port = DEFAULT_PORTS[(protocol, ssl)]
    return Destination.of(host, port, ssl)


def profile_password_destinations(profile, direction: str) -> tuple[Destination, ...]:
    """Where a profile's incoming or outgoing password goes: its own server, and for the
    incoming one also the outgoing server when outgoing uses the same settings."""
    if direction == "incoming" and profile.use_same_settings_for_outgoing:
        return server_destination(profile, "incoming"), server_destination(profile, "outgoing")
    return (server_destination(profile, direction),)


def mailbox_password_destinations(profile) -> tuple[Destination, ...]:
    """Where a mailbox's own password goes: its profile's incoming and outgoing servers
    (nowhere without a profile)."""
    if profile is None:
        return ()
    return server_destination(profile, "incoming"), server_destination(profile, "outgoing")


def token_url_destination(url: str) -> Destination:
    """Where an OAuth client secret or key goes: its token URL, as one destination (the
    URL's scheme and host compared case-insensitively, its path as typed)."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed "[": no such URL is saved (P10), so nothing is sent to it
        return Destination(url, None, TOKEN_URL)
    normalized = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))
    return Destination(normalized, None, TOKEN_URL)


def oauth_secret_destinations(profile, token_url: str) -> tuple[Destination, ...]:
    """Where an OAuth client secret or key goes: its token URL. And where the tokens it
    buys go: the profile's incoming and outgoing servers, as a password would. A token
    is as good as a password (an app-only one opens every mailbox the app may), so a
    profile whose servers change needs its secret entered again, as SPEC 9 asks of
    passwords."""
    return (
        token_url_destination(token_url),
        server_destination(profile, "incoming"),
        server_destination(profile, "outgoing"),
    )


def oauth_binding_refusal(bound: BoundSecret, token_url: str, noun: str = "client secret") -> Outcome | None:
    """None when the OAuth secret `bound` (a client secret, or Google's service account
    key: `noun`) may be sent to `token_url`, else why not."""
    target = token_url_destination(token_url)
    if bound.allows(target):
        return None
    urls = [d for d in bound.destinations or () if d.tls == TOKEN_URL]
    entered_for = " and ".join(str(d) for d in urls) or "no token URL"
    return Outcome.failure(
        Cause.SECRET_FOR_ANOTHER_TOKEN_URL,
        f"the stored {noun} was entered for {entered_for}; enter it again to use it with "
        f"{target}. Nothing was sent.",
    )


def oauth_server_refusal(
    bound: BoundSecret, endpoint: Endpoint, noun: str = "client secret"
) -> Outcome | None:
    """None when a token bought with the OAuth secret `bound` may be sent to `endpoint`'s
    server, else why not (before any token is asked for)."""
    target = endpoint_destination(endpoint)
    if bound.allows(target):
        return None
    servers = [d for d in bound.destinations or () if d.tls != TOKEN_URL]
    entered_for = " and ".join(str(d) for d in servers) or "its Token URL alone"
    return Outcome.failure(
        Cause.SECRET_FOR_ANOTHER_SERVER,
        f"the stored {noun} was entered for the servers {entered_for}; enter it again to log in "
        f"to {target} with its tokens. Nothing was sent.",
    )


def endpoint_destination(endpoint: Endpoint) -> Destination:
    return Destination.of(endpoint.host, endpoint.port, endpoint.ssl)


def binding_refusal(bound: BoundSecret, endpoint: Endpoint) -> Outcome | None:
    """None when `bound` may be sent to `endpoint`, else the failure that says where it
    was entered for. Nothing has been sent either way."""
    target = endpoint_destination(endpoint)
    if bound.allows(target):
        return None
    if not bound.destinations:
        entered_for = "no server (it was stored before passwords were bound to their server)"
        return Outcome.failure(
            Cause.PASSWORD_FOR_ANOTHER_SERVER,
            f"the stored password was entered for {entered_for}; enter it again to use it with "
            f"{target}. Nothing was sent.",
        )
    same_place = [d for d in bound.destinations if (d.host, d.port) == (target.host, target.port)]
    if same_place:  # only the TLS mode differs: say so
        entered_for = " and ".join(f"{d} ({d.tls_label})" for d in same_place)
        new = f"{target} ({target.tls_label})"
    else:
        entered_for = " and ".join(str(d) for d in bound.destinations)
        new = str(target)
    return Outcome.failure(
        Cause.PASSWORD_FOR_ANOTHER_SERVER,
        f"the stored password was entered for {entered_for}; enter it again to use it with {new}. "
        "Nothing was sent.",
    )
