"""Test & Enable (A2–A6): test mailboxes' connections and record what was found.

Entry points (views, admin actions, commands) call:
- `can_test_mailboxes(user)` / `check_can_test_mailboxes(user)`: the permission gate.
- `mailbox_test_and_enable(mailbox, actor=)`: test one mailbox now.
- `schedule_mailbox_tests(mailbox_ids, actor=)`: stamp them scheduled and test them in
  the background task; `profile_schedule_tests(profile, actor)` does it for all of a
  profile's active mailboxes.
- `run_mailbox_tests(mailbox_ids, actor=)`: test many now, at most the profile's Maximum
  Concurrent Connections at a time (what the task and the `test_mailboxes` command run).

Every connection holds one of its profile's connection slots (serverprofiles/
connection_cap.py), so Maximum Concurrent Connections holds across every process and
host. Network work happens in worker threads that never touch the database: each holds a
slot the calling thread claimed for it (several in one statement) and tests waiting
mailboxes one after another while the slot's lease lasts; the calling thread renews the
leases in use (one statement per profile) and gives back the slots nothing waits for.
Results are recorded by the calling thread, the tests that finish close together in one
transaction (a few statements for the whole group, whatever its size). Mailboxes are
loaded and planned BATCH_SIZE at a time, the next batch while the last half of the
previous one is still being tested.
"""

import itertools
import logging
import queue
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.admin.models import CHANGE
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from mailboxes.models import ApprovalStatus, Mailbox, MailboxAlert, OrganizationSettings, TestStatus
from mailboxes.models.mailboxes import M15_WARNING, SSYNC, WORKLOADS
from mailboxes.processing.scheduler import mailboxes_enabled
from mailboxes.services.bulk import insert_log_entries
from mailboxes.services.endpoints import mailbox_endpoint as _mailbox_endpoint
from serverprofiles.connection_cap import (
    HeldSlot,
    NoConnectionSlot,
    connection_slot,
    connection_slot_lease,
    connection_slot_wait_limit,
    connection_slots_claim,
    connection_slots_release,
    connection_slots_renew,
)
from serverprofiles.connectors import (
    APPROVAL_REQUIRED_MESSAGE,
    Cause,
    Endpoint,
    Outcome,
    check_incoming,
    check_outgoing,
)
from serverprofiles.models import EmailServerProfile
from serverprofiles.oauth import mail_server_refused_token, token_run

logger = logging.getLogger(__name__)

TEST_PERMISSION = "mailboxes.test_mailbox"
WORKLOAD_LABELS = {
    "incoming": "Incoming Email",
    "outgoing": "Outgoing Email",
    "act": "Appointments, Contacts, and Tasks",
}
INACTIVE_NOTE = (
    "Not tested: the mailbox is inactive, and inactive mailboxes are neither tested nor processed."
)
NO_PROFILE_NOTE = f"Not tested: {M15_WARNING}"
CHANGED_NOTE = (
    "Test results discarded: the mailbox or its server profile changed while it was being tested. "
    "Test it again."
)
APPROVAL_NOTE_ALERT = APPROVAL_REQUIRED_MESSAGE
NOTHING_TO_TEST_NOTE = (
    "Nothing to test: no workload uses Server-Side Synchronization, so every status stays Not Run."
)
# Mailboxes are loaded, tested and recorded this many at a time.
BATCH_SIZE = 500
# The workers start on a batch once this many of its mailboxes are planned, not after the
# whole batch: planning 500 mailboxes takes 0.05–0.1 s of the testing thread (measured in
# `make bench`), in which the first connections are made instead of waited for.
DISPATCH_FIRST = 20
# Finished tests are recorded together: at most this many in one transaction, waiting at
# most this long (seconds) after the first for others to finish.
RECORD_GROUP = 100
RECORD_WAIT = 0.1
# While mailboxes wait for a connection slot held elsewhere, the run tries again this often
# (seconds).
SLOT_POLL = 0.1
# A run renews the leases of its slots when less than this (seconds) is left beyond the
# longest test of one mailbox: each renewal is one statement for all of a profile's slots.
RENEW_AHEAD = 2.5
# The most connections testing one mailbox opens, one after another (one per workload).
MAX_CONNECTIONS_PER_MAILBOX = len(WORKLOADS)


