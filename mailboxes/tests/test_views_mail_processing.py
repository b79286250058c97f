"""The mailbox form's Mail Processing section and Process Now (SPEC section 8)."""

import re
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from mailboxes.models import ApprovalStatus, Mailbox, MailboxSync
from mailboxes.models.choices import IncomingMethod
from mailboxes.views import processing
from tests.fixtures.ui import page_messages

pytestmark = pytest.mark.django_db

PROCESSED_SOON = (
    "will be processed within a minute by the background worker; its new emails then appear under Emails."
)


def processable(mailbox: Mailbox, profile) -> Mailbox:
    """`mailbox` as Test & Enable leaves it: enabled for incoming, approved, on `profile`."""
    Mailbox.objects.filter(pk=mailbox.pk).update(
        server_profile=profile,
        incoming_method=IncomingMethod.SERVER_SIDE_SYNC,
        enabled_incoming=True,
        approval_status=ApprovalStatus.APPROVED,
    )
    return Mailbox.objects.get(pk=mailbox.pk)


def section(response) -> str:
    found = re.search(
        r'<section class="form-section" aria-labelledby="section-processing">.*?</section>',
        response.content.decode(),
        re.S,
    )
    return found.group(0) if found else ""


@pytest.fixture
def mailbox(make_user, profile):
    return processable(make_user(full_name="Alice Example").mailbox, profile)


def test_the_section_shows_where_processing_stands(sysadmin_client, mailbox, make_email):
    MailboxSync.objects.create(
        mailbox=mailbox,
        last_sync_on=datetime(2026, 12, 4, 16, 30, tzinfo=UTC),
        next_poll_on=datetime(2026, 12, 4, 16, 35, tzinfo=UTC),
        consecutive_failures=2,
        last_error="The server did not answer in 30 seconds.",
    )
    for _ in range(3):
        make_email(mailbox)

    html = section(sysadmin_client.get(f"/mailboxes/{mailbox.pk}/"))

    assert "<dt>Last Sync</dt><dd>4 Dec 2026 16:30 UTC</dd>" in html
    assert "<dt>Next Poll</dt><dd>4 Dec 2026 16:35 UTC</dd>" in html
    assert f'<dt>Emails Recorded</dt><dd><a href="/emails/?mailbox={mailbox.pk}">3</a></dd>' in html
    assert "<dt>Last Error</dt><dd>The server did not answer in 30 seconds.</dd>" in html
    assert "<dt>Consecutive Failures</dt><dd>2</dd>" in html
    assert ">Process Now</button>" in html


def test_a_mailbox_never_synced_says_so(sysadmin_client, mailbox):
    html = section(sysadmin_client.get(f"/mailboxes/{mailbox.pk}/"))
    assert "<dt>Last Sync</dt><dd>Never</dd>" in html
    assert "<dt>Consecutive Failures</dt><dd>0</dd>" in html
    assert f'<a href="/emails/?mailbox={mailbox.pk}">0</a>' in html


def test_the_count_stops_at_a_bound(sysadmin_client, mailbox, make_email, monkeypatch):
    monkeypatch.setattr(processing, "COUNTED_UP_TO", 2)
    for _ in range(3):
        make_email(mailbox)
    assert ">more than 2</a>" in section(sysadmin_client.get(f"/mailboxes/{mailbox.pk}/"))


def test_a_forward_mailbox_counts_the_emails_it_forwarded(
    sysadmin_client, make_forward_mailbox, make_user, make_email
):
    forward = make_forward_mailbox()
    make_email(make_user().mailbox, forward_mailbox=forward)

    html = section(sysadmin_client.get(f"/mailboxes/{forward.pk}/"))

    assert f'<dt>Emails Forwarded</dt><dd><a href="/emails/?forwarded={forward.pk}">1</a></dd>' in html


def test_a_mailbox_that_is_not_processed_says_why_instead_of_the_button(sysadmin_client, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(enabled_incoming=False)

    html = section(sysadmin_client.get(f"/mailboxes/{mailbox.pk}/"))

    assert "Not processed: it is not enabled for incoming email (run Test &amp; Enable Mailbox)." in html
    assert "Process Now" not in html


@pytest.mark.parametrize("role_client", ["sysadmin_client", "manager_client"])
def test_process_now_makes_the_mailbox_due(request, role_client, mailbox):
    client = request.getfixturevalue(role_client)
    before = timezone.now()

    response = client.post(f"/mailboxes/{mailbox.pk}/process-now/", follow=True)

    assert response.redirect_chain == [(f"/mailboxes/{mailbox.pk}/", 302)]
    assert page_messages(response) == [f"“Alice Example” {PROCESSED_SOON}"]
    assert before <= MailboxSync.objects.get(mailbox=mailbox).next_poll_on <= timezone.now()


def test_process_now_keeps_what_the_sync_knows(sysadmin_client, mailbox):
    MailboxSync.objects.create(mailbox=mailbox, consecutive_failures=4, last_error="Timed out.")
    sysadmin_client.post(f"/mailboxes/{mailbox.pk}/process-now/")
    sync = MailboxSync.objects.get(mailbox=mailbox)
    assert (sync.consecutive_failures, sync.last_error) == (4, "Timed out.")
    assert sync.next_poll_on is not None


def test_process_now_refuses_a_mailbox_that_is_not_processed(sysadmin_client, mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(state=Mailbox.State.INACTIVE)

    response = sysadmin_client.post(f"/mailboxes/{mailbox.pk}/process-now/", follow=True)

    assert page_messages(response) == ["“Alice Example” is not processed: the mailbox is inactive."]
    assert not MailboxSync.objects.filter(mailbox=mailbox).exists()


def test_read_only_users_get_no_button_and_403(readonly_client, mailbox):
    html = section(readonly_client.get(f"/mailboxes/{mailbox.pk}/"))
    assert "<dt>Emails Recorded</dt>" in html
    assert "Process Now" not in html

    assert readonly_client.post(f"/mailboxes/{mailbox.pk}/process-now/").status_code == 403
    assert not MailboxSync.objects.filter(mailbox=mailbox).exists()


def test_anonymous_visitors_cannot_process(client, mailbox):
    response = client.post(f"/mailboxes/{mailbox.pk}/process-now/")
    assert response.headers["Location"].startswith("/accounts/login/")
    assert not MailboxSync.objects.filter(mailbox=mailbox).exists()


def test_process_now_needs_the_csrf_token(sysadmin, mailbox):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(sysadmin)

    assert client.post(f"/mailboxes/{mailbox.pk}/process-now/").status_code == 403
    assert not MailboxSync.objects.filter(mailbox=mailbox).exists()


def test_process_now_is_post_only(sysadmin_client, mailbox):
    assert sysadmin_client.get(f"/mailboxes/{mailbox.pk}/process-now/").status_code == 405
    assert sysadmin_client.post("/mailboxes/999999/process-now/").status_code == 404
