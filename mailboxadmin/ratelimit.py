"""Failed-login limiting: a username tried from one address gets a few guesses, not millions.

After LOGIN_FAILURE_LIMIT failures for one username from one client address within
LOGIN_FAILURE_WINDOW_SECONDS, further attempts for that pair are refused, without even
checking the password, until the window (which starts at the first failure) has passed.
Other usernames, and the same username from other addresses, are unaffected. The count
lives in the cache (the database cache in production, so every worker sees it).
"""

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache


def _key(username: str, address: str) -> str:
    # Hashed: usernames may hold characters the cache keys must not, and the cache table
    # need not list who was being guessed.
    digest = hashlib.sha256(f"{username.strip().lower()}\0{address}".encode()).hexdigest()
    return f"login-failures:{digest}"


def client_address(request) -> str:
    """The address the connection came from. Behind a proxy, configure the proxy (not a
    header the client controls) to set REMOTE_ADDR."""
    return request.META.get("REMOTE_ADDR", "")


def _failures(key: str, now: float) -> tuple[int, float]:
    """(failures so far, when the window started); a window that has passed counts 0."""
    count, started = cache.get(key, (0, now))
    if now - started >= settings.LOGIN_FAILURE_WINDOW_SECONDS:
        return 0, now
    return count, started


def login_blocked(username: str, address: str) -> bool:
    count, _ = _failures(_key(username, address), time.time())
    return count >= settings.LOGIN_FAILURE_LIMIT


def login_failed(username: str, address: str) -> None:
    """Count a failure. The window starts at the first failure and is not extended by
    later ones (the cache's own incr() would reset the expiry on some backends)."""
    key, now = _key(username, address), time.time()
    count, started = _failures(key, now)
    remaining = started + settings.LOGIN_FAILURE_WINDOW_SECONDS - now
    cache.set(key, (count + 1, started), timeout=max(1, math.ceil(remaining)))


def login_succeeded(username: str, address: str) -> None:
    cache.delete(_key(username, address))
