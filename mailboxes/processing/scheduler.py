"""Which mailbox is processed when, and by which worker (SPEC section 8).

Each processed mailbox has a MailboxSync row: its lease, its next poll, its failures.

Leases. A worker claims mailboxes with one conditional UPDATE ("lease these rows to me if
they are free or their lease has expired, and they are due"), the technique of the
connection cap (serverprofiles/connection_cap.py): the database lets exactly one of two
racing workers change a row, on PostgreSQL (row lock, the condition re-checked after the
wait) as on SQLite (one writer at a time), so any number of workers on any number of
hosts share one database and never process one mailbox twice at once. Leases are reckoned
by the database's clock, the one every host shares, and renewed while a pass lasts
(`LeaseKeeper`); a worker killed mid-pass holds its mailboxes only until its leases
expire, then others take them over. No transaction stays open while a mailbox is being
processed.

Polling. After a pass the mailbox is due again after its profile's Minimum Polling
Interval, and never sooner than MAIL_PROCESSING_MIN_INTERVAL_SECONDS (60 s by default:
an interval of 0 means "as often as the workers allow", not a connection loop). A
failed pass backs off: the next attempt waits the interval plus MAIL_PROCESSING_BACKOFF_
SECONDS (60 s) doubled for each further failure in a row, at most MAIL_PROCESSING_
BACKOFF_MAX_SECONDS (1 h): 1, 2, 4, 8, 16, 32, 60, 60 … minutes on top of the interval.
A permanent failure (authentication, the mailbox gone) is also an error alert. After the
organisation's Disable Mailbox After Failures consecutive failures, transient or not, the
mailbox is disabled for incoming email with an error alert (services/processing.py);
Test & Enable enables it again, clears the failures and makes it due now
(`mailboxes_enabled`). A successful pass clears the failures. A pass the engine skips
(every connection the profile allows stayed in use by others for the slot's wait limit,
or a profile it cannot read) is no failure: the mailbox is due again after its interval.

Process Now only makes a mailbox due now (`make_due_now`): a running worker, which looks
for due mailboxes every MAIL_PROCESSING_IDLE_SECONDS, picks it up within seconds.
"""

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Iterable
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, IntegerField, Q, Value, When
from django.db.models.functions import Now

from mailboxes.models import Mailbox, MailboxSync, OrganizationSettings
from mailboxes.processing.eligibility import processable
from mailboxes.processing.results import PassResult
from mailboxes.services.processing import mailbox_disable_incoming, processing_failed_alert

logger = logging.getLogger(__name__)

# Missing MailboxSync rows are made this many at a time.
SYNC_BATCH = 5000


def new_holder() -> str:
    """A worker's name on the leases it holds: host, process, and a random part (a
    process id is reused, and two hosts may have the same one)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.MAIL_PROCESSING_LEASE_SECONDS)


def _from_now(delay: timedelta) -> ExpressionWrapper:
    """The database's time now plus `delay`."""
    return ExpressionWrapper(Now() + Value(delay), output_field=DateTimeField())


def _claimable() -> Q:
    """Free, or held by a lease that has expired (by the database's clock)."""
    return Q(lease_holder="") | Q(lease_expires_on__lt=Now())


def _due() -> Q:
    return Q(next_poll_on__isnull=True) | Q(next_poll_on__lte=Now())


