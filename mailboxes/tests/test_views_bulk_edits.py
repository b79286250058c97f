"""Set Server Profile… and Set Delivery Methods… on the selected rows of /mailboxes/: the
same services and BulkJob path as the admin's actions, with a per-record result."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from mailboxes.models import BulkJob, Mailbox, TestStatus
from mailboxes.services import bulk_jobs
from mailboxes.services.mailboxes import mailbox_save
from serverprofiles.models import ServerType
from tests.fixtures.ui import page_messages

pytestmark = pytest.mark.django_db

SET_PROFILE = "/mailboxes/set-server-profile/"
SET_METHODS = "/mailboxes/set-delivery-methods/"


def selected(*mailboxes) -> list[str]:
    return [str(m.pk) for m in mailboxes]


def applied(mailboxes, profile) -> dict:
    """An Apply of either page: a profile for one, a delivery method for the other."""
    methods = {"outgoing_method": "none"}
    return {"selected": selected(*mailboxes), "server_profile": profile.pk, **methods, "apply": "yes"}


def fresh(mailbox) -> Mailbox:
    return Mailbox.objects.get(pk=mailbox.pk)


@pytest.fixture
def target(make_profile):
    return make_profile(name="Target IMAP")


@pytest.fixture
def three(make_user, profile, make_profile):
    """ann and ben on the IMAP profile, and carol syncing appointments on Exchange, which
    an IMAP profile refuses (M8)."""
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


def test_the_list_offers_the_bulk_edits_to_those_who_may_change_mailboxes(manager_client):
    content = manager_client.get("/mailboxes/").content.decode()

    assert f'formaction="{SET_PROFILE}"' in content
    assert f'formaction="{SET_METHODS}"' in content
    assert "Set Server Profile…" in content and "Set Delivery Methods…" in content


def test_the_list_offers_no_bulk_edits_to_read_only_users(readonly_client):
    content = readonly_client.get("/mailboxes/").content.decode()

    assert "Set Server Profile…" not in content
    assert "Set Delivery Methods…" not in content


def test_the_form_page_lists_the_profiles_and_carries_the_selection(manager_client, three, target):
    response = manager_client.post(SET_PROFILE, {"selected": selected(*three), "next": "/mailboxes/"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "3 mailboxes selected" in content
    assert "Target IMAP" in content
    for mailbox in three:
        assert f'<input type="hidden" name="selected" value="{mailbox.pk}">' in content
    assert fresh(three[0]).server_profile_id != target.pk  # nothing changed yet


def test_a_manager_sets_a_server_profile_and_sees_each_refused_mailbox_with_its_reason(
    manager_client, manager, three, target
):
    ann, ben, carol = three
    Mailbox.objects.filter(pk=ann.pk).update(incoming_status=TestStatus.SUCCESS)

    response = manager_client.post(
        SET_PROFILE, {"selected": selected(*three), "server_profile": target.pk, "apply": "yes"}
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "2 changed, 1 refused." in content
    assert (
        f'<td><a href="/mailboxes/{carol.pk}/">carol@example.test</a></td><td>Appointments, Contacts, and '
        "Tasks: Appointments, Contacts, and Tasks cannot use Server-Side Synchronization with a POP3/SMTP "
        "or IMAP/SMTP server profile" in content
    )
    assert fresh(ann).server_profile == fresh(ben).server_profile == target
    assert fresh(ann).incoming_status == TestStatus.NOT_RUN  # M13, as the service does
    assert fresh(carol).server_profile_id == carol.server_profile_id
    assert fresh(carol).version == carol.version
    assert not BulkJob.objects.exists()


def test_set_delivery_methods_changes_the_chosen_ones_and_refuses_what_a_kind_forbids(
    manager_client, three, make_forward_mailbox
):
    ann, ben, _carol = three
    forward = make_forward_mailbox()

    response = manager_client.post(
        SET_METHODS,
        {"selected": selected(ann, ben, forward), "outgoing_method": "outlook", "apply": "yes"},
    )

    content = response.content.decode()
    assert "2 changed, 1 refused." in content
    assert f'<a href="/mailboxes/{forward.pk}/">{forward.email}</a></td><td>Outgoing Email: ' in content
    assert fresh(ann).outgoing_method == fresh(ben).outgoing_method == "outlook"
    assert fresh(ann).incoming_method == ann.incoming_method  # left as it is
    assert fresh(forward).outgoing_method == forward.outgoing_method


def test_set_delivery_methods_asks_for_at_least_one_method(manager_client, three):
    ann = three[0]

    response = manager_client.post(SET_METHODS, {"selected": selected(ann), "apply": "yes"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was changed." in content
    assert "Choose at least one delivery method to change." in content
    assert fresh(ann).version == ann.version


def test_set_server_profile_without_a_profile_names_the_field(manager_client, three):
    response = manager_client.post(SET_PROFILE, {"selected": selected(*three), "apply": "yes"})

    content = response.content.decode()
    assert "data-focus-field>Server Profile</a>: This field is required." in content
    assert all(fresh(m).version == m.version for m in three)


def test_over_the_threshold_the_change_runs_as_a_bulk_job_and_leads_to_its_page(
    manager_client, manager, three, target, monkeypatch
):
    monkeypatch.setattr(bulk_jobs, "BACKGROUND_THRESHOLD", 2)

    response = manager_client.post(
        SET_PROFILE, {"selected": selected(*three), "server_profile": target.pk, "apply": "yes"}
    )

    job = BulkJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/mailboxes/bulk-actions/{job.pk}/"
    assert (job.action, job.requested_by, job.total) == ("set-server-profile", manager, 3)
    page = manager_client.get(response["Location"])
    assert page_messages(page) == ["Set Server Profile on 3 mailboxes is scheduled to run in the background."]
    assert "2 changed, 1 refused." in page.content.decode()  # the tests' task backend runs it at once


def test_ids_that_name_no_mailbox_are_left_out_and_said_so(manager_client, three, target):
    ann = three[0]
    gone = Mailbox.objects.order_by("-pk").first().pk + 100

    form = manager_client.post(SET_PROFILE, {"selected": [str(ann.pk), str(gone), "x1", str(2**64)]})
    result = manager_client.post(
        SET_PROFILE,
        {"selected": [str(ann.pk), str(gone)], "server_profile": target.pk, "apply": "yes"},
    )

    assert "1 mailbox selected" in form.content.decode()
    assert "3 of the selected mailboxes no longer exist and are left out." in form.content.decode()
    assert f'value="{gone}"' not in form.content.decode()
    assert "1 changed, 0 refused." in result.content.decode()
    assert "1 of the selected mailboxes no longer exists and was left out." in result.content.decode()
    assert fresh(ann).server_profile == target


def test_no_selection_returns_to_the_list_with_a_warning(manager_client):
    response = manager_client.post(SET_PROFILE, {"server_profile": "1", "apply": "yes"}, follow=True)

    assert response.redirect_chain == [("/mailboxes/", 302)]
    assert page_messages(response) == ["Set Server Profile: select one or more mailboxes first."]


@pytest.mark.parametrize("url", [SET_PROFILE, SET_METHODS])
def test_read_only_users_are_refused(readonly_client, three, target, url):
    data = applied(three, target)

    assert readonly_client.get(url, {"selected": selected(*three)}).status_code == 403
    assert readonly_client.post(url, data).status_code == 403
    assert all(fresh(m).version == m.version for m in three)


@pytest.mark.parametrize("url", [SET_PROFILE, SET_METHODS])
def test_anonymous_visitors_are_sent_to_sign_in(client, three, target, url):
    data = applied(three, target)

    response = client.post(url, data)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"
    assert all(fresh(m).version == m.version for m in three)


def test_a_post_without_the_csrf_token_is_refused(manager, three, target):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)

    response = client.post(
        SET_PROFILE, {"selected": selected(*three), "server_profile": target.pk, "apply": "yes"}
    )

    assert response.status_code == 403
    assert all(fresh(m).version == m.version for m in three)


def test_a_system_administrator_may_use_them_too(sysadmin_client, three, target):
    response = sysadmin_client.post(
        SET_PROFILE, {"selected": selected(*three[:2]), "server_profile": target.pk, "apply": "yes"}
    )

    assert "2 changed, 0 refused." in response.content.decode()


def test_the_form_page_runs_a_fixed_number_of_queries(manager_client, three, target, make_profile):
    url = SET_PROFILE + "?" + "&".join(f"selected={pk}" for pk in selected(*three))
    manager_client.get(url)  # the session and the user's permissions are cached after this
    with CaptureQueriesContext(connection) as few:
        manager_client.get(url)
    for i in range(5):
        make_profile(name=f"More {i}")
    with CaptureQueriesContext(connection) as more:
        response = manager_client.get(url)

    assert response.status_code == 200
    assert len(more) == len(few)
    # The session, the user, their permissions (two), the selected ids, the profiles.
    assert len(few) == 6, [q["sql"] for q in few.captured_queries]


def test_cancel_and_back_return_to_the_list_page_the_rows_were_ticked_on(manager_client, three, target):
    back = "/mailboxes/?view=all&q=example"
    form = manager_client.post(SET_PROFILE, {"selected": selected(*three), "next": back})
    result = manager_client.post(
        SET_PROFILE, {"selected": selected(*three), "next": back, "server_profile": target.pk, "apply": "yes"}
    )
    elsewhere = manager_client.post(SET_PROFILE, {"selected": selected(*three), "next": "https://evil.test/"})

    assert 'href="/mailboxes/?view=all&amp;q=example">Cancel</a>' in form.content.decode()
    assert 'href="/mailboxes/?view=all&amp;q=example">Back to Mailboxes</a>' in result.content.decode()
    assert 'href="/mailboxes/">Cancel</a>' in elsewhere.content.decode()


@pytest.mark.parametrize("url", [SET_PROFILE, SET_METHODS])
def test_signed_in_users_who_are_not_staff_are_refused(client, make_user, three, target, url):
    insider = make_user(username="insider")  # in the System Administrator group, but not staff
    insider.groups.add(Group.objects.get(name="System Administrator"))
    client.force_login(insider)
    data = applied(three, target)

    assert client.get(url, {"selected": selected(*three)}).status_code == 403
    assert client.post(url, data).status_code == 403
    assert all(fresh(m).version == m.version for m in three)
