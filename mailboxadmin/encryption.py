"""Credentials at rest: Fernet tokens under the keys in FIELD_ENCRYPTION_KEYS.

The first key encrypts; every key is tried to decrypt, so a key can be rotated in by
putting the new one first and running `rotate_encryption_keys`. The keys are never
derived from SECRET_KEY.

A password is stored bound to the servers it was entered for (SPEC 9): the token holds
`{"v": 1, "secret": ..., "dest": [{"host", "port", "tls"}, ...]}`, so the binding is as
hard to change as the secret, and rotation (which re-encrypts the payload as it is)
keeps it. A token holding a bare secret was stored before binding: it is read, but sent
nowhere (serverprofiles.bindings).
"""

import json
from dataclasses import dataclass
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialDecryptionError(Exception):
    """A stored credential that none of the configured keys decrypts."""


def _keys() -> tuple[str, ...]:
    keys = tuple(k.strip() for k in settings.FIELD_ENCRYPTION_KEYS if k.strip())
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: set it to one or more Fernet keys "
            "(make one with `manage.py generate_encryption_key`)."
        )
    return keys


@cache
def _fernets(keys: tuple[str, ...]) -> tuple[Fernet, ...]:
    try:
        return tuple(Fernet(key) for key in keys)
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes); make one with "
            "`manage.py generate_encryption_key`."
        ) from exc


@cache
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet(list(_fernets(keys)))


def multi_fernet() -> MultiFernet:
    return _multi_fernet(_keys())


def generate_key() -> str:
    return Fernet.generate_key().decode()


TLS_IMPLICIT = "ssl"
TLS_STARTTLS = "starttls"  # STARTTLS/STLS where offered, else plain text (if allowed)
PAYLOAD_VERSION = 1


def normalize_host(host: str) -> str:
    """A host name as a binding compares it: trimmed, lowercased, IDNA (A-labels)."""
    host = (host or "").strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:  # an IP literal, or a name the codec refuses: compared as typed
        return host


@dataclass(frozen=True)
class Destination:
    """Where a secret may be sent: a server's host, port and TLS mode."""

    host: str
    port: int | None
    tls: str

    @classmethod
    def of(cls, host: str, port: int | None, ssl: bool) -> "Destination":
        return cls(normalize_host(host), port, TLS_IMPLICIT if ssl else TLS_STARTTLS)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def tls_label(self) -> str:
        return "SSL" if self.tls == TLS_IMPLICIT else "STARTTLS"


@dataclass(frozen=True)
class BoundSecret:
    """A stored secret and the destinations it was entered for.

    `destinations` is None for a value stored before secrets were bound (the migration
    mailboxes 0009 binds those); such a value goes nowhere.
    """

    secret: str
    destinations: tuple[Destination, ...] | None

    def allows(self, destination: Destination) -> bool:
        return self.destinations is not None and destination in self.destinations


def encrypt(plaintext: str) -> str:
    """The token for `plaintext` under the first key ("" stays "")."""
    if not plaintext:
        return ""
    return multi_fernet().encrypt(plaintext.encode()).decode()


def encrypt_bound(secret: str, destinations) -> str:
    """The token for `secret` bound to `destinations`: the binding is inside the
    encrypted value, so nobody who can write the column can move it elsewhere."""
    if not secret:
        return ""
    payload = {
        "v": PAYLOAD_VERSION,
        "secret": secret,
        "dest": [{"host": d.host, "port": d.port, "tls": d.tls} for d in dict.fromkeys(destinations)],
    }
    return encrypt(json.dumps(payload, separators=(",", ":")))


def bind(secret: str, destinations, *, current: str = "") -> str:
    """`current` when it already holds `secret` bound to exactly `destinations` (so that
    entering the same password again changes nothing), else a new bound token."""
    if current and secret:
        try:
            held = decrypt_bound(current, record="")
        except CredentialDecryptionError:
            held = None
        if held is not None and held.secret == secret and held.destinations is not None:
            if set(held.destinations) == set(destinations):
                return current
    return encrypt_bound(secret, destinations)


def decrypt_bound(token: str, *, record: str) -> BoundSecret:
    """The secret of `token` and its binding; `record` names the owner in the error if no
    key fits."""
    if not token:
        return BoundSecret("", None)
    try:
        plaintext = multi_fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise CredentialDecryptionError(
            f"The stored password of {record} cannot be decrypted with any key in "
            "FIELD_ENCRYPTION_KEYS; restore the key it was encrypted with, or set "
            "the password again."
        ) from exc
    return _unwrap(plaintext)


def decrypt(token: str, *, record: str) -> str:
    """The secret of `token` (whatever it is bound to)."""
    return decrypt_bound(token, record=record).secret


def _unwrap(plaintext: str) -> BoundSecret:
    if plaintext.startswith("{"):
        try:
            payload = json.loads(plaintext)
        except ValueError:
            payload = None
        if (
            isinstance(payload, dict)
            and payload.get("v") == PAYLOAD_VERSION
            and isinstance(payload.get("secret"), str)
            and isinstance(payload.get("dest"), list)
        ):
            destinations = tuple(
                Destination(str(d["host"]), d["port"], str(d["tls"]))
                for d in payload["dest"]
                if isinstance(d, dict) and {"host", "port", "tls"} <= d.keys()
            )
            return BoundSecret(payload["secret"], destinations)
    return BoundSecret(plaintext, None)  # stored before secrets were bound


def reencrypt(token: str, *, record: str) -> str | None:
    """`token` re-encrypted under the first key, its payload (and binding) as it is; None
    when it already is under the first key. `record` names the owner if no key fits."""
    keys = _keys()
    data = token.encode()
    try:
        _fernets(keys)[0].decrypt(data)
    except (InvalidToken, ValueError):
        pass
    else:
        return None
    try:
        return _multi_fernet(keys).rotate(data).decode()
    except (InvalidToken, ValueError) as exc:
        raise CredentialDecryptionError(
            f"The stored password of {record} cannot be decrypted with any key in "
            "FIELD_ENCRYPTION_KEYS; nothing was rotated."
        ) from exc