# Permission ---------------------------------------------------------------------------


def can_test_mailboxes(user) -> bool:
    """May `user` run Test & Enable (and a profile's Test Connection,
    serverprofiles/connection_tests.py)?"""
    return bool(user is not None and user.is_active and user.has_perm(TEST_PERMISSION))


def check_can_test_mailboxes(user) -> None:
    """Raise PermissionDenied unless `user` has the permission "Test & Enable Mailboxes"."""
    if not can_test_mailboxes(user):
        raise PermissionDenied('Testing mailboxes needs the permission "Test & Enable Mailboxes".')


# Results ------------------------------------------------------------------------------


@dataclass
class MailboxTestResult:
    """What testing one mailbox found. `outcomes[w]` is None for a workload left Not Run."""

    mailbox_id: int
    email: str
    tested: bool
    outcomes: dict[str, Outcome | None] = field(default_factory=dict)
    note: str = ""

    @property
    def failed(self) -> bool:
        return any(outcome is not None and not outcome.ok for outcome in self.outcomes.values())

    def status(self, workload: str) -> str:
        """Success / Failure / Not Run, as the mailbox shows it."""
        outcome = self.outcomes.get(workload)
        if outcome is None:
            return TestStatus.NOT_RUN.label
        return TestStatus.SUCCESS.label if outcome.ok else TestStatus.FAILURE.label

    @property
    def causes(self) -> list[str]:
        """The failure messages, each once."""
        messages = []
        for outcome in self.outcomes.values():
            if outcome is not None and not outcome.ok and outcome.message not in messages:
                messages.append(outcome.message)
        return messages


# Planning a mailbox's test (database work, in the calling thread) ---------------------


@dataclass
class _Plan:
    mailbox: Mailbox
    configuration: tuple
    # Per workload: an Endpoint to contact, an Outcome decided without contacting
    # anything, or None (Not Run).
    work: dict[str, Endpoint | Outcome | None] = field(default_factory=dict)
    note: str = ""

    @property
    def tested(self) -> bool:
        return not self.note or self.note == NOTHING_TO_TEST_NOTE

    @property
    def connects(self) -> bool:
        return self.connections > 0

    @property
    def connections(self) -> int:
        """How many connections the plan opens, one after another."""
        return sum(isinstance(item, Endpoint) for item in self.work.values())


def _configuration(mailbox: Mailbox, profile_version) -> tuple:
    """What a test result describes (M13): if any of it changes, the result is stale."""
    return (
        mailbox.email.lower(),
        mailbox.state,
        mailbox.approval_status,
        mailbox.server_profile_id,
        profile_version,
        mailbox.incoming_method,
        mailbox.outgoing_method,
        mailbox.act_method,
        mailbox.allow_credentials,
        mailbox.username,
        mailbox.password_ciphertext,
    )


def _checked(workload: str, endpoint: Endpoint, plan: _Plan) -> Outcome:
    """One workload's check; a refused token says what usually fixes it (SPEC 7). (The
    profile was loaded with the plan: no query here, in a worker thread.)"""
    outcome = (check_incoming if workload == "incoming" else check_outgoing)(endpoint)
    if endpoint.access_token and outcome.cause == Cause.AUTHENTICATION_FAILED:
        provider = plan.mailbox.server_profile.oauth_provider
        return mail_server_refused_token(outcome, provider=provider, protocol=endpoint.protocol)
    return outcome


def _plan(mailbox: Mailbox, org: OrganizationSettings) -> _Plan:
    profile = mailbox.server_profile
    plan = _Plan(mailbox, _configuration(mailbox, profile.version if profile else None))
    plan.work = dict.fromkeys(WORKLOADS)
    if not mailbox.is_active:  # M16
        plan.note = INACTIVE_NOTE
        return plan
    workloads = [w for w, (method, *_rest) in WORKLOADS.items() if getattr(mailbox, method) == SSYNC]
    if not workloads:
        plan.note = NOTHING_TO_TEST_NOTE
        return plan
    if profile is None:  # M15
        plan.note = NO_PROFILE_NOTE
        return plan
    approval_missing = (
        org.approval_required_for(mailbox.kind) and mailbox.approval_status != ApprovalStatus.APPROVED
    )
    for workload in workloads:
        if approval_missing:  # A2
            plan.work[workload] = Outcome.approval_required()
        else:
            plan.work[workload] = _mailbox_endpoint(mailbox, workload)
    return plan