# The order mailboxes are claimed in: the longest overdue first (never polled: first of
# all); of those due at the same moment, forward mailboxes first — one forward mailbox
# carries the mail of many users and queues, and started first it runs beside the own
# mailboxes instead of alone after them (the processing bench: 100 own mailboxes and one
# forward mailbox enabled together, 2 workers — the forward pass ran last, alone, for
# 29–41 s); then by id, so the order is stable.
_CLAIM_ORDER = (
    F("next_poll_on").asc(nulls_first=True),
    Case(
        When(mailbox__kind=Mailbox.Kind.FORWARD, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    ).asc(),
    "pk",
)


def _processable_ids(org: OrganizationSettings | None = None):
    return processable(Mailbox.objects.all(), org).values("pk")


# MailboxSync rows ---------------------------------------------------------------------


def create_missing_syncs() -> int:
    """A MailboxSync (due now) for each processable mailbox that has none — a mailbox
    enabled by a path other than Test & Enable, say. Returns how many were made."""
    made = 0
    missing = (
        processable(Mailbox.objects.all())
        .filter(sync__isnull=True)
        .order_by()
        .values_list("pk", flat=True)
        .iterator(chunk_size=SYNC_BATCH)
    )
    batch: list[int] = []
    for pk in missing:
        batch.append(pk)
        if len(batch) == SYNC_BATCH:
            made += _create_syncs(batch)
            batch = []
    return made + _create_syncs(batch)


def _create_syncs(mailbox_ids: list[int]) -> int:
    if not mailbox_ids:
        return 0
    # Another worker may be making the same rows: the conflict is not an error.
    created = MailboxSync.objects.bulk_create(
        [MailboxSync(mailbox_id=pk) for pk in mailbox_ids], ignore_conflicts=True
    )
    return len(created)


def make_due_now(mailbox: Mailbox) -> None:
    """Process Now: the mailbox is due now (by the database's clock); a running worker
    picks it up within MAIL_PROCESSING_IDLE_SECONDS. Whether it is processed at all is
    still up to eligibility (approved, active, enabled for incoming email)."""
    _create_syncs([mailbox.pk])
    MailboxSync.objects.filter(pk=mailbox.pk).update(next_poll_on=Now())


def mailboxes_enabled(mailbox_ids: Iterable[int]) -> None:
    """Test & Enable enabled these mailboxes for incoming email: their failures are
    forgotten and they are due now (no next poll: first in line), in one statement;
    their leases, if any, are left alone."""
    rows = [
        MailboxSync(mailbox_id=pk, consecutive_failures=0, last_error="", next_poll_on=None)
        for pk in mailbox_ids
    ]
    if rows:
        MailboxSync.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["mailbox"],
            update_fields=["consecutive_failures", "last_error", "next_poll_on"],
        )


# Leases -------------------------------------------------------------------------------


def claim_due(holder: str, limit: int, *, among: list[int] | None = None) -> list[int]:
    """Lease to `holder` up to `limit` processable mailboxes that are due and free (or
    whose lease expired), in _CLAIM_ORDER; returns their ids. `among` limits
    the choice to those mailboxes."""
    if limit <= 0:
        return []
    candidates = MailboxSync.objects.filter(_claimable(), _due(), mailbox__in=_processable_ids())
    if among is not None:
        candidates = candidates.filter(pk__in=among)
    ids = list(candidates.order_by(*_CLAIM_ORDER).values_list("pk", flat=True)[:limit])
    return _claim(holder, ids, due=True)


def due_ids() -> list[int]:
    """The processable mailboxes due now (by the database's clock), in the order
    claim_due takes them."""
    due = MailboxSync.objects.filter(_due(), mailbox__in=_processable_ids())
    return list(due.order_by(*_CLAIM_ORDER).values_list("pk", flat=True))


def claim_named(holder: str, mailbox_ids: list[int]) -> list[int]:
    """Lease to `holder` those of the mailboxes that are free (or whose lease expired),
    due or not: `process_mailboxes ADDRESS --once` processes them now."""
    _create_syncs(mailbox_ids)
    return _claim(holder, mailbox_ids, due=False)


def _claim(holder: str, ids: list[int], *, due: bool) -> list[int]:
    """One conditional UPDATE: the conditions are checked again on each row as it is
    written, so of two workers racing for a row only one gets it."""
    if not ids:
        return []
    condition = _claimable() & _due() if due else _claimable()
    MailboxSync.objects.filter(condition, pk__in=ids).update(
        lease_holder=holder, lease_expires_on=_from_now(lease_duration()), last_attempt_on=Now()
    )
    return sorted(MailboxSync.objects.filter(pk__in=ids, lease_holder=holder).values_list("pk", flat=True))


def renew_leases(holder: str, mailbox_ids: Collection[int] | None = None) -> int:
    """Extend the leases `holder` still holds (only those of `mailbox_ids`, when given);
    returns how many."""
    leases = MailboxSync.objects.filter(lease_holder=holder)
    if mailbox_ids is not None:
        leases = leases.filter(pk__in=mailbox_ids)
    return leases.update(lease_expires_on=_from_now(lease_duration()))


def release_leases(holder: str) -> None:
    """Give back every lease `holder` holds (a worker stopping)."""
    MailboxSync.objects.filter(lease_holder=holder).update(lease_holder="", lease_expires_on=None)


