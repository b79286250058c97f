"""The mail-processing scheduler (SPEC section 8): leases by the database's clock, the
polling interval, back-off after failures, disabling after too many in a row.

These drive scheduler.py directly with the outcome of a pass (a PassResult, as the engine
returns it); the passes over a real Dovecot are in tests/test_processing_workers.py.
"""

import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from mailboxes.models import (
    IncomingMethod,
    Mailbox,
    MailboxAlert,
    MailboxSync,
    OrganizationSettings,
    TestStatus,
)
from mailboxes.processing import scheduler
from mailboxes.processing.eligibility import processable
from mailboxes.processing.results import PassResult
from mailboxes.services.mailboxes import mailbox_save

ON_POSTGRESQL = django_settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

HOUR = timedelta(hours=1)


def db_now():
    """The database's clock."""
    return OrganizationSettings.objects.annotate(now=Now()).values_list("now", flat=True).get()


@pytest.fixture
def make_enabled_mailbox(make_user, no_approval_required):
    """A user mailbox processed by mail processing: Server-Side Synchronization for
    incoming, enabled for it (as a successful Test & Enable leaves it)."""

    def make(profile, **fields) -> Mailbox:
        mailbox = make_user().mailbox
        mailbox.server_profile = profile
        mailbox.incoming_method = IncomingMethod.SERVER_SIDE_SYNC
        for name, value in fields.items():
            setattr(mailbox, name, value)
        mailbox_save(mailbox)
        Mailbox.objects.filter(pk=mailbox.pk).update(
            enabled_incoming=True, incoming_status=TestStatus.SUCCESS
        )
        return Mailbox.objects.select_related("server_profile").get(pk=mailbox.pk)

    return make


def sync(mailbox) -> MailboxSync:
    return MailboxSync.objects.get(pk=mailbox.pk)


# MailboxSync rows -----------------------------------------------------------------------


def test_missing_sync_rows_are_made_for_processable_mailboxes_only_in_a_fixed_number_of_queries(
    profile, make_enabled_mailbox, make_user, django_assert_num_queries
):
    processed = [make_enabled_mailbox(profile) for _ in range(3)]
    not_enabled = make_user().mailbox
    inactive = make_enabled_mailbox(profile)
    Mailbox.objects.filter(pk=inactive.pk).update(state=Mailbox.State.INACTIVE)

    # SELECT the processable mailboxes without a row (one chunk), INSERT them together.
    with django_assert_num_queries(3):  # + the organisation's settings, for approval
        assert scheduler.create_missing_syncs() == 3
    assert set(MailboxSync.objects.values_list("pk", flat=True)) == {m.pk for m in processed}
    assert not MailboxSync.objects.filter(pk__in=[not_enabled.pk, inactive.pk]).exists()
    assert all(s.next_poll_on is None for s in MailboxSync.objects.all())  # due now
    assert scheduler.create_missing_syncs() == 0


# Leases -----------------------------------------------------------------------------------


def test_a_leased_mailbox_is_not_claimed_by_another_worker_until_its_lease_expires(
    profile, make_enabled_mailbox
):
    mailbox = make_enabled_mailbox(profile)
    scheduler.create_missing_syncs()

    assert scheduler.claim_due("worker-a", 10) == [mailbox.pk]
    assert scheduler.claim_due("worker-b", 10) == []
    assert scheduler.claim_named("worker-b", [mailbox.pk]) == []  # --once ADDRESS waits too
    held = sync(mailbox)
    assert held.lease_holder == "worker-a" and held.last_attempt_on is not None

    # worker-a dies; by the database's clock its lease has run out.
    MailboxSync.objects.filter(pk=mailbox.pk).update(lease_expires_on=Now() - timedelta(seconds=1))
    assert scheduler.claim_due("worker-b", 10) == [mailbox.pk]
    assert sync(mailbox).lease_holder == "worker-b"
    # worker-a, back, can neither renew nor give back what is no longer its own.
    assert scheduler.renew_leases("worker-a") == 0
    scheduler.release(mailbox.pk, "worker-a")
    assert sync(mailbox).lease_holder == "worker-b"


