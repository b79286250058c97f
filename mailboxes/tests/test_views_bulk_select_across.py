""" "Select all N mailboxes that match" on /mailboxes/: the bulk edits receive the list's
filters (select_across=1, view, q, profile), not the ids, and resolve the set as the
list would show it; over BACKGROUND_THRESHOLD mailboxes it runs as a BulkJob with
progress and each record's result. The filters reach no mailbox the list would not show,
and roles that may not change mailboxes are refused."""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client

from mailboxes.models import BulkJob, Mailbox, User
from mailboxes.services import bulk_jobs
from serverprofiles.models import ServerType
from tests.fixtures.ui import page_messages

pytestmark = pytest.mark.django_db

LIST = "/mailboxes/"
SET_PROFILE = "/mailboxes/set-server-profile/"
SET_METHODS = "/mailboxes/set-delivery-methods/"
COUNT = "/mailboxes/matching/"


def bulk_user_mailboxes(prefix: str, count: int, **fields) -> list[Mailbox]:
    """`count` users and their mailboxes, two INSERTs (test data; the rules at stake are
    those of the bulk edit, not of creating users)."""
    users = User.objects.bulk_create(
        User(username=f"{prefix}{i:04d}", email=f"{prefix}{i:04d}@example.test", full_name=f"{prefix} {i}")
        for i in range(count)
    )
    return Mailbox.objects.bulk_create(
        Mailbox(kind=Mailbox.Kind.USER, user=user, name=user.full_name, email=user.email, **fields)
        for user in users
    )


@pytest.fixture
def target(make_profile):
    return make_profile(name="Target IMAP")


@pytest.fixture
def exchange(make_profile):
    return make_profile(
        name="Contoso Exchange",
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )


@pytest.fixture
def bystanders(profile):
    """Mailboxes the searches below do not match: no bulk edit may touch them."""
    return bulk_user_mailboxes("bystander", 5, server_profile=profile)


def across(**filters) -> dict:
    return {"select_across": "1", **filters}


def profiles_of(mailboxes) -> set:
    return set(
        Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes]).values_list("server_profile", flat=True)
    )


def test_selecting_1500_that_match_runs_as_a_bulk_job_ending_with_each_records_result(
    manager_client, profile, exchange, target, bystanders
):
    plain = bulk_user_mailboxes("agent", 1490, server_profile=profile)
    # Appointments synchronised on Exchange: an IMAP profile refuses them (M8).
    calendars = bulk_user_mailboxes("agentcal", 10, server_profile=exchange, act_method="server-side-sync")

    response = manager_client.post(SET_PROFILE, across(view="all", q="agent"))
    html = response.content.decode()
    assert "1500 mailboxes selected: all in All Mailboxes whose name or address contains “agent”" in html
    assert 'name="selected"' not in html  # the filters travel, not 1,500 ids
    assert '<input type="hidden" name="select_across" value="1">' in html

    response = manager_client.post(
        SET_PROFILE, across(view="all", q="agent", server_profile=target.pk, apply="yes", next=LIST)
    )

    job = BulkJob.objects.get()  # the tests' task backend runs it as it is scheduled
    assert response.status_code == 302
    assert response["Location"] == job.get_absolute_url()
    assert (job.action, job.total, job.done, job.status) == ("set-server-profile", 1500, 1500, "finished")
    assert (job.updated, job.unchanged) == (1490, 0)
    assert sorted(r["record"] for r in job.refused) == sorted(m.email for m in calendars)
    assert all("cannot use Server-Side Synchronization" in r["reasons"] for r in job.refused)
    assert profiles_of(plain) == {target.pk}
    assert profiles_of(calendars) == {exchange.pk}
    assert profiles_of(bystanders) == {profile.pk}
    page = manager_client.get(job.get_absolute_url()).content.decode()
    assert "agentcal0000@example.test" in page


def test_a_small_match_is_changed_in_the_request(manager_client, profile, target, bystanders):
    mailboxes = bulk_user_mailboxes("agent", 3, server_profile=profile)
    data = across(view="all", q="agent", outgoing_method="server-side-sync", apply="yes")
    response = manager_client.post(SET_METHODS, data)
    assert response.status_code == 200
    assert "3 changed, 0 refused." in response.content.decode()
    changed = Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes])
    assert set(changed.values_list("outgoing_method", flat=True)) == {"server-side-sync"}
    assert set(
        Mailbox.objects.filter(pk__in=[m.pk for m in bystanders]).values_list("outgoing_method", flat=True)
    ) == {"none"}
    assert not BulkJob.objects.exists()


