"""Failed-login limiting that stops guessing without locking anyone out for long.

Two counts, each of failures within LOGIN_FAILURE_WINDOW_SECONDS of the first one:

- Per client address, across user names: after LOGIN_ADDRESS_FAILURE_LIMIT failures,
  every sign-in from that address is refused until the window has passed. This stops
  one machine from trying many user names (spraying), and only that machine.
- Per user name, across addresses: after LOGIN_FAILURE_LIMIT failures, each further
  attempt must wait a delay that doubles with each failure (1, 2, 4 … seconds) but never
  exceeds LOGIN_MAX_DELAY_SECONDS. Guessing one account from many machines is slowed to
  one guess per delay, while its owner can always sign in after at most that delay: a
  delay, not a lock-out, so nobody can lock an administrator out by failing on purpose.

An attempt is counted before its password is checked, in one transaction that locks
both rows, and a success gives its count back: parallel attempts therefore never get
more passwords checked than the limits allow.

django-axes was considered and not used (8.3): one failure limit for all its lock-out
parameters, a lock-out rather than a bounded delay per user name, and its check and its
count are separate queries (parallel attempts all pass the check before any is counted).

Behind reverse proxies, TRUSTED_PROXY_COUNT says how many, and the client address is
read from X-Forwarded-For that many entries from the right (the entries the trusted
proxies wrote); otherwise from REMOTE_ADDR, and a client's X-Forwarded-For is ignored.
"""

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mailboxadmin.models import LoginFailures

Scope = LoginFailures.Scope


@dataclass(frozen=True)
class Refusal:
    """Why an attempt was refused without checking its password, and for how long."""

    scope: str
    seconds: int

    @property
    def message(self) -> str:
        if self.scope == Scope.ADDRESS:
            minutes = math.ceil(self.seconds / 60)
            return (
                "Too many failed sign-in attempts from your network address. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
            )
        return (
            "Too many failed sign-in attempts for this user name. "
            f"Wait {self.seconds} second{'s' if self.seconds != 1 else ''}, then try again."
        )


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT proxies in front,
    the X-Forwarded-For entry the outermost trusted proxy wrote.

    A header with fewer entries than trusted proxies did not come through all of them;
    its entries may all be the client's own, so the connection's address is used.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    entries = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    entries = [entry for entry in entries if entry]
    if len(entries) < count:
        return remote
    try:
        return str(ipaddress.ip_address(entries[-count]))
    except ValueError:
        return remote


def _address_key(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return _digest(address)
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return _digest(str(parsed.ipv4_mapped))
        # One IPv6 client usually holds a whole /64 and can change address within it.
        return _digest(str(ipaddress.ip_network(f"{parsed}/64", strict=False)))
    return _digest(str(parsed))


def _username_key(username: str) -> str:
    # Sign-in ignores neither case nor surrounding space, but a guesser must not get a
    # fresh count by changing them.
    return _digest(username.strip().casefold())


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _locked_row(scope: str, key: str, now: datetime) -> LoginFailures:
    """The row for `key`, locked until the transaction ends; a passed window reads as zero."""
    row, _ = LoginFailures.objects.select_for_update().get_or_create(
        scope=scope, key=key, defaults={"window_started": now}
    )
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    if now - row.window_started >= window and (row.retry_at is None or row.retry_at <= now):
        row.failures, row.window_started, row.retry_at = 0, now, None
    return row


def username_delay(failures: int) -> int:
    """Seconds to wait after the `failures`-th failure for one user name."""
    if failures < settings.LOGIN_FAILURE_LIMIT:
        return 0
    return min(settings.LOGIN_MAX_DELAY_SECONDS, 2 ** (failures - settings.LOGIN_FAILURE_LIMIT))


def login_attempt_start(username: str, address: str) -> Refusal | None:
    """Count an attempt as failed before its password is checked, or refuse it.

    Call login_attempt_succeeded() when the password was right.
    """
    # The rows are always locked address first, then user name (here and on success), so
    # two attempts never wait for each other in a cycle.
    with transaction.atomic():
        now = timezone.now()
        by_address = _locked_row(Scope.ADDRESS, _address_key(address), now)
        if by_address.failures >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            window_end = by_address.window_started + timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
            return Refusal(
                Scope.ADDRESS, _seconds_until(window_end, now, most=settings.LOGIN_FAILURE_WINDOW_SECONDS)
            )
        by_username = _locked_row(Scope.USERNAME, _username_key(username), now)
        if by_username.retry_at is not None and by_username.retry_at > now:
            wait = _seconds_until(by_username.retry_at, now, most=settings.LOGIN_MAX_DELAY_SECONDS)
            return Refusal(Scope.USERNAME, wait)
        by_address.failures += 1
        by_address.save()
        by_username.failures += 1
        delay = username_delay(by_username.failures)
        by_username.retry_at = now + timedelta(seconds=delay) if delay else None
        by_username.save()
        _delete_passed_windows(now)
    return None


def _delete_passed_windows(now: datetime) -> None:
    """Forget counts whose window has passed. Rows another attempt holds are skipped (on
    PostgreSQL): waiting for them could close a cycle of locks."""
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    passed = LoginFailures.objects.filter(
        Q(retry_at__isnull=True) | Q(retry_at__lte=now), window_started__lt=now - window
    )
    pks = list(passed.select_for_update(skip_locked=True).values_list("pk", flat=True)[:1000])
    if pks:
        LoginFailures.objects.filter(pk__in=pks).delete()


def login_attempt_succeeded(username: str, address: str) -> None:
    """The password was right: the user name starts afresh, and the address gets back the
    failure counted in advance (not more: signing in must not reset a guesser's count)."""
    with transaction.atomic():
        LoginFailures.objects.filter(scope=Scope.ADDRESS, key=_address_key(address), failures__gt=0).update(
            failures=F("failures") - 1
        )
        LoginFailures.objects.filter(scope=Scope.USERNAME, key=_username_key(username)).delete()


def _seconds_until(moment: datetime, now: datetime, *, most: int) -> int:
    # At most `most`: another process may have written `moment` from a clock read a few
    # milliseconds after this one's.
    return min(most, max(1, math.ceil((moment - now).total_seconds())))