def test_leases_are_reckoned_by_the_database_clock_not_the_workers(
    profile, make_enabled_mailbox, monkeypatch
):
    mailbox = make_enabled_mailbox(profile)
    scheduler.create_missing_syncs()
    assert scheduler.claim_due("worker-a", 1) == [mailbox.pk]
    expires = sync(mailbox).lease_expires_on
    lease = timedelta(seconds=django_settings.MAIL_PROCESSING_LEASE_SECONDS)
    assert abs(expires - (db_now() + lease)) < timedelta(seconds=5)

    # A worker on a host whose clock runs a day ahead still sees the lease as held.
    monkeypatch.setattr(timezone, "now", lambda: db_now() + timedelta(days=1))
    assert scheduler.claim_due("worker-b", 1) == []


def test_a_lease_is_renewed_while_its_pass_lasts(profile, make_enabled_mailbox, settings):
    mailbox = make_enabled_mailbox(profile)
    scheduler.create_missing_syncs()
    scheduler.claim_due("worker-a", 1)
    MailboxSync.objects.filter(pk=mailbox.pk).update(lease_expires_on=Now() + timedelta(seconds=2))

    assert scheduler.renew_leases("worker-a") == 1
    assert sync(mailbox).lease_expires_on > db_now() + timedelta(seconds=60)


def test_claims_take_the_longest_overdue_first_and_at_most_the_limit(profile, make_enabled_mailbox):
    first, second, third = (make_enabled_mailbox(profile) for _ in range(3))
    scheduler.create_missing_syncs()
    MailboxSync.objects.filter(pk=first.pk).update(next_poll_on=Now() - timedelta(minutes=1))
    MailboxSync.objects.filter(pk=second.pk).update(next_poll_on=Now() - timedelta(minutes=5))
    MailboxSync.objects.filter(pk=third.pk).update(next_poll_on=Now() + HOUR)  # not due

    assert scheduler.due_ids() == [second.pk, first.pk]
    assert scheduler.claim_due("w", 1) == [second.pk]
    assert scheduler.claim_due("w2", 5) == [first.pk]
    assert scheduler.claim_due("w3", 5) == []


def test_of_mailboxes_due_at_the_same_moment_forward_mailboxes_go_first(
    profile, make_enabled_mailbox, make_forward_mailbox
):
    # A forward mailbox carries many users' mail: started first, it runs beside the
    # own mailboxes rather than alone after them.
    own = [make_enabled_mailbox(profile) for _ in range(3)]
    forward = make_forward_mailbox()
    Mailbox.objects.filter(pk=forward.pk).update(enabled_incoming=True, incoming_status=TestStatus.SUCCESS)
    scheduler.create_missing_syncs()  # all never polled: due at the same moment
    overdue = own[2]
    MailboxSync.objects.filter(pk=overdue.pk).update(next_poll_on=Now() - timedelta(minutes=5))
    MailboxSync.objects.exclude(pk=overdue.pk).update(next_poll_on=Now() - timedelta(minutes=1))

    # The longest overdue still comes first; among the equally due, the forward mailbox.
    assert scheduler.due_ids() == [overdue.pk, forward.pk, own[0].pk, own[1].pk]
    assert scheduler.claim_due("w", 2) == [overdue.pk, forward.pk]


def test_the_processable_index_holds_every_mailbox_processing_reads(profile, make_enabled_mailbox, org):
    # The claim finds processable mailboxes through the partial index mailbox_processable:
    # its condition must hold for each of them (eligibility adds only the approval rule).
    index = next(i for i in Mailbox._meta.indexes if i.name == "mailbox_processable")
    enabled = [make_enabled_mailbox(profile) for _ in range(3)]
    Mailbox.objects.filter(pk=enabled[0].pk).update(state=Mailbox.State.INACTIVE)
    Mailbox.objects.filter(pk=enabled[1].pk).update(enabled_incoming=False)

    indexed = set(Mailbox.objects.filter(index.condition).values_list("pk", flat=True))
    processed = set(processable(Mailbox.objects.all()).values_list("pk", flat=True))
    assert processed == {enabled[2].pk}
    assert processed <= indexed
    assert not indexed & {enabled[0].pk, enabled[1].pk}


