"""The mailbox form's status as JSON (mailboxes:status), which its script polls while a
Test & Enable runs."""

import pytest
from django.urls import reverse
from django.utils import timezone

from mailboxes.models import Mailbox, MailboxAlert

pytestmark = pytest.mark.django_db


def status_url(mailbox) -> str:
    return reverse("mailboxes:status", args=[mailbox.pk])


def test_anonymous_is_sent_to_sign_in(client, make_user):
    response = client.get(status_url(make_user().mailbox))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["readonly", "manager", "sysadmin"])
def test_every_role_that_sees_the_mailbox_sees_its_status(client, request, role, make_user):
    client.force_login(request.getfixturevalue(role))
    mailbox = make_user().mailbox
    response = client.get(status_url(mailbox))
    assert response.status_code == 200
    data = response.json()
    assert data["scheduled"] is False
    assert data["version"] == mailbox.version
    assert data["fields"]["incoming_status"] == "Not Run"
    assert 'id="mailbox-status"' in data["html"]
    assert response["Cache-Control"] == "no-store"


def test_a_user_without_staff_status_is_refused(client, make_user):
    client.force_login(make_user(password="Correct-Horse-9"))
    assert client.get(status_url(make_user().mailbox)).status_code == 403


def test_it_only_answers_reads(sysadmin_client, make_user):
    assert sysadmin_client.post(status_url(make_user().mailbox)).status_code in (403, 405)


def test_a_scheduled_test_and_its_latest_alert(sysadmin_client, make_user):
    mailbox = make_user().mailbox
    Mailbox.objects.filter(pk=mailbox.pk).update(test_scheduled_on=timezone.now())
    MailboxAlert.objects.create(
        mailbox=mailbox, severity="error", workload="incoming", message="<b>refused</b>"
    )
    data = sysadmin_client.get(status_url(mailbox)).json()
    assert data["scheduled"] is True
    assert "alert-banner--error" in data["html"]
    assert "&lt;b&gt;refused&lt;/b&gt;" in data["html"]  # a server's words are text, never markup


def test_an_unknown_mailbox_is_not_found(sysadmin_client):
    assert sysadmin_client.get(reverse("mailboxes:status", args=[999999])).status_code == 404
