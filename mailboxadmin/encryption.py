"""Credentials at rest: Fernet tokens under the keys in FIELD_ENCRYPTION_KEYS.

The first key encrypts; every key is tried to decrypt, so a key can be rotated in by
putting the new one first and running `rotate_encryption_keys`. The keys are never
derived from SECRET_KEY.
"""

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


def encrypt(plaintext: str) -> str:
    """The token for `plaintext` under the first key ("" stays "")."""
    if not plaintext:
        return ""
    return multi_fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, record: str) -> str:
    """The plaintext of `token`; `record` names the owner in the error if no key fits."""
    if not token:
        return ""
    try:
        return multi_fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError) as exc:
        raise CredentialDecryptionError(
            f"The stored password of {record} cannot be decrypted with any key in "
            "FIELD_ENCRYPTION_KEYS; restore the key it was encrypted with, or set "
            "the password again."
        ) from exc


class Reencryptor:
    """Re-encrypts tokens under the first key of FIELD_ENCRYPTION_KEYS, as read when made.

    Each token is tried under one key after another, starting with the key that
    decrypted the previous token: a rotation meets long runs of tokens under one key, so
    most tokens cost one decryption, plus one encryption when that key is not the first.
    """

    def __init__(self):
        keys = tuple(dict.fromkeys(_keys()))  # a key listed twice is still the first key
        self._fernets = _fernets(keys)
        self._order = list(range(len(keys)))

    def __call__(self, token: str, *, record: str) -> str | None:
        """`token` re-encrypted under the first key, or None when it already is."""
        data = token.encode()
        for position, index in enumerate(self._order):
            try:
                plaintext = self._fernets[index].decrypt(data)
            except (InvalidToken, ValueError):
                continue
            if position:
                self._order.insert(0, self._order.pop(position))
            return None if index == 0 else self._fernets[0].encrypt(plaintext).decode()
        raise CredentialDecryptionError(
            f"The stored password of {record} cannot be decrypted with any key in "
            "FIELD_ENCRYPTION_KEYS; nothing was rotated."
        )