def test_mailboxes_that_are_not_processed_are_never_claimed(profile, make_enabled_mailbox, org):
    inactive, unapproved, disabled, forwarded = (make_enabled_mailbox(profile) for _ in range(4))
    scheduler.create_missing_syncs()
    Mailbox.objects.filter(pk=inactive.pk).update(state=Mailbox.State.INACTIVE)
    Mailbox.objects.filter(pk=disabled.pk).update(enabled_incoming=False)
    Mailbox.objects.filter(pk=forwarded.pk).update(incoming_method=IncomingMethod.FORWARD_MAILBOX)
    org.approval_required_for_users = True
    org.save()
    Mailbox.objects.filter(pk__in=[inactive.pk, disabled.pk, forwarded.pk]).update(approval_status="approved")

    assert scheduler.claim_due("w", 10) == []
    assert unapproved.pk not in scheduler.due_ids()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has one writer at a time: nothing races")
def test_workers_racing_for_the_same_due_mailboxes_never_get_one_twice(profile, make_enabled_mailbox):
    mailboxes = [make_enabled_mailbox(profile) for _ in range(40)]
    scheduler.create_missing_syncs()
    start = threading.Barrier(8)
    claims: dict[str, list[int]] = {}

    def claimer(name: str) -> None:
        try:
            start.wait()
            got = []
            while batch := scheduler.claim_due(name, 3):
                got.extend(batch)
            claims[name] = got
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    claimed = [pk for got in claims.values() for pk in got]
    assert sorted(claimed) == sorted(m.pk for m in mailboxes)  # each once, none left
    assert len([name for name, got in claims.items() if got]) > 1  # they did share
    for name, got in claims.items():
        assert set(MailboxSync.objects.filter(lease_holder=name).values_list("pk", flat=True)) == set(got)


# Polling ------------------------------------------------------------------------------------


def test_after_a_pass_the_mailbox_is_due_again_after_the_profiles_minimum_polling_interval(
    make_profile, make_enabled_mailbox
):
    mailbox = make_enabled_mailbox(make_profile(min_polling_interval=15))
    scheduler.create_missing_syncs()
    scheduler.claim_due("w", 1)
    MailboxSync.objects.filter(pk=mailbox.pk).update(consecutive_failures=3, last_error="before")

    scheduler.finish_pass(mailbox, "w", PassResult(mailbox.email, fetched=2, recorded=2))

    after = sync(mailbox)
    assert (after.lease_holder, after.lease_expires_on) == ("", None)
    assert (after.consecutive_failures, after.last_error) == (0, "")
    assert after.last_sync_on is not None
    assert abs(after.next_poll_on - (after.last_sync_on + timedelta(minutes=15))) < timedelta(seconds=2)
    assert scheduler.claim_due("w", 1) == []  # never more often than the interval
    MailboxSync.objects.filter(pk=mailbox.pk).update(next_poll_on=Now() - timedelta(seconds=1))
    assert scheduler.claim_due("w", 1) == [mailbox.pk]


def test_an_interval_of_zero_polls_at_most_once_a_minute(make_profile, make_enabled_mailbox):
    mailbox = make_enabled_mailbox(make_profile(min_polling_interval=0))
    scheduler.create_missing_syncs()
    scheduler.claim_due("w", 1)

    scheduler.finish_pass(mailbox, "w", PassResult(mailbox.email))

    after = sync(mailbox)
    assert django_settings.MAIL_PROCESSING_MIN_INTERVAL_SECONDS == 60
    assert abs(after.next_poll_on - after.last_sync_on - timedelta(seconds=60)) < timedelta(seconds=2)