def test_the_filters_reach_only_what_the_list_shows(manager_client, profile, target, bystanders):
    """Ids sent beside select_across, unknown parameters and an unknown view widen nothing:
    an unknown view is the list's default (Active Mailboxes)."""
    active = bulk_user_mailboxes("agent", 3, server_profile=profile)
    inactive = bulk_user_mailboxes("agentoff", 2, server_profile=profile, state=Mailbox.State.INACTIVE)
    data = across(
        view="everything",
        q="agent",
        kind="user",
        pk__in="1",
        selected=[str(m.pk) for m in bystanders],
        server_profile=target.pk,
        apply="yes",
    )
    response = manager_client.post(SET_PROFILE, data)
    assert response.status_code == 200
    assert profiles_of(active) == {target.pk}
    assert profiles_of(inactive) == {profile.pk}
    assert profiles_of(bystanders) == {profile.pk}


def test_a_refused_form_keeps_the_selection_of_all_that_match(manager_client, profile, bystanders):
    response = manager_client.post(SET_PROFILE, across(view="all", q="bystander", apply="yes"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was changed." in html
    assert '<input type="hidden" name="select_across" value="1">' in html
    assert '<input type="hidden" name="q" value="bystander">' in html
    assert "5 mailboxes selected" in html
    assert profiles_of(bystanders) == {profile.pk}


def test_a_profile_filter_narrows_the_set(manager_client, profile, make_profile, target):
    other = make_profile(name="Other IMAP")
    on_profile = bulk_user_mailboxes("agent", 2, server_profile=profile)
    on_other = bulk_user_mailboxes("agentx", 2, server_profile=other)
    manager_client.post(
        SET_PROFILE, across(q="agent", profile=str(profile.pk), server_profile=target.pk, apply="yes")
    )
    assert profiles_of(on_profile) == {target.pk}
    assert profiles_of(on_other) == {other.pk}


def test_nothing_that_matches_changes_nothing(manager_client, profile, target, bystanders):
    response = manager_client.post(
        SET_PROFILE, across(view="forward", q="bystander", server_profile=target.pk, apply="yes", next=LIST)
    )
    assert response.status_code == 302
    assert page_messages(manager_client.get(LIST)) == [
        "Set Server Profile: select one or more mailboxes first."
    ]
    assert profiles_of(bystanders) == {profile.pk}


def test_a_search_no_mailbox_can_match_is_refused(manager_client, bystanders, target):
    response = manager_client.post(
        SET_PROFILE, across(q="by\x00stander", server_profile=target.pk, apply="yes")
    )
    assert response.status_code == 400
    assert manager_client.get(COUNT, {"q": "x" * 3000}).status_code == 400


@pytest.mark.parametrize("url", [SET_PROFILE, SET_METHODS])
def test_read_only_and_anonymous_are_refused(readonly, url, profile, target, bystanders):
    data = across(view="all", server_profile=target.pk, outgoing_method="none", apply="yes")
    reader = Client()
    reader.force_login(readonly)
    assert reader.post(url, data).status_code == 403
    assert reader.get(url, across(view="all")).status_code == 403
    anonymous = Client().post(url, data)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert profiles_of(bystanders) == {profile.pk}
    assert not BulkJob.objects.exists()
    assert not LogEntry.objects.exists()


def test_the_count_says_how_many_match_for_those_who_may_see_the_list(readonly_client, profile, bystanders):
    bulk_user_mailboxes("agent", 4, server_profile=profile)
    response = readonly_client.get(COUNT, {"view": "all", "q": "agent"})
    assert response.json() == {"count": 4}
    assert response["Cache-Control"] == "no-store"
    assert readonly_client.get(COUNT, {"view": "forward"}).json() == {"count": 0}
    anonymous = Client().get(COUNT)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_the_list_carries_its_filters_for_select_all(manager_client, profile, bystanders):
    html = manager_client.get(LIST, {"view": "all", "q": "bystander"}).content.decode()
    assert '<input type="hidden" name="select_across" value="0">' in html
    assert '<input type="hidden" name="view" value="all">' in html
    assert '<input type="hidden" name="q" value="bystander">' in html
    assert 'data-count-url="/mailboxes/matching/?view=all&amp;q=bystander"' in html
    assert "mailboxadmin/select_across.js" in html


def test_read_only_gets_no_select_all(readonly_client, bystanders):
    html = readonly_client.get(LIST).content.decode()
    assert "select_across" not in html


def test_a_row_command_refuses_select_all(manager_client, profile, bystanders):
    data = {"command": "deactivate", "select_across": "1", "view": "all", "next": LIST}
    data["selected"] = [str(m.pk) for m in bystanders]
    response = manager_client.post("/mailboxes/commands/", data)
    assert response.status_code == 302
    assert "acts on the ticked rows only" in page_messages(manager_client.get(LIST))[0]
    assert not Mailbox.objects.filter(state=Mailbox.State.INACTIVE).exists()


@pytest.fixture(autouse=True)
def _threshold_as_shipped():
    assert bulk_jobs.BACKGROUND_THRESHOLD == 1000
