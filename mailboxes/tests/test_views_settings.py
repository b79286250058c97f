"""Organisation email settings: /settings/email/."""

import pytest
from django.test import Client

from mailboxes.models import OrganizationSettings
from tests.fixtures.ui import field_errors, page_form_data, page_messages

pytestmark = pytest.mark.django_db

URL = "/settings/email/"


def test_settings_labels(sysadmin_client, org):
    html = sysadmin_client.get(URL).content.decode()
    for name, label in [
        ("default_server_profile", "Server Profile"),
        ("default_incoming", "Incoming Email"),
        ("default_outgoing", "Outgoing Email"),
        ("default_act", "Appointments, Contacts, and Tasks"),
        ("approval_required_for_users", "Process email only for approved users"),
        ("approval_required_for_queues", "Process email only for approved queues"),
    ]:
        assert f'<label for="id_{name}">{label}</label>' in html


def test_save_settings(sysadmin_client, profile, org):
    data = page_form_data(
        sysadmin_client, URL, default_server_profile=profile.pk, approval_required_for_queues=False, save=""
    )
    response = sysadmin_client.post(URL, data, follow=True)
    assert response.redirect_chain == [(URL, 302)]
    assert page_messages(response) == ["The email settings were saved."]
    settings = OrganizationSettings.load()
    assert settings.default_server_profile == profile
    assert settings.approval_required_for_queues is False
    assert settings.approval_required_for_users is True


def test_save_and_close_goes_to_the_mailboxes(sysadmin_client, org):
    response = sysadmin_client.post(URL, page_form_data(sysadmin_client, URL, save_close=""))
    assert response.headers["Location"] == "/mailboxes/"


def test_default_appointments_need_an_exchange_profile(sysadmin_client, profile, org):
    data = page_form_data(
        sysadmin_client, URL, default_server_profile=profile.pk, default_act="server-side-sync"
    )
    response = sysadmin_client.post(URL, data)
    assert field_errors(response, "default_act") == [
        "Appointments, Contacts, and Tasks cannot use Server-Side Synchronization with a "
        "POP3/SMTP or IMAP/SMTP server profile: those servers carry no calendars or contacts."
    ]
    assert OrganizationSettings.load().default_act == "none"


def test_concurrent_settings_edits(sysadmin, make_user, org):
    other = make_user(is_staff=True, is_superuser=True)
    first, second = Client(), Client()
    first.force_login(sysadmin)
    second.force_login(other)
    first_data = page_form_data(first, URL, approval_required_for_users=False)
    second_data = page_form_data(second, URL, default_incoming="none")
    first.post(URL, first_data)
    response = second.post(URL, second_data)
    assert response.status_code == 409
    settings = OrganizationSettings.load()
    assert (settings.approval_required_for_users, settings.default_incoming) == (False, "server-side-sync")


def test_manager_sees_the_settings_read_only(manager_client, org):
    response = manager_client.get(URL)
    assert response.status_code == 200
    assert ">Save</button>" not in response.content.decode()
    assert all(field.disabled for field in response.context["form"].fields.values())
    assert manager_client.post(URL, page_form_data(manager_client, URL)).status_code == 403