# Testing (network work, in worker threads) --------------------------------------------


def _connect(plan: _Plan) -> dict[str, Outcome | None]:
    """Run a plan's connections one after another: one connection per mailbox at a time."""
    outcomes: dict[str, Outcome | None] = {}
    for workload, item in plan.work.items():
        if isinstance(item, Endpoint):
            outcomes[workload] = _checked(workload, item, plan)
        else:
            outcomes[workload] = item
    return outcomes


def _connect_within_cap(plan: _Plan) -> dict[str, Outcome | None]:
    """Run a plan's connections holding one of its profile's connection slots."""
    profile = plan.mailbox.server_profile
    try:
        with connection_slot(profile, lease=connection_slot_lease(profile, connections=plan.connections)):
            return _connect(plan)
    except NoConnectionSlot as exc:
        return _no_slot(plan, exc)


def _no_slot(plan: _Plan, exc: NoConnectionSlot) -> dict[str, Outcome | None]:
    """The outcomes of a plan that waited for a connection slot in vain."""
    failure = Outcome.failure(Cause.TIMED_OUT, str(exc))
    return {workload: failure if isinstance(item, Endpoint) else item for workload, item in plan.work.items()}


# Recording (database work, in the calling thread) -------------------------------------

_RECORDED_FIELDS = [
    *(name for _method, *names in WORKLOADS.values() for name in names),
    "test_completed_on",
    "test_scheduled_on",
    "version",
    "modified_on",
]


def _alert(mailbox: Mailbox, severity: str, message: str, workload: str = "general") -> MailboxAlert:
    return MailboxAlert(mailbox=mailbox, severity=severity, workload=workload, message=message)


def _record(plan: _Plan, outcomes: dict[str, Outcome | None], actor) -> MailboxTestResult:
    """Record one mailbox's test (see _record_group)."""
    return _record_group([(plan, outcomes)], actor)[0]


@transaction.atomic
def _record_group(items: list[tuple[_Plan, dict]], actor) -> list[MailboxTestResult]:
    """Record the tests of several mailboxes in one transaction: lock their rows, drop
    results whose mailbox or profile changed meanwhile (M13), then write statuses,
    enabled-for flags, Mailbox Test Completed On and a new version per mailbox, their
    alerts and history entries, a statement each for the whole group."""
    locked = (
        Mailbox.objects.select_for_update(of=("self",))
        .annotate(profile_version=F("server_profile__version"))
        .filter(pk__in=[plan.mailbox.pk for plan, _outcomes in items])
        .order_by("pk")  # the same lock order in every worker: no deadlock between them
    )
    currents = {mailbox.pk: mailbox for mailbox in locked}
    now = timezone.now()
    results, rows, alerts, entries = [], [], [], []
    for plan, outcomes in items:
        current = currents.get(plan.mailbox.pk)
        if current is None:  # deleted meanwhile: nothing to record on
            results.append(
                MailboxTestResult(
                    plan.mailbox.pk,
                    plan.mailbox.email,
                    tested=False,
                    note="Not tested: the mailbox was deleted.",
                )
            )
            continue
        result, mailbox_alerts, summary = _outcome(plan, outcomes, current)
        current.test_scheduled_on = None
        # A new version: an edit form opened before the test is stale now, and saving it
        # would otherwise write the old test results back.
        current.version += 1
        current.modified_on = now
        if result.tested:
            current.test_completed_on = now
            entries.append((current, CHANGE, f"Test & Enable: {summary or 'nothing to test'}."))
            logger.info("Tested mailbox %s: %s", current.email, "; ".join([summary, *result.causes]))
        else:
            logger.info("Mailbox %s: %s", current.email, result.note)
        _copy_recorded_fields(current, plan.mailbox)
        results.append(result)
        rows.append(current)
        alerts.extend(mailbox_alerts)
    if rows:
        _update_recorded(rows)
        # Enabled for incoming email again: mail processing starts afresh, now (SPEC 8).
        mailboxes_enabled(r.mailbox_id for r in results if r.tested and r.status("incoming") == "Success")
        MailboxAlert.objects.bulk_create(alerts)
        insert_log_entries(actor, entries)
    return results