class LeaseKeeper:
    """Renews a holder's leases every quarter lease while passes last, in a thread of its
    own (a pass blocks its thread for as long as the mail server takes). Given
    `in_pass` (the ids of the mailboxes being processed now), only theirs: a lease whose
    pass could not be recorded (the database away at that moment) must run out so the
    mailbox is taken up again, not be held for as long as the worker lives."""

    def __init__(self, holder: str, in_pass: Callable[[], Collection[int]] | None = None):
        self.holder = holder
        self.in_pass = in_pass
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-lease-keeper", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = max(0.2, settings.MAIL_PROCESSING_LEASE_SECONDS / 4)
        try:
            while not self._stop.wait(interval):
                try:
                    close_old_connections()  # a connection the database ended is replaced
                    renew_leases(self.holder, None if self.in_pass is None else self.in_pass())
                except Exception:  # the database away for a moment: try at the next turn
                    logger.warning(
                        "Could not renew the mail-processing leases of %s", self.holder, exc_info=True
                    )
        finally:
            connection.close()


# After a pass ---------------------------------------------------------------------------


def polling_interval(profile) -> timedelta:
    """The profile's Minimum Polling Interval, never below the workers' floor."""
    minutes = profile.min_polling_interval if profile is not None else 0
    return timedelta(seconds=max(minutes * 60, settings.MAIL_PROCESSING_MIN_INTERVAL_SECONDS))


def backoff(failures: int) -> timedelta:
    """The wait added to the interval after `failures` (≥ 1) failed passes in a row."""
    first, cap = settings.MAIL_PROCESSING_BACKOFF_SECONDS, settings.MAIL_PROCESSING_BACKOFF_MAX_SECONDS
    return timedelta(seconds=min(cap, first * 2 ** min(failures - 1, 30)))


def finish_pass(mailbox: Mailbox, holder: str, result: PassResult) -> None:
    """Record a pass over `mailbox` and give its lease back: the next poll, the failures
    in a row, and for a failed pass its alerts, and disabling when there were too many."""
    interval = polling_interval(mailbox.server_profile)
    with transaction.atomic():
        sync = MailboxSync.objects.select_for_update().filter(pk=mailbox.pk).first()
        if sync is None:  # the mailbox was deleted meanwhile
            return
        if not result.pass_failed:
            failures = 0
            values = {
                "last_sync_on": Now(),
                "next_poll_on": _from_now(interval),
                "consecutive_failures": 0,
                "last_error": "",
            }
        else:
            failures = sync.consecutive_failures + 1
            values = {
                "next_poll_on": _from_now(interval + backoff(failures)),
                "consecutive_failures": failures,
                "last_error": result.cause,
            }
        mine = Q(lease_holder=holder)
        MailboxSync.objects.filter(pk=mailbox.pk).update(**values)
        # The lease only if it is still ours: an expired one may be another worker's now.
        MailboxSync.objects.filter(mine, pk=mailbox.pk).update(lease_holder="", lease_expires_on=None)
        if not result.pass_failed:
            return
        if failures >= OrganizationSettings.load().disable_after_failures:
            mailbox_disable_incoming(mailbox.pk, failures=failures, cause=result.cause)
        elif not result.transient:
            processing_failed_alert(mailbox.pk, result.cause)
    logger.info(
        "Mail processing of %s failed (%s, %s in a row): %s",
        mailbox.email,
        "transient" if result.transient else "permanent",
        failures,
        result.cause,
    )


def postpone(mailbox: Mailbox, holder: str) -> None:
    """A leased mailbox that was not processed after all (the engine skipped it: an
    Exchange Server profile, say) is due again after its interval, like a pass that
    found nothing — not at once, or the workers would claim it again and again — and
    its lease is given back. Its failures are left as they are."""
    MailboxSync.objects.filter(pk=mailbox.pk).update(
        next_poll_on=_from_now(polling_interval(mailbox.server_profile))
    )
    release(mailbox.pk, holder)


def release(mailbox_id: int, holder: str) -> None:
    """Give back a lease without recording a pass (the mailbox was not processed)."""
    MailboxSync.objects.filter(pk=mailbox_id, lease_holder=holder).update(
        lease_holder="", lease_expires_on=None
    )