def test_process_now_makes_a_mailbox_due_now(make_profile, make_enabled_mailbox):
    mailbox = make_enabled_mailbox(make_profile(min_polling_interval=60))
    scheduler.make_due_now(mailbox)  # made when missing
    scheduler.claim_due("w", 1)
    scheduler.finish_pass(mailbox, "w", PassResult(mailbox.email))
    assert scheduler.claim_due("w", 1) == []

    scheduler.make_due_now(mailbox)

    assert sync(mailbox).next_poll_on <= db_now()
    assert scheduler.claim_due("w", 1) == [mailbox.pk]


# Failures -----------------------------------------------------------------------------------


def fail(mailbox, *, transient: bool, cause: str = "the server did not answer in time") -> MailboxSync:
    """One failed pass over `mailbox`, claimed as if it were due."""
    MailboxSync.objects.filter(pk=mailbox.pk).update(next_poll_on=Now())
    assert scheduler.claim_due("w", 1) == [mailbox.pk]
    scheduler.finish_pass(mailbox, "w", PassResult(mailbox.email, failed=1, cause=cause, transient=transient))
    return sync(mailbox)


def test_a_transient_failure_backs_off_later_than_the_interval_growing_and_capped(
    make_profile, make_enabled_mailbox
):
    mailbox = make_enabled_mailbox(make_profile(min_polling_interval=5))
    scheduler.create_missing_syncs()
    interval = timedelta(minutes=5)

    waits = []
    for _ in range(9):
        failed = fail(mailbox, transient=True)
        waits.append(failed.next_poll_on - failed.last_attempt_on)
    assert failed.consecutive_failures == 9
    assert failed.last_error == "the server did not answer in time"
    assert failed.lease_holder == ""
    minutes = [round((wait - interval).total_seconds() / 60) for wait in waits]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60]  # on top of the interval, capped at an hour
    assert not MailboxAlert.objects.filter(mailbox=mailbox).exists()  # transient: no alert
    assert scheduler.claim_due("w", 1) == []

    scheduler.finish_pass(mailbox, "w", PassResult(mailbox.email))  # a success forgets them
    assert sync(mailbox).consecutive_failures == 0


def test_a_permanent_failure_is_an_error_alert(profile, make_enabled_mailbox):
    mailbox = make_enabled_mailbox(profile)
    scheduler.create_missing_syncs()

    failed = fail(mailbox, transient=False, cause="the server refused the user name or password")

    assert failed.consecutive_failures == 1
    alert = MailboxAlert.objects.get(mailbox=mailbox)
    assert (alert.severity, alert.workload) == ("error", "incoming")
    assert alert.message == "Mail processing failed: the server refused the user name or password"
    assert Mailbox.objects.get(pk=mailbox.pk).enabled_incoming


def test_after_disable_mailbox_after_failures_in_a_row_the_mailbox_is_disabled_for_incoming(
    profile, make_enabled_mailbox, org
):
    org.disable_after_failures = 3
    org.save()
    mailbox = make_enabled_mailbox(profile)
    version = mailbox.version
    scheduler.create_missing_syncs()

    fail(mailbox, transient=True)
    fail(mailbox, transient=True)
    assert Mailbox.objects.get(pk=mailbox.pk).enabled_incoming
    fail(mailbox, transient=True, cause="the connection was refused")

    disabled = Mailbox.objects.get(pk=mailbox.pk)
    assert not disabled.enabled_incoming
    assert disabled.incoming_status == TestStatus.FAILURE
    assert disabled.version == version + 1
    alert = MailboxAlert.objects.get(mailbox=mailbox)
    assert alert.severity == "error"
    assert alert.message == disabled.incoming_error
    assert "failed 3 times in a row (the last time: the connection was refused)" in alert.message
    assert "run Test & Enable Mailbox to enable it again" in alert.message
    MailboxSync.objects.filter(pk=mailbox.pk).update(next_poll_on=Now())
    assert scheduler.claim_due("w", 1) == []  # no longer processed


