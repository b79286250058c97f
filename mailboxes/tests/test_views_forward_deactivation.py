"""Deactivating the only usable forward mailbox asks first, listing the mailboxes whose
email would stop (issue 16, defect 8); those mailboxes say so afterwards."""

import pytest
from django.test import Client
from django.urls import reverse

from mailboxes.models import IncomingMethod, Mailbox
from mailboxes.services.mailboxes import mailbox_save, mailbox_set_state
from tests.fixtures.ui import field_errors, page_form_data, page_messages

pytestmark = pytest.mark.django_db

COMMANDS = reverse("mailboxes:commands")


@pytest.fixture
def forwarding(make_user, make_forward_mailbox, profile):
    """One forward mailbox, and a user mailbox that receives through it."""
    forward = make_forward_mailbox(name="Collector")
    mailbox = make_user(username="alice").mailbox
    mailbox.server_profile = profile
    mailbox.incoming_method = IncomingMethod.FORWARD_MAILBOX
    return forward, mailbox_save(mailbox)


def deactivate(client: Client, forward: Mailbox, **extra):
    data = {"command": "deactivate", "selected": [forward.pk], "next": forward.get_absolute_url(), **extra}
    return client.post(COMMANDS, data)


@pytest.mark.parametrize("role", ["manager", "sysadmin"])
def test_deactivating_the_only_forward_mailbox_lists_whose_email_stops(client, request, role, forwarding):
    forward, dependent = forwarding
    client.force_login(request.getfixturevalue(role))
    response = deactivate(client, forward)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Deactivate “Collector”?" in page
    assert f'href="{dependent.get_absolute_url()}"' in page
    assert "1 mailbox receives email through a forward mailbox, and this is the only active one" in page
    assert Mailbox.objects.get(pk=forward.pk).is_active  # nothing done yet

    response = deactivate(client, forward, confirmed="yes")
    assert response.status_code == 302
    assert not Mailbox.objects.get(pk=forward.pk).is_active


@pytest.mark.parametrize("role", ["anonymous", "readonly"])
def test_those_who_may_not_deactivate_see_no_confirmation(client, request, role, forwarding):
    forward, _dependent = forwarding
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))
    response = deactivate(client, forward)
    assert response.status_code == (302 if role == "anonymous" else 403)
    assert "/accounts/login/" in response.get("Location", "/accounts/login/")
    assert Mailbox.objects.get(pk=forward.pk).is_active


def test_no_confirmation_while_another_forward_mailbox_remains(
    sysadmin_client, forwarding, make_forward_mailbox
):
    forward, _dependent = forwarding
    make_forward_mailbox(name="Second collector")
    response = deactivate(sysadmin_client, forward)
    assert response.status_code == 302
    assert not Mailbox.objects.get(pk=forward.pk).is_active


def test_no_confirmation_when_no_mailbox_uses_forwarding(sysadmin_client, make_forward_mailbox):
    forward = make_forward_mailbox()
    assert deactivate(sysadmin_client, forward).status_code == 302
    assert not Mailbox.objects.get(pk=forward.pk).is_active


def test_afterwards_the_stranded_mailbox_says_how_to_fix_it(sysadmin_client, forwarding):
    forward, dependent = forwarding
    mailbox_set_state(mailbox=forward, active=False)
    response = sysadmin_client.get(dependent.get_absolute_url())
    warning = "".join(page_messages(response)) + response.content.decode()
    assert "no forward mailbox is active: this mailbox receives no email until one is" in warning
    assert "activate the forward mailbox Collector &lt;" in warning


def test_the_forward_mailbox_rule_names_the_inactive_one_instead_of_create_one(
    sysadmin_client, forwarding, make_user, profile
):
    """M14's refusal: an inactive forward mailbox exists, so activating it is the fix."""
    forward, _dependent = forwarding
    mailbox_set_state(mailbox=forward, active=False)
    mailbox = make_user().mailbox
    url = mailbox.get_absolute_url()
    data = page_form_data(sysadmin_client, url, server_profile=profile.pk, incoming_method="forward-mailbox")
    assert field_errors(sysadmin_client.post(url, data), "incoming_method") == [
        "Incoming Email = Forward Mailbox needs an active forward mailbox that has a server profile; "
        f"activate the forward mailbox {forward} (or create one with New Forward Mailbox)."
    ]


# In the rows of /mailboxes/ -------------------------------------------------------------

LIST_WARNING = "⚠ Receives no email: no active forward mailbox"


def row_of(html: str, name: str) -> str:
    start = html.index(f">{name}</a>")
    return html[start : html.index("</tr>", start)]


def test_afterwards_the_list_row_of_the_stranded_mailbox_warns(sysadmin_client, forwarding, make_user):
    forward, dependent = forwarding
    bystander = make_user(username="bob").mailbox
    html = sysadmin_client.get("/mailboxes/", {"view": "all"}).content.decode()
    assert LIST_WARNING not in html  # the forward mailbox is still active

    mailbox_set_state(mailbox=forward, active=False)
    html = sysadmin_client.get("/mailboxes/", {"view": "all"}).content.decode()
    assert LIST_WARNING in row_of(html, dependent.name)
    assert "Incoming Email is Forward Mailbox, but no forward mailbox is active" in row_of(
        html, dependent.name
    )
    assert LIST_WARNING not in row_of(html, bystander.name)
    assert LIST_WARNING not in row_of(html, forward.name)


def test_the_warnings_cost_the_list_no_query(
    sysadmin_client, django_assert_num_queries, forwarding, make_user, profile, org
):
    forward, _dependent = forwarding
    for _ in range(10):
        mailbox = make_user().mailbox
        mailbox.server_profile, mailbox.incoming_method = profile, IncomingMethod.FORWARD_MAILBOX
        mailbox_save(mailbox)
    mailbox_set_state(mailbox=forward, active=False)
    # As test_list_page_runs_a_fixed_number_of_queries: session, user, permissions (2),
    # the page of mailboxes (which also asks, once, whether a usable forward mailbox
    # exists), the first-run guide.
    with django_assert_num_queries(6):
        response = sysadmin_client.get("/mailboxes/", {"view": "all"})
    assert response.content.decode().count(LIST_WARNING) == 11
