"""OAuth 2.0 access tokens for IMAP, POP3 and SMTP (SPEC 7).

A profile that logs in with OAuth gets an app-only token from its provider's token
endpoint: the client-credentials grant (RFC 6749 §4.4) for Microsoft 365 and Other, a
service account's JWT-bearer grant (RFC 7523) with the mailbox as subject for Google
Workspace (domain-wide delegation).

The protocol is authlib's (a well-kept library that does both grants: it builds the
requests, authenticates the client, signs the JWT assertion and reads the token
endpoint's answers and errors). Only the HTTP transport is ours (oauth_transport.py),
because the token endpoint is reached under the outbound policy like a mail server
(SPEC 9): resolved once, connected by the checked address, TLS verified for the host
name, with the profile's timeout. Plain http:// only to a loopback address (P10: tests).

The token endpoint is not the mail server, so a token request holds none of the
profile's connection slots: it happens once per profile per run (per mailbox for
Google), and a slot held meanwhile would only keep a mail connection waiting.

Tokens are cached in this process only, until TOKEN_LEEWAY before they expire: never
written to the database, a log or a page. A process that starts asks again, which costs
one request; a token stored in the database would be a bearer credential at rest.
"""

import hashlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Client, OAuth2Error
from authlib.oauth2.rfc7523.assertion import sign_jwt_bearer_assertion
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from mailboxadmin.encryption import BoundSecret
from serverprofiles.connectors import outbound
from serverprofiles.connectors.endpoints import Endpoint
from serverprofiles.connectors.outcomes import Cause, Outcome
from serverprofiles.connectors.scrub import quote_reply
from serverprofiles.oauth_transport import HTTPFailure, PinnedSession

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# A cached token is used until this long (seconds) before it expires: a test that starts
# with it must still be logging in when the token is checked.
TOKEN_LEEWAY = 120
# The cache forgets its stale tokens when it holds this many.
CACHE_PRUNE_AT = 10_000
# Assumed lifetime of a token whose answer gives none.
DEFAULT_EXPIRES_IN = 300
LOOPBACK_NAMES = ("localhost",)

# What the mail server's refusal of a token usually means, by provider.
PROVIDER_FIXES = {
    "microsoft": (
        "In Microsoft Entra ID, grant the application the Office 365 Exchange Online "
        "application permission {permission} (with admin consent), register its service "
        "principal in Exchange Online (New-ServicePrincipal) and give it access to this mailbox "
        "(Add-MailboxPermission -AccessRights FullAccess)."
    ),
    "google": (
        "In the Google Workspace Admin console, allow the service account's client ID the scope "
        "https://mail.google.com/ under Security > API controls > Domain-wide delegation, and "
        "check that the mailbox exists and has IMAP enabled."
    ),
    "other": "Check that the application may use this mailbox and that the Scope is the one the "
    "mail server expects.",
}
MICROSOFT_PERMISSIONS = {"imap": "IMAP.AccessAsApp", "pop3": "POP.AccessAsApp", "smtp": "SMTP.SendAsApp"}


# Validation (P10) ---------------------------------------------------------------------


def token_url_problem(url: str) -> str | None:
    """Why `url` cannot be a token URL, or None: https://, or http:// to a loopback address."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": a "[" without its "]"
        return "Token URL must be an https URL such as https://login.example.com/oauth2/token."
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError:
        return "Token URL has a port that is not a number from 1 to 65535."
    if not parts.hostname or parts.username or parts.password or parts.fragment:
        return "Token URL must be an https URL such as https://login.example.com/oauth2/token."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return None
    return "Token URL must start with https:// (plain http:// only to a loopback address, for testing)."


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def service_account_key_problem(text: str) -> str | None:
    """Why `text` is not a Google service account's JSON key, or None."""
    try:
        key = json.loads(text)
    except ValueError:
        return "Service Account Key must be the JSON key file of a Google service account."
    if not isinstance(key, dict) or not all(
        isinstance(key.get(k), str) for k in ("client_email", "private_key")
    ):
        return "Service Account Key must be a service account's JSON key (with client_email and private_key)."
    try:
        private_key = RSAKey.import_key(key["private_key"])
    except (ValueError, JoseError):  # JoseError: a key of another type (EC, Ed25519)
        private_key = None
    if private_key is None or not private_key.is_private:  # a public key signs nothing
        return "Service Account Key holds no RSA private key in its private_key."
    return None


# Tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """What to ask a token endpoint for. The secret never appears in the repr."""

    profile_id: int | None
    token_url: str
    client_id: str
    scope: str
    secret: str = field(repr=False)
    subject: str = ""  # Google: the mailbox the token acts for
    timeout: float = 10.0
    grant: str = "client_credentials"  # or JWT_BEARER_GRANT

    @property
    def cache_key(self) -> tuple:
        # The secret is in the key only as a digest: a changed secret asks again.
        digest = hashlib.sha256(self.secret.encode()).hexdigest()
        return (self.profile_id, self.token_url, self.client_id, self.scope, self.subject, self.grant, digest)

    @property
    def where(self) -> str:
        parts = urlsplit(self.token_url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"


@dataclass(frozen=True)
class AccessToken:
    token: str = field(repr=False)
    expires_at: float

    @property
    def fresh(self) -> bool:
        return time.time() < self.expires_at - TOKEN_LEEWAY


_cache: dict[tuple, AccessToken] = {}
_cache_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}


