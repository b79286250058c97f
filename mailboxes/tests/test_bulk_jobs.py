"""Bulk actions on more than BACKGROUND_THRESHOLD mailboxes run in the background: the
action schedules a job and leads to its page, which shows progress (done / total) and
then the per-record result; only the requester and System Administrators see it.

Tests lower the threshold; the task backend of the tests (ImmediateBackend) runs the job
as it is scheduled. tests/test_bulk_jobs_worker.py runs it in the real worker instead."""

import pytest
from django.contrib.admin.models import LogEntry

from mailboxes.models import ApprovalStatus, BulkJob, Mailbox
from mailboxes.services import bulk_jobs
from mailboxes.services.bulk_jobs import mailboxes_bulk_action
from mailboxes.services.mailboxes import mailbox_save
from serverprofiles.models import ServerType
from tests.fixtures.admin import messages_of

CHANGELIST = "/admin/mailboxes/mailbox/"


@pytest.fixture
def threshold(monkeypatch):
    monkeypatch.setattr(bulk_jobs, "BACKGROUND_THRESHOLD", 2)


@pytest.fixture
def three(make_user, make_forward_mailbox, profile, make_profile):
    """Two user mailboxes and a third whose appointments sync on Exchange: an IMAP
    profile would refuse it (M8)."""
    mailboxes = []
    for name in ("ann", "ben"):
        mailbox = make_user(name).mailbox
        mailbox.server_profile = profile
        mailboxes.append(mailbox_save(mailbox))
    exchange = make_profile(
        name="Contoso Exchange",
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )
    carol = make_user("carol").mailbox
    carol.server_profile, carol.act_method = exchange, "server-side-sync"
    return [*mailboxes, mailbox_save(carol)]


def run_action(client, action, mailboxes, **fields):
    data = {"action": action, "index": "0", "_selected_action": [str(m.pk) for m in mailboxes], **fields}
    return client.post(CHANGELIST, data)


def test_a_large_selection_is_scheduled_and_its_page_shows_the_result(
    client_for, sysadmin, three, threshold, make_profile
):
    client = client_for(sysadmin)
    target = make_profile(name="Target IMAP")

    response = run_action(client, "set_server_profile", three, server_profile=target.pk, apply="yes")

    job = BulkJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/mailboxes/bulk-actions/{job.pk}/"
    assert (job.action, job.requested_by, job.total) == ("set-server-profile", sysadmin, 3)
    assert sorted(job.mailbox_ids) == sorted(m.pk for m in three)
    page = client.get(response["Location"])
    content = page.content.decode()
    assert messages_of(page) == ["Set Server Profile on 3 mailboxes is scheduled to run in the background."]
    assert 'Finished: <span class="bulk-job__progress">3 / 3</span> done.' in content
    assert "2 changed, 1 refused." in content
    carol = three[2]
    assert f"<td>{carol.email}</td><td>Appointments, Contacts, and Tasks: Appointments" in content
    assert Mailbox.objects.filter(pk__in=[three[0].pk, three[1].pk], server_profile=target).count() == 2
    assert Mailbox.objects.get(pk=carol.pk).server_profile_id == carol.server_profile_id
    assert LogEntry.objects.filter(user=sysadmin, object_id=str(three[0].pk), action_flag=2).exists()


def test_a_job_whose_profile_was_deleted_meanwhile_refuses_each_mailbox_saying_why(
    client_for, sysadmin, three, make_profile
):
    target = make_profile(name="Target IMAP")
    job = BulkJob.objects.create(
        action=BulkJob.Action.SET_SERVER_PROFILE,
        parameters={"server_profile": target.pk},
        mailbox_ids=[m.pk for m in three],
        total=3,
        requested_by=sysadmin,
    )
    target.delete()  # unused, so P8 allows it; the job is still waiting for the worker

    bulk_jobs.bulk_job_run(job.pk)

    content = client_for(sysadmin).get(f"/mailboxes/bulk-actions/{job.pk}/").content.decode()
    assert 'Finished: <span class="bulk-job__progress">3 / 3</span> done.' in content
    assert "0 changed, 3 refused." in content
    for mailbox in three:
        assert (
            f"<td>{mailbox.email}</td><td>Server Profile: The email server profile chosen for this action "
            "no longer exists (it was deleted after the action was scheduled)."
        ) in content
    kept = dict(Mailbox.objects.filter(pk__in=[m.pk for m in three]).values_list("pk", "server_profile"))
    assert kept == {m.pk: m.server_profile_id for m in three}


