"""Test & Enable and Test Connection from the browser pages, against the real test servers."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from mailboxes.models import Mailbox, TestStatus
from serverprofiles.models import AuthenticationMethod, EmailServerProfile
from tests.fixtures.mailservers import MAIL_PASSWORD, MAIL_USERNAME

pytestmark = pytest.mark.django_db


def test_test_and_enable_from_the_mailbox_list(
    client, sysadmin, make_test_server_profile, make_test_mailbox, no_approval_required
):
    profile = make_test_server_profile()
    good = make_test_mailbox(profile)
    bad = make_test_mailbox(profile, password="Wrong-Password-1")
    client.force_login(sysadmin)
    response = client.post(
        reverse("mailboxes:commands"),
        {"command": "test-enable", "selected": [good.pk, bad.pk]},
        follow=True,
    )
    assert "Test &amp; Enable scheduled for 2 mailboxes" in response.content.decode()
    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.incoming_status, good.outgoing_status) == (TestStatus.SUCCESS, TestStatus.SUCCESS)
    assert good.enabled_incoming and good.test_completed_on
    assert bad.incoming_status == TestStatus.FAILURE
    page = client.get(bad.get_absolute_url()).content.decode()
    assert "Authentication failed" in page or "authentication failed" in page
    assert "Wrong-Password-1" not in page


def test_test_and_enable_needs_the_test_permission(client, readonly, make_test_mailbox, make_profile):
    mailbox = make_test_mailbox(make_profile())
    client.force_login(readonly)
    response = client.post(
        reverse("mailboxes:commands"), {"command": "test-enable", "selected": [mailbox.pk]}
    )
    assert response.status_code == 403
    assert Mailbox.objects.get(pk=mailbox.pk).incoming_status == TestStatus.NOT_RUN


def test_mailbox_form_offers_test_and_enable(client, manager, make_user):
    client.force_login(manager)
    page = client.get(make_user().mailbox.get_absolute_url()).content.decode()
    assert "Test &amp; Enable Mailbox" in page


def test_profile_test_and_enable_mailboxes(
    client, sysadmin, make_test_server_profile, make_test_mailbox, no_approval_required
):
    profile = make_test_server_profile()
    mailbox = make_test_mailbox(profile)
    client.force_login(sysadmin)
    response = client.post(
        reverse("serverprofiles:commands", args=[profile.pk]), {"command": "test-mailboxes"}, follow=True
    )
    assert "Test &amp; Enable scheduled" in response.content.decode()
    assert Mailbox.objects.get(pk=mailbox.pk).incoming_status == TestStatus.SUCCESS


def _profile_form_data(client, profile) -> dict:
    form = client.get(profile.get_absolute_url()).context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None or getattr(field.widget, "input_type", "") == "password":
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = value
    return data


def test_test_connection_tries_the_unsaved_values(client, sysadmin, make_test_server_profile, dovecot):
    profile = make_test_server_profile()
    client.force_login(sysadmin)
    data = _profile_form_data(client, profile)
    data.update(
        {
            "incoming_auth": AuthenticationMethod.PROFILE_CREDENTIALS,
            "incoming_username": MAIL_USERNAME,
            "incoming_password": MAIL_PASSWORD,
            "description": "Not saved by a test",
            "test_connection": "",
        }
    )
    response = client.post(profile.get_absolute_url(), data)
    page = response.content.decode()
    assert response.status_code == 200, page
    assert "Test Connection, incoming:" in page
    assert "without saving them" in page
    assert MAIL_PASSWORD not in page
    assert escape(MAIL_PASSWORD) not in page
    stored = EmailServerProfile.objects.get(pk=profile.pk)
    assert stored.description != "Not saved by a test"
    assert stored.incoming_auth == AuthenticationMethod.USER_CREDENTIALS


def test_test_connection_reports_a_closed_port(client, sysadmin, make_test_server_profile, closed_port):
    profile = make_test_server_profile()
    client.force_login(sysadmin)
    data = _profile_form_data(client, profile)
    data.update({"incoming_port": closed_port, "test_connection": ""})
    page = client.post(profile.get_absolute_url(), data).content.decode()
    assert "refused" in page.lower()
    assert EmailServerProfile.objects.get(pk=profile.pk).incoming_port != closed_port


def test_pages_say_a_test_is_scheduled(client, sysadmin, make_user):
    from django.utils import timezone

    mailbox = make_user().mailbox
    Mailbox.objects.filter(pk=mailbox.pk).update(test_scheduled_on=timezone.now())
    client.force_login(sysadmin)
    assert "Test &amp; Enable scheduled" in client.get(mailbox.get_absolute_url()).content.decode()
    assert "Test scheduled" in client.get(reverse("mailboxes:list") + "?view=all").content.decode()