@dataclass
class _TokenRun:
    """What one run (Test & Enable of many mailboxes) remembers until it ends: a token
    endpoint's refusal (1,000 mailboxes of a profile whose secret is wrong ask once), and
    each profile's stored secret, decrypted once (not twice a mailbox: ≈35 µs of the
    testing thread's time a mailbox, measured)."""

    failures: dict[tuple, Outcome] = field(default_factory=dict)
    secrets: dict[tuple, BoundSecret] = field(default_factory=dict)


_run: ContextVar[_TokenRun | None] = ContextVar("oauth_token_run", default=None)


def _prune() -> None:
    """Forget stale tokens (Google's are one a mailbox: the cache must not grow for ever).
    Called with _cache_lock held."""
    for stale in [key for key, token in _cache.items() if not token.fresh]:
        del _cache[stale]
        _key_locks.pop(stale, None)


def cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


@contextmanager
def token_run() -> Iterator[None]:
    """One run: a token endpoint's refusal, and each profile's decrypted secret, are
    remembered until the run ends."""
    reset = _run.set(_TokenRun())
    try:
        yield
    finally:
        _run.reset(reset)


def access_token(request: TokenRequest) -> str | Outcome:
    """An access token for `request`: the cached one while it is fresh, else a new one;
    an Outcome (the token endpoint's refusal or why it cannot be reached) otherwise."""
    key = request.cache_key
    run = _run.get()
    failures = run.failures if run is not None else None
    with _cache_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:  # concurrent callers for one profile wait for one request
        cached = _cache.get(key)
        if cached is not None and cached.fresh:
            return cached.token
        if failures is not None and key in failures:
            return failures[key]
        got = _fetch(request)
        if isinstance(got, AccessToken):
            with _cache_lock:
                if len(_cache) >= CACHE_PRUNE_AT:
                    _prune()
                _cache[key] = got
            return got.token
        if failures is not None:
            failures[key] = got
        return got


def _fetch(request: TokenRequest) -> AccessToken | Outcome:
    jwt_bearer = request.grant == JWT_BEARER_GRANT
    # Microsoft documents the client secret in the form body (client_secret_post); Google's
    # JWT-bearer grant authenticates by the signed assertion alone, its scope inside it.
    client = OAuth2Client(
        PinnedSession(request.timeout),
        client_id=request.client_id,
        client_secret=None if jwt_bearer else request.secret,
        token_endpoint_auth_method="none" if jwt_bearer else "client_secret_post",
        scope=None if jwt_bearer else request.scope,
    )
    try:
        kwargs = {"assertion": _google_assertion(request)} if jwt_bearer else {}
        token = client.fetch_token(request.token_url, grant_type=request.grant, **kwargs)
    except OAuth2Error as exc:
        return _refused(request, exc.error, exc.description)
    except HTTPFailure as exc:
        return Outcome.failure(
            Cause.TOKEN_REFUSED,
            f"the token endpoint {request.where} answered HTTP {exc.status} without a token.",
        )
    except (ValueError, KeyError) as exc:
        return Outcome.failure(
            Cause.SERVER_ERROR, f"the token endpoint {request.where} cannot be used: {exc}"
        )
    except Exception as exc:  # noqa: BLE001 (every network failure becomes an Outcome)
        return _unreachable(request, exc)
    if not isinstance(token.get("access_token"), str) or not token["access_token"]:
        return Outcome.failure(
            Cause.TOKEN_REFUSED, f"the token endpoint {request.where} answered without an access token."
        )
    expires_at = token.get("expires_at")
    if not isinstance(expires_at, int | float):
        expires_at = time.time() + DEFAULT_EXPIRES_IN
    return AccessToken(token["access_token"], float(expires_at))


def _google_assertion(request: TokenRequest) -> str:
    key = json.loads(request.secret)
    assertion = sign_jwt_bearer_assertion(
        key=RSAKey.import_key(key["private_key"]),
        issuer=key["client_email"],
        audience=request.token_url,
        subject=request.subject or None,
        claims={"scope": request.scope},
        header={"alg": "RS256", **({"kid": key["private_key_id"]} if key.get("private_key_id") else {})},
        expires_in=3600,
    )
    return assertion.decode() if isinstance(assertion, bytes) else assertion