def test_a_selection_up_to_the_threshold_runs_in_the_request(client_for, sysadmin, three, threshold):
    response = run_action(client_for(sysadmin), "deactivate", three[:2])

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert not BulkJob.objects.exists()
    assert not Mailbox.objects.filter(pk__in=[m.pk for m in three[:2]], state="active").exists()


@pytest.mark.parametrize(
    ("action", "parameters", "changed"),
    [
        ("activate", {}, {}),
        ("deactivate", {}, {"state": "inactive"}),
        ("approve", {}, {"approval_status": ApprovalStatus.APPROVED}),
        ("reject", {}, {"approval_status": ApprovalStatus.REJECTED}),
        ("apply-default-settings", {}, {}),
        ("set-delivery-methods", {"outgoing_method": "none"}, {"outgoing_method": "none"}),
    ],
)
def test_every_bulk_action_runs_in_the_background(sysadmin, three, threshold, action, parameters, changed):
    job = mailboxes_bulk_action(
        action=action, mailbox_ids=[m.pk for m in three], parameters=parameters, actor=sysadmin
    )

    job.refresh_from_db()
    assert isinstance(job, BulkJob)
    assert (job.status, job.done, job.total) == ("finished", 3, 3)
    assert job.updated + job.unchanged + len(job.refused) == 3
    users = Mailbox.objects.filter(pk__in=[three[0].pk, three[1].pk])
    for field, value in changed.items():
        assert set(users.values_list(field, flat=True)) == {value}
    if action == "set-delivery-methods":
        assert job.updated == 3


def test_the_status_gives_progress_as_json(client_for, sysadmin, three, threshold):
    job = mailboxes_bulk_action(action="deactivate", mailbox_ids=[m.pk for m in three], actor=sysadmin)

    response = client_for(sysadmin).get(f"/mailboxes/bulk-actions/{job.pk}/status/")

    assert response.json() == {"status": "Finished", "finished": True, "done": 3, "total": 3}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("page", ["", "status/"])
def test_a_job_is_seen_by_its_requester_and_system_administrators_only(
    client, client_for, sysadmin, manager, readonly, make_user, three, threshold, page
):
    from django.contrib.auth.models import Group

    job = mailboxes_bulk_action(action="deactivate", mailbox_ids=[m.pk for m in three], actor=manager)
    url = f"/mailboxes/bulk-actions/{job.pk}/{page}"
    other_manager = make_user("other", is_staff=True)
    other_manager.groups.add(Group.objects.get(name="Mailbox Manager"))

    assert client.get(url).status_code == 302  # anonymous: to the login page
    assert client_for(manager).get(url).status_code == 200  # who asked
    assert client_for(sysadmin).get(url).status_code == 200
    # the same answer as for a job that does not exist (or no longer): which do is not told
    assert client_for(other_manager).get(url).status_code == 404
    assert client_for(readonly).get(url).status_code == 404
    assert client_for(readonly).get(f"/mailboxes/bulk-actions/{job.pk + 1000}/{page}").status_code == 404


def test_a_read_only_user_cannot_schedule_a_bulk_action(client_for, readonly, three, threshold):
    response = run_action(client_for(readonly), "deactivate", three)

    assert response.status_code == 200  # the changelist again: the action is not offered
    assert not BulkJob.objects.exists()
    assert Mailbox.objects.filter(pk__in=[m.pk for m in three], state="active").count() == 3
