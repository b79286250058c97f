"""Test & Enable against real servers: statuses, alerts, approval, credentials, history."""

import json
import logging
import time

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied

from mailboxadmin.exceptions import StaleEditError
from mailboxes.models import (
    ActMethod,
    ApprovalStatus,
    IncomingMethod,
    Mailbox,
    MailboxAlert,
    OutgoingMethod,
)
from mailboxes.models import TestStatus as Status  # pytest would collect a class named Test...
from mailboxes.services.mailboxes import mailbox_save, mailbox_set_approval, mailbox_set_state
from mailboxes.services.testing import (
    APPROVAL_NOTE_ALERT,
    INACTIVE_NOTE,
    NO_PROFILE_NOTE,
    can_test_mailboxes,
    check_can_test_mailboxes,
    mailbox_test_and_enable,
    profile_schedule_tests,
    run_mailbox_tests,
    schedule_mailbox_tests,
)
from serverprofiles.connection_tests import profile_test_connection
from serverprofiles.connectors import Cause
from serverprofiles.models import AuthenticationMethod, ConnectionSlot, EmailServerProfile, ServerType
from tests.fixtures.mailservers import MAIL_PASSWORD, MAIL_USERNAME

pytestmark = pytest.mark.servers


def reloaded(mailbox: Mailbox) -> Mailbox:
    return Mailbox.objects.get(pk=mailbox.pk)


# Success ------------------------------------------------------------------------------


def test_a_mailbox_that_connects_is_enabled_for_incoming_and_outgoing(
    make_test_server_profile, make_test_mailbox, no_approval_required, sysadmin
):
    mailbox = make_test_mailbox(make_test_server_profile())
    version = mailbox.version

    result = mailbox_test_and_enable(mailbox, actor=sysadmin)

    assert not result.failed
    saved = reloaded(mailbox)
    assert (saved.incoming_status, saved.outgoing_status, saved.act_status) == (
        Status.SUCCESS,
        Status.SUCCESS,
        Status.NOT_RUN,
    )
    assert (saved.enabled_incoming, saved.enabled_outgoing, saved.enabled_act) == (True, True, False)
    assert saved.incoming_error == saved.outgoing_error == ""
    assert saved.test_completed_on is not None
    assert saved.version == version + 1
    assert mailbox.version == saved.version  # the caller's instance follows
    [alert] = saved.alerts.all()
    assert alert.severity == MailboxAlert.Severity.INFORMATION
    assert alert.message == "Test & Enable succeeded: Incoming Email and Outgoing Email enabled."
    entry = LogEntry.objects.get(object_id=str(mailbox.pk), user=sysadmin)
    assert entry.change_message == "Test & Enable: Incoming Email Success, Outgoing Email Success."


def test_a_mailbox_connects_over_implicit_tls(
    make_test_server_profile, make_test_mailbox, no_approval_required, trust_test_certificate
):
    mailbox = make_test_mailbox(make_test_server_profile(tls=True))

    result = mailbox_test_and_enable(mailbox)

    assert [result.status(w) for w in ("incoming", "outgoing")] == ["Success", "Success"]
    assert "over TLS" in result.outcomes["incoming"].message


def test_a_pop3_mailbox_connects(make_test_server_profile, make_test_mailbox, no_approval_required):
    mailbox = make_test_mailbox(make_test_server_profile(incoming="pop3"))

    result = mailbox_test_and_enable(mailbox)

    assert result.status("incoming") == "Success"
    assert "(POP3)" in result.outcomes["incoming"].message


def test_the_profile_credentials_are_used_when_the_mailbox_has_none(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    profile = make_test_server_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        password=MAIL_PASSWORD,
    )
    mailbox = make_test_mailbox(profile, allow_credentials=False, username="")

    result = mailbox_test_and_enable(mailbox)

    assert not result.failed, result.causes
    assert f"as {MAIL_USERNAME}" in result.outcomes["incoming"].message