def _refused(request: TokenRequest, error, description) -> Outcome:
    """The endpoint's `error` and `error_description` quoted, the secret removed."""
    said = quote_reply(str(error or "unknown_error"), secrets=[request.secret])
    if description:
        said += f" ({quote_reply(str(description), secrets=[request.secret])})"
    return Outcome.failure(
        Cause.TOKEN_REFUSED,
        f"the token endpoint {request.where} refused the client: {said}. Check the Client ID, its "
        "secret (or key) and the Tenant ID or Token URL.",
    )


def _unreachable(request: TokenRequest, exc: Exception) -> Outcome:
    host = urlsplit(request.token_url).hostname or ""
    where = f"the token endpoint {request.where}"
    if isinstance(exc, outbound.DestinationNotAllowed):
        return Outcome.failure(Cause.DESTINATION_NOT_ALLOWED, f"{where}: {exc}. Nothing was sent.")
    if isinstance(exc, socket.gaierror):
        return Outcome.failure(Cause.HOST_NOT_FOUND, f"{host} (the token endpoint) does not resolve.")
    if isinstance(exc, ConnectionRefusedError):
        return Outcome.failure(Cause.CONNECTION_REFUSED, f"{where} refused the connection.")
    if isinstance(exc, TimeoutError | socket.timeout):
        return Outcome.failure(
            Cause.TIMED_OUT, f"{where} did not answer within {request.timeout * 1000:.0f} ms."
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Outcome.failure(
            Cause.CERTIFICATE_REJECTED, f"the certificate of {where} was rejected: {exc.verify_message}."
        )
    if isinstance(exc, ssl.SSLError):
        return Outcome.failure(Cause.TLS_HANDSHAKE_FAILED, f"the TLS handshake with {where} failed.")
    if isinstance(exc, OSError | http.client.HTTPException):
        return Outcome.failure(Cause.CONNECTION_REFUSED, f"{where} cannot be reached ({type(exc).__name__}).")
    return Outcome.failure(Cause.SERVER_ERROR, f"{where} cannot be used ({type(exc).__name__}).")


def mail_server_refused_token(outcome: Outcome, *, provider: str, protocol: str) -> Outcome:
    """The mail server's refusal of a token, with the provider's usual fix in words."""
    fix = PROVIDER_FIXES.get(provider, PROVIDER_FIXES["other"]).format(
        permission=MICROSOFT_PERMISSIONS.get(protocol, "IMAP.AccessAsApp")
    )
    detail = outcome.message.split(": ", 1)[-1].rstrip()
    return Outcome.failure(Cause.TOKEN_REJECTED, f"{detail} {fix}")


# A profile's tokens -------------------------------------------------------------------


def _bound_secret(profile) -> BoundSecret:
    """The profile's stored client secret or key and what it is bound to: decrypted once
    a run (a run's profiles are the ones loaded with its mailboxes; the stored value is in
    the key, so a secret entered meanwhile is decrypted anew)."""
    run = _run.get()
    if run is None:
        return profile.get_bound_oauth_secret()
    key = (profile.pk, getattr(profile, profile.oauth_secret_column))
    if key not in run.secrets:
        run.secrets[key] = profile.get_bound_oauth_secret()
    return run.secrets[key]


def profile_access_token(profile, *, subject: str = "", server: Endpoint | None = None) -> str | Outcome:
    """An access token for `profile` (Google: acting for the mailbox `subject`) to log in
    to `server` with, or why not. The stored secret goes only to the token URL it was
    entered for, and its tokens only to the servers the profile had then (SPEC 9): a
    token for another `server` is not even asked for. Without a `server` (Test
    Connection, which sends the token nowhere) only the token URL is checked."""
    from mailboxadmin.encryption import CredentialDecryptionError
    from serverprofiles.bindings import oauth_binding_refusal, oauth_server_refusal
    from serverprofiles.models import OAuthProvider

    token_url = profile.oauth_token_endpoint
    try:
        bound = _bound_secret(profile)
    except CredentialDecryptionError as exc:
        return Outcome.failure(Cause.AUTHENTICATION_FAILED, str(exc))
    if not bound.secret or not token_url or not profile.oauth_client_id:
        return Outcome.failure(
            Cause.AUTHENTICATION_FAILED,
            f'the server profile "{profile.name}" lacks its OAuth Client ID, secret or Token URL. '
            "Enter them and test again.",
        )
    google = profile.oauth_provider == OAuthProvider.GOOGLE
    noun = "service account key" if google else "client secret"
    if refusal := oauth_binding_refusal(bound, token_url, noun):
        return refusal
    if server is not None and (refusal := oauth_server_refusal(bound, server, noun)):
        return refusal
    return access_token(
        TokenRequest(
            profile_id=profile.pk,
            token_url=token_url,
            client_id=profile.oauth_client_id.strip(),
            scope=profile.oauth_effective_scope,
            secret=bound.secret,
            subject=subject if google else "",
            timeout=profile.timeout_ms / 1000,
            grant=JWT_BEARER_GRANT if google else "client_credentials",
        )
    )