def _update_recorded(rows: list[Mailbox]) -> None:
    """Write the recorded fields of the locked `rows` in one UPDATE. A value every row
    shares (a group of successes shares all but the version) is set as it is; only a
    field whose values differ gets a CASE over the rows. (bulk_update builds a CASE for
    every field of every row, which was most of the cost of recording a group.)"""
    values = {}
    for name in _RECORDED_FIELDS:
        if name == "version":
            continue
        distinct = {getattr(row, name) for row in rows}
        if len(distinct) == 1:
            values[name] = distinct.pop()
            continue
        field = Mailbox._meta.get_field(name)
        whens = [When(pk=row.pk, then=Value(getattr(row, name), output_field=field)) for row in rows]
        values[name] = Case(*whens, output_field=field)
    # Each row's version was read under its lock: + 1 is the version set in memory.
    Mailbox.objects.filter(pk__in=[row.pk for row in rows]).update(version=F("version") + 1, **values)


def _outcome(plan: _Plan, outcomes: dict, current: Mailbox) -> tuple[MailboxTestResult, list, str]:
    """Apply a plan's outcomes to the locked `current`: the result, its alerts, a summary."""
    result = MailboxTestResult(current.pk, current.email, tested=plan.tested, note=plan.note)
    if _configuration(current, current.profile_version) != plan.configuration:
        result.tested, result.note = False, CHANGED_NOTE
    if not result.tested:
        return result, [_alert(current, MailboxAlert.Severity.WARNING, result.note)], ""
    alerts = []
    approval_alerted = False
    for workload, (_method, status, enabled, error) in WORKLOADS.items():
        outcome = outcomes.get(workload)
        result.outcomes[workload] = outcome
        if outcome is None:
            setattr(current, status, TestStatus.NOT_RUN)
            setattr(current, enabled, False)
            setattr(current, error, "")
            continue
        setattr(current, status, TestStatus.SUCCESS if outcome.ok else TestStatus.FAILURE)
        setattr(current, enabled, outcome.ok)
        setattr(current, error, "" if outcome.ok else outcome.message)
        if outcome.ok:
            continue
        if outcome.cause == Cause.APPROVAL_REQUIRED:  # A2: one alert, however many workloads
            if not approval_alerted:
                alerts.append(_alert(current, MailboxAlert.Severity.ERROR, outcome.message))
                approval_alerted = True
        else:
            alerts.append(_alert(current, MailboxAlert.Severity.ERROR, outcome.message, workload))
    tested = [w for w, o in result.outcomes.items() if o is not None]
    if not tested:
        alerts.append(_alert(current, MailboxAlert.Severity.INFORMATION, NOTHING_TO_TEST_NOTE))
    elif not result.failed:
        enabled = " and ".join(WORKLOAD_LABELS[w] for w in tested)
        alerts.append(
            _alert(current, MailboxAlert.Severity.INFORMATION, f"Test & Enable succeeded: {enabled} enabled.")
        )
    summary = ", ".join(
        f"{WORKLOAD_LABELS[w]} {result.status(w)}"
        + (f" ({o.cause.label})" if o is not None and not o.ok and o.cause else "")
        for w, o in result.outcomes.items()
        if o is not None
    )
    return result, alerts, summary


def _copy_recorded_fields(source: Mailbox, target: Mailbox) -> None:
    for name in _RECORDED_FIELDS:
        setattr(target, name, getattr(source, name))


# Public services ----------------------------------------------------------------------


def mailbox_test_and_enable(mailbox: Mailbox, *, actor=None) -> MailboxTestResult:
    """A3: test each Server-Side Synchronization workload of one mailbox now, and record it.

    Statuses, errors, enabled-for flags and Mailbox Test Completed On are written
    together with a new version; each failure becomes an error alert. An inactive
    mailbox (M16) or one without a server profile (M15) is not tested; a warning
    alert says why. `mailbox` is updated in place.
    """
    if actor is not None:
        check_can_test_mailboxes(actor)
    # Test what is saved, not unsaved edits on the caller's instance (M13).
    saved = Mailbox.objects.select_related("server_profile").get(pk=mailbox.pk)
    plan = _plan(saved, OrganizationSettings.load())
    result = _record(plan, _connect_within_cap(plan) if plan.connects else plan.work, actor)
    _copy_recorded_fields(saved, mailbox)
    return result