def test_outgoing_without_credentials_connects_anonymously(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    profile = make_test_server_profile(
        use_same_settings_for_outgoing=False, outgoing_auth=AuthenticationMethod.ANONYMOUS
    )
    mailbox = make_test_mailbox(profile)

    result = mailbox_test_and_enable(mailbox)

    assert result.status("outgoing") == "Success"
    assert "no authentication used" in result.outcomes["outgoing"].message


# Failures ------------------------------------------------------------------------------


def test_a_wrong_password_fails_both_workloads_with_alerts_naming_the_cause(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile(), password="Wrong-Pass-123")

    result = mailbox_test_and_enable(mailbox)

    assert result.failed
    saved = reloaded(mailbox)
    assert (saved.incoming_status, saved.outgoing_status) == (Status.FAILURE, Status.FAILURE)
    assert not saved.enabled_incoming
    assert not saved.enabled_outgoing
    assert saved.incoming_error.startswith("Authentication failed:")
    assert saved.outgoing_error.startswith("Authentication failed:")
    alerts = {a.workload: a for a in saved.alerts.all()}
    assert set(alerts) == {"incoming", "outgoing"}
    assert all(a.severity == MailboxAlert.Severity.ERROR for a in alerts.values())
    assert alerts["incoming"].message == saved.incoming_error
    assert saved.test_completed_on is not None


def test_a_server_that_refuses_is_recorded_with_its_host_and_port(
    make_test_server_profile, make_test_mailbox, no_approval_required, closed_port
):
    profile = make_test_server_profile(incoming_port=closed_port)
    mailbox = make_test_mailbox(profile)

    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes["incoming"].cause == Cause.CONNECTION_REFUSED
    assert result.status("outgoing") == "Success"
    assert f":{closed_port} (IMAP)" in reloaded(mailbox).incoming_error


def test_a_user_credentials_profile_without_mailbox_credentials_fails_without_connecting(
    make_test_server_profile, make_test_mailbox, no_approval_required, closed_port
):
    profile = make_test_server_profile(incoming_port=closed_port)  # would be refused if contacted
    mailbox = make_test_mailbox(profile, allow_credentials=False, username="")

    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes["incoming"].cause == Cause.AUTHENTICATION_FAILED
    assert "no credentials to log in with" in result.outcomes["incoming"].message


def test_a_password_no_key_decrypts_is_a_named_failure_not_a_crash(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile())
    Mailbox.objects.filter(pk=mailbox.pk).update(password_ciphertext="gAAAAAnot-a-real-token")

    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes["incoming"].cause == Cause.AUTHENTICATION_FAILED
    assert "cannot be decrypted" in result.outcomes["incoming"].message


# Which workloads are tested (A3) -------------------------------------------------------


def test_a_workload_set_to_none_stays_not_run(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile(), outgoing_method=OutgoingMethod.NONE)

    result = mailbox_test_and_enable(mailbox)

    saved = reloaded(mailbox)
    assert saved.incoming_status == Status.SUCCESS
    assert saved.outgoing_status == Status.NOT_RUN
    assert not saved.enabled_outgoing
    assert result.outcomes["outgoing"] is None


def test_a_workload_using_outlook_stays_not_run(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile(), incoming_method=IncomingMethod.OUTLOOK)

    mailbox_test_and_enable(mailbox)

    saved = reloaded(mailbox)
    assert (saved.incoming_status, saved.outgoing_status) == (Status.NOT_RUN, Status.SUCCESS)


def test_a_forward_mailbox_tests_incoming_only(make_test_server_profile, make_forward_mailbox):
    mailbox = make_forward_mailbox(
        server_profile=make_test_server_profile(),
        allow_credentials=True,
        username=MAIL_USERNAME,
        password=MAIL_PASSWORD,
    )

    result = mailbox_test_and_enable(mailbox)

    assert result.outcomes == {"incoming": result.outcomes["incoming"], "outgoing": None, "act": None}
    saved = reloaded(mailbox)
    assert saved.incoming_status == Status.SUCCESS
    assert saved.outgoing_status == saved.act_status == Status.NOT_RUN


def test_appointments_on_exchange_are_not_supported_and_say_so(make_profile, make_test_mailbox, org):
    profile = make_profile(
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.contoso.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.contoso.test/EWS/Exchange.asmx",
    )
    mailbox = make_test_mailbox(profile, act_method=ActMethod.SERVER_SIDE_SYNC)
    mailbox_set_approval(mailbox=mailbox, approved=True)

    result = mailbox_test_and_enable(mailbox)

    for workload in ("incoming", "outgoing", "act"):
        assert result.outcomes[workload].cause == Cause.NOT_SUPPORTED
        assert "no Exchange connector yet" in result.outcomes[workload].message
    assert reloaded(mailbox).act_status == Status.FAILURE


def test_nothing_to_test_leaves_every_status_not_run_and_says_so(make_test_server_profile, make_user):
    mailbox = make_user().mailbox
    mailbox.incoming_method = IncomingMethod.NONE
    mailbox.outgoing_method = OutgoingMethod.NONE
    mailbox_save(mailbox)

    result = mailbox_test_and_enable(mailbox)

    assert not result.failed
    assert all(outcome is None for outcome in result.outcomes.values())
    assert reloaded(mailbox).alerts.get().message.startswith("Nothing to test")


# Approval (A2) and state (M16) -------------------------------------------------------


def test_an_unapproved_address_fails_with_the_approval_cause_without_connecting(
    make_test_server_profile, make_test_mailbox, org, closed_port
):
    assert org.approval_required_for_users
    profile = make_test_server_profile(incoming_port=closed_port)  # would be refused if contacted
    mailbox = make_test_mailbox(profile)
    assert mailbox.approval_status == ApprovalStatus.PENDING

    result = mailbox_test_and_enable(mailbox)

    assert {o.cause for o in result.outcomes.values() if o} == {Cause.APPROVAL_REQUIRED}
    saved = reloaded(mailbox)
    assert (saved.incoming_status, saved.outgoing_status) == (Status.FAILURE, Status.FAILURE)
    assert saved.incoming_error.startswith("The email address requires approval. ")  # A2's words first
    assert "Approve Email" in saved.incoming_error  # then what to do
    [alert] = saved.alerts.all()
    assert (alert.severity, alert.message) == (MailboxAlert.Severity.ERROR, APPROVAL_NOTE_ALERT)
    assert result.causes == [saved.incoming_error]


def test_an_approved_address_is_tested(make_test_server_profile, make_test_mailbox, org):
    mailbox = make_test_mailbox(make_test_server_profile())
    mailbox_set_approval(mailbox=mailbox, approved=True)

    result = mailbox_test_and_enable(mailbox)

    assert not result.failed, result.causes


def test_an_inactive_mailbox_is_not_tested_and_an_alert_says_why(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile())
    mailbox_set_state(mailbox=mailbox, active=False)

    result = mailbox_test_and_enable(mailbox)

    assert not result.tested
    assert result.note == INACTIVE_NOTE
    saved = reloaded(mailbox)
    assert saved.incoming_status == Status.NOT_RUN
    assert saved.test_completed_on is None
    alert = saved.alerts.get()
    assert (alert.severity, alert.message) == (MailboxAlert.Severity.WARNING, INACTIVE_NOTE)


def test_a_mailbox_without_a_server_profile_is_not_tested(make_user, no_approval_required):
    mailbox = make_user().mailbox
    assert mailbox.server_profile is None
    assert mailbox.incoming_method == IncomingMethod.SERVER_SIDE_SYNC

    result = mailbox_test_and_enable(mailbox)

    assert not result.tested
    assert reloaded(mailbox).alerts.get().message == NO_PROFILE_NOTE


# Versions: results describe what was tested (M13) ---------------------------------------


def test_an_edit_form_opened_before_the_test_is_stale_afterwards(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile())
    form_copy = reloaded(mailbox)

    mailbox_test_and_enable(mailbox)

    form_copy.name = "Renamed in an old form"
    with pytest.raises(StaleEditError):
        mailbox_save(form_copy, expected_version=form_copy.version)


def test_unsaved_edits_on_the_callers_instance_are_not_what_gets_tested(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(make_test_server_profile())
    mailbox.incoming_method = IncomingMethod.NONE  # not saved

    result = mailbox_test_and_enable(mailbox)

    assert result.status("incoming") == "Success"


def test_results_are_discarded_when_the_mailbox_changed_while_it_was_being_tested(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    # The race itself cannot be staged from one thread; these are the two halves of
    # mailbox_test_and_enable with an edit in between, as a concurrent editor would make.
    from mailboxes.models import OrganizationSettings
    from mailboxes.services.testing import CHANGED_NOTE, _connect, _plan, _record

    mailbox = make_test_mailbox(make_test_server_profile())
    plan = _plan(Mailbox.objects.get(pk=mailbox.pk), OrganizationSettings.load())
    outcomes = _connect(plan)
    edited = reloaded(mailbox)
    edited.username = "someone-else@example.test"
    mailbox_save(edited)

    result = _record(plan, outcomes, None)

    assert not result.tested
    saved = reloaded(mailbox)
    assert saved.incoming_status == Status.NOT_RUN
    assert saved.alerts.get().message == CHANGED_NOTE


def test_finished_tests_are_recorded_together_in_a_fixed_number_of_queries(
    make_test_server_profile, make_test_mailbox, no_approval_required, sysadmin, django_assert_num_queries
):
    # What the many-mailbox runs do with the tests finished at one moment: one group, one
    # transaction. A changed and a deleted mailbox in the group are told apart per mailbox.
    from mailboxes.models import OrganizationSettings
    from mailboxes.services.testing import CHANGED_NOTE, _connect, _plan, _record_group

    profile = make_test_server_profile()
    mailboxes = [make_test_mailbox(profile) for _ in range(5)]
    org = OrganizationSettings.load()
    plans = [_plan(Mailbox.objects.select_related("server_profile").get(pk=m.pk), org) for m in mailboxes]
    group = [(plan, _connect(plan)) for plan in plans]
    changed, deleted, *tested = mailboxes
    edited = reloaded(changed)
    edited.username = "someone-else@example.test"
    mailbox_save(edited)
    Mailbox.objects.filter(pk=deleted.pk).delete()
    ContentType.objects.get_for_model(Mailbox)  # cached from then on, as in a running process

    # SAVEPOINT, SELECT … FOR UPDATE of the group, UPDATE of its rows, upsert of the
    # enabled ones' mail-processing state (due now), INSERT of the alerts, INSERT of the
    # history entries, RELEASE SAVEPOINT — whatever the group's size.
    with django_assert_num_queries(7):
        results = {r.mailbox_id: r for r in _record_group(group, sysadmin)}

    assert results[deleted.pk].note == "Not tested: the mailbox was deleted."
    assert not results[changed.pk].tested and results[changed.pk].note == CHANGED_NOTE
    assert reloaded(changed).incoming_status == Status.NOT_RUN
    assert reloaded(changed).alerts.get().message == CHANGED_NOTE
    for mailbox in tested:
        saved = reloaded(mailbox)
        assert results[mailbox.pk].status("incoming") == "Success"
        assert (saved.incoming_status, saved.outgoing_status) == (Status.SUCCESS, Status.SUCCESS)
        assert saved.test_completed_on is not None and saved.version == mailbox.version + 1
        assert saved.alerts.get().message.startswith("Test & Enable succeeded")
        entry = LogEntry.objects.get(object_id=str(mailbox.pk), user=sysadmin)
        assert entry.change_message.startswith("Test & Enable: Incoming Email Success")
    assert not LogEntry.objects.filter(object_id=str(changed.pk), user=sysadmin).exists()


# Many mailboxes, in the background (A6) ------------------------------------------------


@pytest.fixture
def counted_profile(make_test_server_profile, dovecot, smtp_servers):
    """make(**fields) -> (profile, counter): a profile whose IMAP and SMTP connections go
    through proxies that count them, server-side. The proxies close when the test ends."""
    from tests.fixtures.mailservers import ConnectionCounter, CountingProxy

    proxies = []

    def make(**fields):
        counter = ConnectionCounter()
        proxies.append(imap := CountingProxy((dovecot.plain_host, dovecot.imap_port), counter))
        proxies.append(smtp := CountingProxy((smtp_servers.host, smtp_servers.plain_port), counter))
        profile = make_test_server_profile(
            incoming_server="127.0.0.1", incoming_port=imap.port, outgoing_port=smtp.port, **fields
        )
        return profile, counter

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.mark.parametrize("batch_size", [500, 4])
def test_thirty_mailboxes_never_open_more_connections_than_the_profile_allows(
    counted_profile, make_test_mailbox, no_approval_required, monkeypatch, batch_size
):
    # With batches of 4 the next batch is loaded and started while the previous one is
    # still testing: the cap holds across batches, and every mailbox is recorded once.
    from mailboxes.services import testing

    monkeypatch.setattr(testing, "BATCH_SIZE", batch_size)
    profile, counter = counted_profile(max_connections=3)
    mailboxes = [make_test_mailbox(profile) for _ in range(30)]

    results = run_mailbox_tests([m.pk for m in mailboxes])

    assert sorted(r.mailbox_id for r in results) == sorted(m.pk for m in mailboxes)
    assert not any(r.failed for r in results), [r.causes for r in results if r.failed]
    assert counter.total == 60  # incoming and outgoing for each mailbox
    assert counter.maximum <= 3  # never more than the cap...
    assert counter.maximum > 1  # ...and yet concurrent


def test_the_first_mailboxes_connect_while_the_rest_of_the_batch_is_planned(
    counted_profile, make_test_mailbox, no_approval_required, monkeypatch
):
    # Planning a batch takes time of its own (an OAuth mailbox ≈0.1 ms): the workers start
    # on the first planned mailboxes instead of waiting for the whole batch. The last
    # mailbox's planning waits here (polling, at most 5 s) until a connection is open.
    from mailboxes.services import testing

    monkeypatch.setattr(testing, "DISPATCH_FIRST", 2)
    profile, counter = counted_profile(max_connections=2)
    mailboxes = [make_test_mailbox(profile) for _ in range(6)]
    planned, connected_before_last = [], []
    plan = testing._plan

    def plan_and_see(mailbox, org):
        planned.append(mailbox.pk)
        if len(planned) == len(mailboxes):
            deadline = time.monotonic() + 5
            while counter.total == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            connected_before_last.append(counter.total)
        return plan(mailbox, org)

    monkeypatch.setattr(testing, "_plan", plan_and_see)
    results = run_mailbox_tests([m.pk for m in mailboxes])

    assert connected_before_last[0] > 0
    assert sorted(r.mailbox_id for r in results) == sorted(m.pk for m in mailboxes)
    assert not any(r.failed for r in results), [r.causes for r in results if r.failed]
    assert (counter.total, counter.maximum) == (12, 2)


def slot_statements(queries) -> list[str]:
    return [q["sql"] for q in queries if "connectionslot" in q["sql"].lower()]


def test_a_slot_goes_from_mailbox_to_mailbox_without_asking_the_database_again(
    make_test_server_profile, make_test_mailbox, no_approval_required
):
    # Claiming, renewing and giving back slots is a few statements for the whole run, not
    # three per mailbox: twelve mailboxes take no more slot statements than three.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    profile = make_test_server_profile(max_connections=3)
    counts = []
    for size in (3, 12):
        mailboxes = [make_test_mailbox(profile) for _ in range(size)]
        with CaptureQueriesContext(connection) as queries:
            results = run_mailbox_tests([m.pk for m in mailboxes])
        assert len(results) == size and not any(r.failed for r in results), [r.causes for r in results]
        counts.append(len(slot_statements(queries.captured_queries)))

    assert counts[1] <= counts[0] <= 6, counts  # claim (UPDATE, SELECT), give back (UPDATE)
    assert not ConnectionSlot.objects.filter(profile=profile).exclude(holder="").exists()


def test_leases_are_renewed_while_the_run_goes_on_and_the_cap_holds(
    counted_profile, make_test_mailbox, no_approval_required, monkeypatch
):
    # With leases renewed every few milliseconds the run renews its slots many times over
    # (one statement for all of them each time), and never opens more than the cap.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mailboxes.services import testing

    monkeypatch.setattr(testing, "RENEW_AHEAD", 0.02)
    profile, counter = counted_profile(max_connections=2, timeout_ms=1000)
    mailboxes = [make_test_mailbox(profile) for _ in range(20)]
    with CaptureQueriesContext(connection) as queries:
        results = run_mailbox_tests([m.pk for m in mailboxes])

    assert len(results) == 20 and not any(r.failed for r in results), [r.causes for r in results]
    renewals = [
        sql
        for sql in slot_statements(queries.captured_queries)
        if "lease_expires_on" in sql and "holder" not in sql.split("WHERE")[0]
    ]
    assert renewals  # the leases were renewed while the run went on
    assert (counter.total, counter.maximum) == (40, 2)
    assert not ConnectionSlot.objects.filter(profile=profile).exclude(holder="").exists()


def test_one_failing_mailbox_never_stops_the_others(
    make_test_server_profile, make_test_mailbox, no_approval_required, closed_port
):
    good_profile = make_test_server_profile()
    refused_profile = make_test_server_profile(incoming_port=closed_port)
    good = [make_test_mailbox(good_profile) for _ in range(3)]
    wrong_password = make_test_mailbox(good_profile, password="Wrong-Pass-123")
    refused = make_test_mailbox(refused_profile)
    undecryptable = make_test_mailbox(good_profile)
    Mailbox.objects.filter(pk=undecryptable.pk).update(password_ciphertext="gAAAAAbroken")

    results = {
        r.mailbox_id: r
        for r in run_mailbox_tests([m.pk for m in [*good, wrong_password, refused, undecryptable]])
    }

    assert len(results) == 6
    assert all(not results[m.pk].failed for m in good)
    assert results[wrong_password.pk].outcomes["incoming"].cause == Cause.AUTHENTICATION_FAILED
    assert results[refused.pk].outcomes["incoming"].cause == Cause.CONNECTION_REFUSED
    assert results[undecryptable.pk].outcomes["incoming"].cause == Cause.AUTHENTICATION_FAILED
    assert Mailbox.objects.filter(test_completed_on__isnull=False).count() == 6


def test_scheduling_marks_the_mailboxes_and_enqueues_a_json_task(
    make_test_server_profile, make_test_mailbox, no_approval_required, settings, manager
):
    from django_tasks import default_task_backend

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    mailbox = make_test_mailbox(make_test_server_profile())
    version = mailbox.version

    task_result = schedule_mailbox_tests([mailbox.pk], actor=manager)

    saved = reloaded(mailbox)
    assert saved.test_scheduled_on is not None
    assert saved.version == version + 1  # an open edit form would write the mark away
    assert saved.incoming_status == Status.NOT_RUN  # not run yet
    json.dumps([task_result.args, task_result.kwargs])
    assert default_task_backend.results == [task_result]


def test_a_scheduled_test_runs_in_the_background_task_and_clears_the_mark(
    make_test_server_profile, make_test_mailbox, no_approval_required, manager
):
    # Test settings use the immediate backend: the task runs as it is enqueued.
    mailboxes = [make_test_mailbox(make_test_server_profile()) for _ in range(2)]

    task_result = schedule_mailbox_tests([m.pk for m in mailboxes], actor=manager)

    assert task_result.return_value == {"tested": 2, "failed": 0, "not_tested": 0}
    for mailbox in mailboxes:
        saved = reloaded(mailbox)
        assert saved.test_scheduled_on is None
        assert saved.incoming_status == Status.SUCCESS
    assert LogEntry.objects.filter(user=manager, change_message__startswith="Test & Enable").count() == 2


def test_a_profile_schedules_all_its_active_mailboxes(
    make_test_server_profile, make_test_mailbox, no_approval_required, manager
):
    profile = make_test_server_profile()
    active = make_test_mailbox(profile)
    inactive = make_test_mailbox(profile)
    mailbox_set_state(mailbox=inactive, active=False)
    elsewhere = make_test_mailbox(make_test_server_profile())

    task_result = profile_schedule_tests(profile, manager)

    assert task_result.return_value["tested"] == 1
    assert reloaded(active).incoming_status == Status.SUCCESS
    assert reloaded(inactive).test_completed_on is None
    assert reloaded(elsewhere).test_completed_on is None


# Permission ---------------------------------------------------------------------------


def test_only_users_with_the_test_permission_may_test(manager, sysadmin, readonly):
    assert can_test_mailboxes(manager)
    assert can_test_mailboxes(sysadmin)
    assert not can_test_mailboxes(readonly)
    assert not can_test_mailboxes(None)
    with pytest.raises(PermissionDenied):
        check_can_test_mailboxes(readonly)


def test_a_user_without_the_permission_cannot_schedule_or_run_tests(
    make_test_server_profile, make_test_mailbox, readonly
):
    profile = make_test_server_profile()
    mailbox = make_test_mailbox(profile)

    with pytest.raises(PermissionDenied):
        schedule_mailbox_tests([mailbox.pk], actor=readonly)
    with pytest.raises(PermissionDenied):
        mailbox_test_and_enable(mailbox, actor=readonly)
    with pytest.raises(PermissionDenied):
        profile_schedule_tests(profile, readonly)
    with pytest.raises(PermissionDenied):
        profile_test_connection(profile, actor=readonly)
    assert reloaded(mailbox).test_scheduled_on is None


# Test Connection on a profile form ---------------------------------------------------


def test_test_connection_tries_the_unsaved_values_with_the_typed_password(db, dovecot, smtp_servers):
    profile = EmailServerProfile(
        name="Not saved",
        server_type=ServerType.IMAP_SMTP,
        incoming_server=dovecot.plain_host,
        incoming_port=dovecot.imap_port,
        incoming_ssl=False,
        outgoing_server=smtp_servers.host,
        outgoing_port=smtp_servers.plain_port,
        outgoing_ssl=False,
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        timeout_ms=2000,
        allow_unencrypted_credentials=True,  # the test servers' plain-text ports
    )

    result = profile_test_connection(profile, incoming_password=MAIL_PASSWORD)

    assert result.ok, (result.incoming.message, result.outgoing.message)
    assert "logged in as" in result.incoming.message
    assert "authenticated as" in result.outgoing.message
    assert not EmailServerProfile.objects.filter(name="Not saved").exists()


def test_test_connection_with_a_blank_password_uses_the_stored_one(make_test_server_profile):
    profile = make_test_server_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        password=MAIL_PASSWORD,
    )
    profile = EmailServerProfile.objects.get(pk=profile.pk)
    profile.description = "edited in the form, not saved"

    result = profile_test_connection(profile, incoming_password="")

    assert result.ok, (result.incoming.message, result.outgoing.message)


def test_test_connection_with_a_wrong_typed_password_fails_authentication(make_test_server_profile):
    profile = make_test_server_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        password=MAIL_PASSWORD,
    )

    result = profile_test_connection(profile, incoming_password="Typed-Wrong-77")

    assert result.incoming.cause == result.outgoing.cause == Cause.AUTHENTICATION_FAILED
    assert "Typed-Wrong-77" not in result.incoming.message + result.outgoing.message


def test_test_connection_refuses_a_typed_password_with_a_line_break(make_test_server_profile):
    profile = make_test_server_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username=MAIL_USERNAME,
        password=MAIL_PASSWORD,
    )

    result = profile_test_connection(profile, incoming_password="pw\r\nA2 LOGOUT")

    assert result.incoming.cause == Cause.AUTHENTICATION_FAILED
    assert "control characters" in result.incoming.message
    assert "LOGOUT" not in result.incoming.message


