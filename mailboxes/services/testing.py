"""Test & Enable (A2–A6): test mailboxes' connections and record what was found.

Entry points (views, admin actions, commands) call:
- `can_test_mailboxes(user)` / `check_can_test_mailboxes(user)`: the permission gate.
- `mailbox_test_and_enable(mailbox, actor=)`: test one mailbox now.
- `schedule_mailbox_tests(mailbox_ids, actor=)`: stamp them scheduled and test them in
  the background task; `profile_schedule_tests(profile, actor)` does it for all of a
  profile's active mailboxes.
- `run_mailbox_tests(mailbox_ids, actor=)`: test many now, at most the profile's Maximum
  Concurrent Connections at a time (what the task and the `test_mailboxes` command run).
- `profile_test_connection(profile, incoming_password=, outgoing_password=)`: test the
  values of a server profile form before they are saved.

Every connection holds one of its profile's connection slots (serverprofiles/
connection_cap.py), so Maximum Concurrent Connections holds across every process and
host. Network work happens in worker threads that never touch the database: the calling
thread claims a slot for each mailbox before handing it to a worker and gives it back
when the worker is done. Results are recorded by the calling thread, the tests that
finish close together in one transaction (a few statements for the whole group, whatever
its size). Mailboxes are loaded and planned BATCH_SIZE at a time, the next batch while the
last half of the previous one is still being tested.
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

from django.contrib.admin.models import CHANGE
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mailboxadmin import encryption
from mailboxadmin.encryption import CredentialDecryptionError
from mailboxes.models import ApprovalStatus, Mailbox, MailboxAlert, OrganizationSettings, TestStatus
from mailboxes.models.mailboxes import M15_WARNING, SSYNC, WORKLOADS
from mailboxes.processing.scheduler import mailboxes_enabled
from mailboxes.services.bulk import insert_log_entries
from mailboxes.services.endpoints import mailbox_endpoint as _mailbox_endpoint
from mailboxes.services.endpoints import profile_server_endpoint as _endpoint
from serverprofiles.connection_cap import (
    NoConnectionSlot,
    connection_slot,
    connection_slot_claim,
    connection_slot_lease,
    connection_slot_release,
    connection_slot_wait_limit,
)
from serverprofiles.connectors import (
    APPROVAL_REQUIRED_MESSAGE,
    Cause,
    Endpoint,
    Outcome,
    check_incoming,
    check_outgoing,
)
from serverprofiles.models import AuthenticationMethod, EmailServerProfile
from serverprofiles.oauth import mail_server_refused_token, profile_access_token, token_run

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
# Finished tests are recorded together: at most this many in one transaction, waiting at
# most this long (seconds) after the first for others to finish.
RECORD_GROUP = 100
RECORD_WAIT = 0.1
# While mailboxes wait for a connection slot held elsewhere, the run tries again this often
# (seconds).
SLOT_POLL = 0.1


# Permission ---------------------------------------------------------------------------


def can_test_mailboxes(user) -> bool:
    """May `user` run Test & Enable (and a profile's Test Connection)?"""
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


@dataclass(frozen=True)
class ProfileConnectionResult:
    incoming: Outcome
    outgoing: Outcome

    @property
    def ok(self) -> bool:
        return self.incoming.ok and self.outgoing.ok


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
        Mailbox.objects.bulk_update(rows, _RECORDED_FIELDS)
        # Enabled for incoming email again: mail processing starts afresh, now (SPEC 8).
        mailboxes_enabled(r.mailbox_id for r in results if r.tested and r.status("incoming") == "Success")
        MailboxAlert.objects.bulk_create(alerts)
        insert_log_entries(actor, entries)
    return results


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


class _Run:
    """Mailboxes being tested: one pool of workers per server profile, as many as its
    Maximum Concurrent Connections (read when the run first meets the profile). A mailbox
    waits until the run has claimed one of its profile's connection slots, then a worker
    tests it (one connection at a time) and the slot is given back when it is done: the
    cap holds across this run and every other process (A6). A profile whose slots stay
    taken by others for its wait limit fails its waiting mailboxes with the cause."""

    def __init__(self, actor):
        self.actor = actor
        self._pools: dict[int, tuple[ThreadPoolExecutor, int]] = {}
        self._testing: dict = {}  # future -> (plan, held slot), until recorded
        self._finished = queue.SimpleQueue()  # futures, as they finish
        self._waiting: dict[int, deque[_Plan]] = {}  # profile id -> plans waiting for a slot
        self._progress: dict[int, float] = {}  # profile id -> when it last got a slot (or began waiting)
        self._running: dict[int, int] = {}  # profile id -> slots held by this run
        self._stack = ExitStack()

    def __enter__(self) -> "_Run":
        # Plans are made in this thread: a token endpoint's refusal is asked for once a run.
        self._stack.enter_context(token_run())
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._stack.close()  # waits for the connections under way (each bounded by its timeout)
        finally:
            for _plan, held in self._testing.values():
                connection_slot_release(held)

    @property
    def _pending(self) -> int:
        return len(self._testing) + sum(len(plans) for plans in self._waiting.values())

    def start(self, ids: list[int]) -> list[MailboxTestResult]:
        """Plan the mailboxes `ids` and start their connections as slots allow; record at
        once those decided without connecting (and return their results)."""
        org = OrganizationSettings.load()
        mailboxes = Mailbox.objects.filter(pk__in=ids).select_related("server_profile").order_by("pk")
        decided = []
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
        while self._pending > keep:
            if not self._testing:
                # Nothing of ours is connecting: every slot is held elsewhere. Try again.
                given_up = self._dispatch()
                if given_up:
                    yield from _record_group_safely(given_up, self.actor)
                elif not self._testing:
                    time.sleep(idle)
                    idle = min(idle * 2, SLOT_POLL)
                continue
            idle = SLOT_POLL / 4
            try:
                first = self._finished.get(timeout=SLOT_POLL if self._waiting else None)
            except queue.Empty:
                yield from _record_group_safely(self._dispatch(), self.actor)
                continue
            # Tests finishing within RECORD_WAIT of each other are recorded together,
            # while the workers go on testing. Each one's slot goes at once to a waiting
            # mailbox: no slot stays idle while the group gathers.
            group, given_up = [first], self._free(first)
            deadline = time.monotonic() + RECORD_WAIT
            while len(group) < min(RECORD_GROUP, len(self._testing)):
                try:
                    future = self._finished.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                group.append(future)
                given_up.extend(self._free(future))
            items = []
            for future in group:
                plan, _held = self._testing.pop(future)
                items.append((plan, _outcomes(plan, future)))
            yield from _record_group_safely(items + given_up, self.actor)

    def _free(self, future) -> list[tuple[_Plan, dict]]:
        """Give back the slot of a finished test and hand it on (see _dispatch)."""
        _plan, held = self._testing[future]
        connection_slot_release(held)
        self._running[held.profile_id] -= 1
        return self._dispatch()

    def _dispatch(self) -> list[tuple[_Plan, dict]]:
        """Hand waiting plans to workers as far as slots can be claimed now. Returns the
        plans given up: their profile got no slot for its wait limit."""
        given_up = []
        for profile_id, plans in list(self._waiting.items()):
            profile = plans[0].mailbox.server_profile
            pool, workers = self._pool(profile)
            while plans and self._running.get(profile_id, 0) < workers:
                lease = connection_slot_lease(profile, connections=plans[0].connections)
                held = connection_slot_claim(profile, lease=lease)
                if held is None:
                    break
                plan = plans.popleft()
                self._running[profile_id] = self._running.get(profile_id, 0) + 1
                self._progress[profile_id] = time.monotonic()
                future = pool.submit(_connect, plan)
                self._testing[future] = (plan, held)
                future.add_done_callback(self._finished.put)
            limit = connection_slot_wait_limit(profile)
            starved = time.monotonic() - self._progress[profile_id] > limit
            if plans and starved and not self._running.get(profile_id):
                unavailable = NoConnectionSlot(profile, limit)
                given_up.extend((plan, _no_slot(plan, unavailable)) for plan in plans)
                plans.clear()
            if not plans:
                del self._waiting[profile_id]
                del self._progress[profile_id]
        return given_up

    def _pool(self, profile: EmailServerProfile) -> tuple[ThreadPoolExecutor, int]:
        """The profile's pool of workers, and how many it has."""
        if profile.pk not in self._pools:
            workers = max(1, profile.max_connections)
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mailtest")
            self._pools[profile.pk] = (self._stack.enter_context(pool), workers)
        return self._pools[profile.pk]


def _outcomes(plan: _Plan, future) -> dict[str, Outcome | None]:
    try:
        return future.result()
    except Exception as exc:  # the connectors never raise; this is a last resort
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


def profile_test_connection(
    profile: EmailServerProfile,
    *,
    incoming_password: str | None = None,
    outgoing_password: str | None = None,
    actor=None,
) -> ProfileConnectionResult:
    """Test Connection: try a profile's values as the form holds them, before saving.

    A blank password means the stored one. The profile's own credentials are used
    where it has them (Credentials Specified in Email Server Profile); otherwise the
    test connects and secures the connection without logging in. Nothing is saved.
    Raises ValidationError (on the form's field names) for values that cannot be tried.
    """
    if actor is not None:
        check_can_test_mailboxes(actor)
    _validate_connection_fields(profile)
    incoming_credentials = _profile_credentials(profile, "incoming", incoming_password)
    if profile.use_same_settings_for_outgoing:
        outgoing_credentials = incoming_credentials
    else:
        outgoing_credentials = _profile_credentials(profile, "outgoing", outgoing_password)
    outcomes = []
    for direction, credentials, check in (
        ("incoming", incoming_credentials, check_incoming),
        ("outgoing", outgoing_credentials, check_outgoing),
    ):
        if profile.oauth_for(direction):
            outcomes.append(_oauth_connection_test(profile, direction, check))
            continue
        if isinstance(credentials, Outcome):
            outcomes.append(credentials)
            continue
        endpoint = _endpoint(profile, direction, *credentials)
        outcomes.append(
            _check_within_cap(profile, check, endpoint) if isinstance(endpoint, Endpoint) else endpoint
        )
    return ProfileConnectionResult(*outcomes)


def _oauth_connection_test(profile: EmailServerProfile, direction: str, check) -> Outcome:
    """Test Connection of an OAuth profile: ask the token endpoint for a token (its client
    ID, secret and permissions), then connect and secure the mail server. There is no
    mailbox to log in as; Test & Enable logs in as each one. Google's token acts for the
    profile's owner, when it has one."""
    owner = profile.owner if profile.owner_id else None
    token = profile_access_token(profile, subject=getattr(owner, "email", "") or "")
    if isinstance(token, Outcome):
        return token
    endpoint = _endpoint(profile, direction, "", None)
    if isinstance(endpoint, Outcome):
        return endpoint
    outcome = _check_within_cap(profile, check, endpoint)
    if not outcome.ok:
        return outcome
    return Outcome.success(f"{outcome.message} The token endpoint issued an access token.")


def _check_within_cap(profile: EmailServerProfile, check, endpoint: Endpoint) -> Outcome:
    """One Test Connection check, holding one of the saved profile's connection slots."""
    try:
        with connection_slot(profile, lease=connection_slot_lease(profile)):
            return check(endpoint)
    except NoConnectionSlot as exc:
        return Outcome.failure(Cause.TIMED_OUT, str(exc))


def _profile_credentials(profile: EmailServerProfile, direction: str, typed: str | None):
    """(user name, password typed or stored password with its binding), or an Outcome."""
    auth = profile.incoming_auth if direction == "incoming" else profile.outgoing_auth
    if auth != AuthenticationMethod.PROFILE_CREDENTIALS:
        return "", None
    username = profile.incoming_username if direction == "incoming" else profile.outgoing_username
    if typed:
        return username, typed
    ciphertext = getattr(profile, f"{direction}_password_ciphertext")
    if not ciphertext and profile.pk:
        ciphertext = (
            EmailServerProfile.objects.filter(pk=profile.pk)
            .values_list(f"{direction}_password_ciphertext", flat=True)
            .first()
            or ""
        )
    try:
        record = f'email server profile "{profile.name}" ({direction})'
        password = encryption.decrypt_bound(ciphertext, record=record)
    except CredentialDecryptionError as exc:
        return Outcome.failure(Cause.AUTHENTICATION_FAILED, str(exc))
    if not username or not password.secret:
        return Outcome.failure(
            Cause.AUTHENTICATION_FAILED,
            f"the profile has no {'user name' if not username else 'password'} for {direction} "
            'connections, and it authenticates with "Credentials Specified in Email Server Profile". '
            "Enter it and test again.",
        )
    return username, password


def _validate_connection_fields(profile: EmailServerProfile) -> None:
    """The values a connection needs, checked as the form would (P5, P6)."""
    from mailboxadmin.validators import is_host_name

    connection_fields = {"incoming_server", "outgoing_server", "incoming_port", "outgoing_port", "timeout_ms"}
    errors: dict[str, list[str]] = {}
    try:
        profile.clean_fields(
            exclude=[f.name for f in profile._meta.fields if f.name not in connection_fields]
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if profile.locations_are_host_names:  # Exchange Online too (SPEC 7)
        for name in ("incoming_server", "outgoing_server"):
            if name not in errors and not is_host_name((getattr(profile, name) or "").strip()):
                label = profile._meta.get_field(name).verbose_name
                errors[name] = [
                    f"{label} must be a host name (imap.contoso.com), without scheme, port or path."
                ]
    if errors:
        raise ValidationError(errors)