def run_mailbox_tests(mailbox_ids: Iterable[int], *, actor=None, on_result=None) -> list[MailboxTestResult]:
    """A6: test many mailboxes now, concurrently, never more connections per server
    profile than its Maximum Concurrent Connections, each with the profile's timeout.

    One mailbox's failure never stops the others. `on_result(result)` is called as each
    mailbox is recorded. Returns the results in the order they were recorded.
    """
    results: list[MailboxTestResult] = []

    def collect(recorded: Iterable[MailboxTestResult]) -> None:
        for result in recorded:
            results.append(result)
            if on_result is not None:
                on_result(result)

    ids = iter(mailbox_ids)
    with _Run(actor) as run:
        while batch := list(itertools.islice(ids, BATCH_SIZE)):
            collect(run.start(batch))
            # Record until half a batch is left testing, then load and plan the next
            # batch while those go on: the connections never wait for the database.
            collect(run.record(keep=BATCH_SIZE // 2))
        collect(run.record(keep=0))
    return results


class _Lease:
    """A connection slot the run holds, and until when by this process's clock (read
    before the claim or renewal was sent: never later than the database's expiry)."""

    def __init__(self, held: HeldSlot, expires: float):
        self.held, self.expires = held, expires
        self.serving = False  # a worker is testing mailboxes with it

    def left(self) -> float:
        return self.expires - time.monotonic()

    def allows(self, plan: _Plan) -> bool:
        """Is enough left for `plan`'s connections, and the margin to record and give back?"""
        profile = plan.mailbox.server_profile
        return self.left() >= connection_slot_lease(profile, connections=plan.connections).total_seconds()


def _run_lease(profile: EmailServerProfile) -> timedelta:
    """How long the run claims and renews a slot for: the longest test of one mailbox
    (incoming and outgoing), and RENEW_AHEAD twice over, so that it is renewed in time."""
    longest = connection_slot_lease(profile, connections=MAX_CONNECTIONS_PER_MAILBOX)
    return longest + timedelta(seconds=2 * RENEW_AHEAD)


class _Run:
    """Mailboxes being tested: for each server profile, as many workers as its Maximum
    Concurrent Connections (read when the run first meets the profile), each holding one
    of the profile's connection slots. A worker tests the profile's waiting mailboxes one
    after another, one connection at a time, while its slot's lease lasts; it never
    touches the database. The calling thread claims slots (several in one statement),
    renews the leases in use before they run short (one statement per profile), gives
    back those nothing waits for, and records results. So the cap holds across this run
    and every other process (A6), and a slot goes from one mailbox to the next without a
    round trip to the database. A profile whose slots stay taken by others for its wait
    limit fails its waiting mailboxes with the cause."""

    def __init__(self, actor):
        self.actor = actor
        self._pools: dict[int, tuple[ThreadPoolExecutor, int]] = {}
        # (plan, outcomes) as each test ends; (None, lease) as a worker hands its slot back.
        self._finished = queue.SimpleQueue()
        self._waiting: dict[int, deque[_Plan]] = {}  # profile id -> plans waiting for a worker
        self._progress: dict[int, float] = {}  # profile id -> when it last got a slot (or began waiting)
        self._leases: dict[int, list[_Lease]] = {}  # profile id -> slots held by this run
        self._unrecorded = 0  # plans that connect, waiting or under test
        self._stack = ExitStack()

    def __enter__(self) -> "_Run":
        # Plans are made in this thread: a token endpoint's refusal is asked for once a run.
        self._stack.enter_context(token_run())
        return self

    def __exit__(self, *exc_info) -> None:
        for plans in self._waiting.values():
            plans.clear()  # the workers stop after the test under way
        try:
            self._stack.close()  # waits for the connections under way (each bounded by its timeout)
        finally:
            connection_slots_release([lease.held for leases in self._leases.values() for lease in leases])

    def start(self, ids: list[int]) -> list[MailboxTestResult]:
        """Plan the mailboxes `ids` and start their connections as slots allow; record at
        once those decided without connecting (and return their results)."""
        org = OrganizationSettings.load()
        mailboxes = Mailbox.objects.filter(pk__in=ids).select_related("server_profile").order_by("pk")
        decided, planned = [], 0
        for mailbox in mailboxes:
            try:
                plan = _plan(mailbox, org)
            except Exception:  # one broken mailbox must not stop the others
                logger.exception("Could not prepare the test of mailbox %s", mailbox.pk)
                continue
            if plan.connects:
                profile_id = mailbox.server_profile_id
                self._waiting.setdefault(profile_id, deque()).append(plan)
                self._progress.setdefault(profile_id, time.monotonic())
                self._unrecorded += 1
                planned += 1
                if planned == DISPATCH_FIRST:  # they connect while the rest is planned
                    decided.extend(self._dispatch())
            else:
                decided.append((plan, plan.work))
        decided.extend(self._dispatch())
        return [
            result
            for start in range(0, len(decided), RECORD_GROUP)
            for result in _record_group_safely(decided[start : start + RECORD_GROUP], self.actor)
        ]

    def record(self, *, keep: int) -> Iterator[MailboxTestResult]:
        """Record tests as they finish until at most `keep` are still under way or waiting."""
        idle = SLOT_POLL / 4
        while self._unrecorded > keep:
            given_up = self._dispatch()
            if given_up:
                yield from _record_group_safely(given_up, self.actor)
                continue
            if not self._serving():
                # Nothing of ours is connecting: every slot is held elsewhere. Try again.
                time.sleep(idle)
                idle = min(idle * 2, SLOT_POLL)
                continue
            idle = SLOT_POLL / 4
            try:
                first = self._finished.get(timeout=SLOT_POLL)
            except queue.Empty:
                continue
            # Tests finishing within RECORD_WAIT of each other are recorded together,
            # while the workers go on testing.
            items = self._take(first)
            deadline = time.monotonic() + RECORD_WAIT
            while len(items) < RECORD_GROUP and self._serving():
                try:
                    message = self._finished.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                items.extend(self._take(message))
            if items:
                yield from _record_group_safely(items, self.actor)

    def _take(self, message) -> list[tuple[_Plan, dict]]:
        """A finished test to record, or a slot a worker handed back (nothing to record)."""
        plan, outcomes = message
        if plan is None:
            outcomes.serving = False
            return []
        self._unrecorded -= 1
        return [(plan, outcomes)]

    def _serving(self) -> bool:
        return any(lease.serving for leases in self._leases.values() for lease in leases)

    def _serve(self, lease: _Lease, plans: deque) -> None:
        """A worker: test waiting mailboxes of the lease's profile one after another while
        the lease lasts, then hand the slot back to the calling thread."""
        try:
            while True:
                try:
                    plan = plans.popleft()
                except IndexError:
                    return
                if not lease.allows(plan):
                    plans.appendleft(plan)
                    return
                self._finished.put((plan, _outcomes(plan)))
        finally:
            self._finished.put((None, lease))

    def _dispatch(self) -> list[tuple[_Plan, dict]]:
        """Put the run's slots to work: give back those nothing waits for, renew leases
        about to run short, claim more (up to the cap) for waiting mailboxes, and hand
        idle slots to workers. Returns the plans given up: their profile got no slot for
        its wait limit."""
        given_up = []
        for profile_id in list(self._leases.keys() | self._waiting.keys()):
            plans = self._waiting.get(profile_id)
            leases = self._leases.get(profile_id, [])
            if not plans:
                connection_slots_release([lease.held for lease in leases if not lease.serving])
                self._leases[profile_id] = [lease for lease in leases if lease.serving]
                self._waiting.pop(profile_id, None)
                self._progress.pop(profile_id, None)
                continue
            profile = plans[0].mailbox.server_profile
            pool, workers = self._pool(profile)
            leases = self._leases[profile_id] = self._renewed(profile, leases)
            if len(leases) < workers:
                sent = time.monotonic()
                claimed = connection_slots_claim(profile, workers - len(leases), lease=_run_lease(profile))
                expires = sent + _run_lease(profile).total_seconds()
                leases.extend(_Lease(held, expires) for held in claimed)
            for lease in leases:
                if not lease.serving and plans and lease.allows(plans[0]):
                    lease.serving = True
                    self._progress[profile_id] = time.monotonic()
                    pool.submit(self._serve, lease, plans)
            limit = connection_slot_wait_limit(profile)
            starved = time.monotonic() - self._progress[profile_id] > limit
            if plans and starved and not leases:
                unavailable = NoConnectionSlot(profile, limit)
                given_up.extend((plan, _no_slot(plan, unavailable)) for plan in plans)
                self._unrecorded -= len(plans)
                plans.clear()
        return given_up

    def _renewed(self, profile: EmailServerProfile, leases: list[_Lease]) -> list[_Lease]:
        """The profile's leases, all renewed in one statement when one runs short; without
        those lost meanwhile (expired and taken by another process: none in use)."""
        longest = connection_slot_lease(profile, connections=MAX_CONNECTIONS_PER_MAILBOX).total_seconds()
        if not any(lease.left() < longest + RENEW_AHEAD for lease in leases):
            return leases
        sent = time.monotonic()
        lost = connection_slots_renew([lease.held for lease in leases], _run_lease(profile))
        for lease in leases:
            lease.expires = 0.0 if lease.held in lost else sent + _run_lease(profile).total_seconds()
        return [lease for lease in leases if lease.held not in lost or lease.serving]

    def _pool(self, profile: EmailServerProfile) -> tuple[ThreadPoolExecutor, int]:
        """The profile's pool of workers, and how many it has."""
        if profile.pk not in self._pools:
            workers = max(1, profile.max_connections)
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailtest")
            self._pools[profile.pk] = (self._stack.enter_context(pool), workers)
        return self._pools[profile.pk]


def _outcomes(plan: _Plan) -> dict[str, Outcome | None]:
    """Test a plan (in a worker); the connectors never raise, and if they did, this says so."""
    try:
        return _connect(plan)
    except Exception as exc:
        logger.error("Testing mailbox %s failed: %s", plan.mailbox.pk, type(exc).__name__)
        stopped = Outcome.failure(
            Cause.SERVER_ERROR, f"the test stopped unexpectedly ({type(exc).__name__})."
        )
        return {
            workload: stopped if isinstance(item, Endpoint) else item for workload, item in plan.work.items()
        }


def _record_group_safely(group: list[tuple[_Plan, dict]], actor) -> list[MailboxTestResult]:
    try:
        return _record_group(group, actor)
    except Exception:
        if len(group) == 1:
            logger.exception("Could not record the test of mailbox %s", group[0][0].mailbox.pk)
            return []
    # One mailbox that cannot be recorded must not lose the others' results.
    return [result for item in group for result in _record_group_safely([item], actor)]


@transaction.atomic
def schedule_mailbox_tests(mailbox_ids: Iterable[int], *, actor=None):
    """Mark mailboxes as scheduled for Test & Enable and test them in the background.

    Returns the django-tasks TaskResult. The marks and the task are written in one
    transaction, so a worker never sees one without the other.
    """
    from mailboxes.tasks import run_mailbox_tests_task

    if actor is not None:
        check_can_test_mailboxes(actor)
    ids = sorted({int(pk) for pk in mailbox_ids})
    Mailbox.objects.filter(pk__in=ids).update(
        test_scheduled_on=timezone.now(), version=F("version") + 1, modified_on=timezone.now()
    )
    return run_mailbox_tests_task.enqueue(ids, actor.pk if actor is not None else None)


@transaction.atomic
def profile_schedule_tests(profile: EmailServerProfile, actor=None):
    """Test & Enable Mailboxes on a profile: schedule every active mailbox that uses it."""
    from mailboxes.tasks import run_profile_tests_task

    if actor is not None:
        check_can_test_mailboxes(actor)
    profile.mailboxes.active().update(
        test_scheduled_on=timezone.now(), version=F("version") + 1, modified_on=timezone.now()
    )
    return run_profile_tests_task.enqueue(profile.pk, actor.pk if actor is not None else None)