def test_test_connection_of_a_user_credentials_profile_connects_without_logging_in(
    make_test_server_profile,
):
    result = profile_test_connection(make_test_server_profile())

    assert result.ok
    assert "login not tried" in result.incoming.message


def test_test_connection_refuses_values_that_are_not_a_host_name(make_test_server_profile):
    from django.core.exceptions import ValidationError

    profile = make_test_server_profile()
    profile.incoming_server = "imap://127.0.0.1:143"
    profile.timeout_ms = 0

    with pytest.raises(ValidationError) as raised:
        profile_test_connection(profile)

    assert set(raised.value.message_dict) == {"incoming_server", "timeout_ms"}


# Secrets ------------------------------------------------------------------------------


def test_no_password_appears_in_any_alert_status_history_or_log(
    make_test_server_profile, make_test_mailbox, no_approval_required, caplog, sysadmin, closed_port
):
    caplog.set_level(logging.DEBUG, logger="mailboxes")
    caplog.set_level(logging.DEBUG, logger="serverprofiles")
    wrong = "Wrong-But-Secret-4711"
    profile = make_test_server_profile()
    mailboxes = [
        make_test_mailbox(profile),
        make_test_mailbox(profile, password=wrong),
        make_test_mailbox(make_test_server_profile(incoming_port=closed_port), password=wrong),
    ]

    results = run_mailbox_tests([m.pk for m in mailboxes], actor=sysadmin)
    mailbox_test_and_enable(mailboxes[1], actor=sysadmin)

    texts = [r.message for r in caplog.records if not r.name.startswith("mail.log")]
    texts += list(MailboxAlert.objects.values_list("message", flat=True))
    for row in Mailbox.objects.values("incoming_error", "outgoing_error", "act_error"):
        texts += row.values()
    texts += list(LogEntry.objects.values_list("change_message", flat=True))
    texts += [message for r in results for message in r.causes]
    texts += [o.message for r in results for o in r.outcomes.values() if o]
    assert any("Authentication failed" in t for t in texts)
    for text in texts:
        assert MAIL_PASSWORD not in text
        assert wrong not in text


# The worker closes the database connection after each task, as it should in production;
# inside a test-case transaction that would end the test's transaction (on PostgreSQL).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_database_queue_worker_runs_a_scheduled_test(
    make_test_server_profile, make_test_mailbox, no_approval_required, settings, manager
):
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
    mailbox = make_test_mailbox(make_test_server_profile())

    schedule_mailbox_tests([mailbox.pk], actor=manager)
    assert reloaded(mailbox).test_scheduled_on is not None
    assert DBTaskResult.objects.get().status == "READY"

    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)

    saved = reloaded(mailbox)
    assert saved.test_scheduled_on is None
    assert saved.incoming_status == Status.SUCCESS
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