def test_test_and_enable_forgets_the_failures_and_makes_the_mailbox_due_now(profile, make_enabled_mailbox):
    mailbox = make_enabled_mailbox(profile)
    scheduler.create_missing_syncs()
    fail(mailbox, transient=True)
    fail(mailbox, transient=True)

    scheduler.mailboxes_enabled([mailbox.pk])

    after = sync(mailbox)
    assert (after.consecutive_failures, after.last_error, after.next_poll_on) == (0, "", None)
    assert scheduler.claim_due("w", 1) == [mailbox.pk]


def test_claiming_and_finishing_take_a_fixed_number_of_queries(
    profile, make_enabled_mailbox, django_assert_num_queries
):
    mailboxes = [make_enabled_mailbox(profile) for _ in range(5)]
    scheduler.create_missing_syncs()

    # The organisation's settings (approval), SELECT the due free mailboxes, UPDATE them
    # if still due and free, SELECT those now ours — however many are claimed.
    with django_assert_num_queries(4):
        assert len(scheduler.claim_due("w", 10)) == 5
    # SAVEPOINT, SELECT … FOR UPDATE the row, UPDATE it, UPDATE the lease if still ours,
    # RELEASE SAVEPOINT.
    with django_assert_num_queries(5):
        scheduler.finish_pass(mailboxes[0], "w", PassResult(mailboxes[0].email, recorded=1))
    with django_assert_num_queries(1):
        assert scheduler.renew_leases("w") == 4


def test_a_mailbox_the_engine_skips_is_due_again_after_its_interval_not_at_once(
    make_profile, make_enabled_mailbox
):
    from mailboxes.processing.worker import run_pass
    from serverprofiles.models import ServerType

    exchange = make_profile(
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
        min_polling_interval=10,
    )
    mailbox = make_enabled_mailbox(exchange)
    scheduler.create_missing_syncs()
    assert scheduler.claim_due("w", 1) == [mailbox.pk]

    result = run_pass(mailbox.pk, "w")

    assert result.skipped and result.failed == 0 and result.cause.startswith("Not processed: ")
    after = sync(mailbox)
    assert (after.lease_holder, after.consecutive_failures, after.last_sync_on) == ("", 0, None)
    assert after.next_poll_on > db_now() + timedelta(minutes=9)
    assert scheduler.claim_due("w", 1) == []  # the workers do not spin on it


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_pass_the_worker_could_not_record_lets_its_lease_run_out_and_is_taken_up_again(
    make_profile, make_enabled_mailbox, settings, monkeypatch
):
    """The database away just as a pass is recorded: the worker carries on, and that
    mailbox's lease is not renewed for as long as the worker lives (it would never be
    processed again): it runs out and the mailbox is claimed again."""
    from django.db import OperationalError

    from mailboxes.processing.worker import Worker
    from serverprofiles.models import ServerType

    settings.MAIL_PROCESSING_LEASE_SECONDS = 1  # renewed every 0.25 s while a pass lasts
    settings.MAIL_PROCESSING_IDLE_SECONDS = 0.1
    exchange = make_profile(  # the engine skips it: its pass ends by postponing it
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )
    mailbox = make_enabled_mailbox(exchange)
    recorded = []
    postpone = scheduler.postpone

    def postpone_once_the_database_is_back(mailbox, holder):
        recorded.append(holder)
        if len(recorded) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        postpone(mailbox, holder)

    monkeypatch.setattr(scheduler, "postpone", postpone_once_the_database_is_back)
    worker = Worker(threads=1)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = timezone.now() + timedelta(seconds=20)
        while len(recorded) < 2 and timezone.now() < deadline:
            worker.stopping.wait(0.1)
    finally:
        worker.stop()
        thread.join(timeout=30)

    assert not thread.is_alive()
    assert len(recorded) == 2  # taken up again once the unrecorded pass's lease ran out
    assert sync(mailbox).lease_holder == ""
