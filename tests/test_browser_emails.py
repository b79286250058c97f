"""/emails/, /emails/<id>/, /alerts/ and Process Now in real Chromium: on a phone nothing
scrolls sideways, whatever the mail holds; the pages lead from one to the other."""

import re

import pytest
from playwright.sync_api import expect

from mailboxes.models import Mailbox, MailboxAlert, MailboxSync
from tests.test_browser import sign_in
from tests.test_browser_pages import PHONE, no_sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LONG = "averyveryverylongaddresswithoutanyspaces" * 2


def test_on_a_phone_the_email_and_alert_pages_never_scroll_sideways(
    browser_page, sysadmin, make_user, make_forward_mailbox, profile, make_email, screenshots
):
    page = browser_page
    alice = make_user(username="alice", full_name="Alice Example")
    forward = make_forward_mailbox(name="Collector for the whole organisation")
    email = make_email(
        alice.mailbox,
        subject="A subject that goes on " * 8 + LONG,
        from_address=f"Someone <{LONG}@sender.test>",
        to=f"{LONG}@example.test, other@example.test",
        text="A line of text " * 40 + LONG,
        attachments=[(f"{LONG}.pdf", "application/pdf", b"%PDF")],
        forward_mailbox=forward,
    )
    MailboxAlert.objects.create(mailbox=alice.mailbox, severity="error", message=f"Could not sign in {LONG}")
    MailboxAlert.objects.create(profile=profile, severity="warning", message="Slow to answer.")
    sign_in(page)
    page.set_viewport_size(PHONE)

    for name, url in {
        "emails": "/emails/",
        "email": email.get_absolute_url(),
        "alerts": "/alerts/",
        "user-mailbox-processing": alice.mailbox.get_absolute_url(),
    }.items():
        page.goto(url)
        assert no_sideways_scroll(page), name
        page.screenshot(path=str(screenshots / f"{name}-390.png"), full_page=True)
    assert page.console_errors == []


def test_from_the_mailbox_to_its_emails_and_process_now(
    browser_page, sysadmin, make_user, profile, make_email
):
    page = browser_page
    alice = make_user(username="alice", full_name="Alice Example")
    Mailbox.objects.filter(pk=alice.mailbox.pk).update(
        server_profile=profile,
        incoming_method="server-side-sync",
        enabled_incoming=True,
        approval_status="approved",
    )
    make_email(alice.mailbox, subject="<b>Not bold</b>", text="<script>document.title='owned'</script>Hi")
    sign_in(page)

    page.goto(alice.mailbox.get_absolute_url())
    processing = page.locator("section", has=page.get_by_role("heading", name="Mail Processing"))
    processing.get_by_role("link", name="1").click()
    expect(page.get_by_role("heading", name=re.compile("Emails"))).to_be_visible()
    expect(page.locator(".filter-chip")).to_contain_text("Alice Example")

    page.get_by_role("link", name="<b>Not bold</b>").click()
    expect(page.locator(".email-text")).to_contain_text("<script>document.title='owned'</script>Hi")
    assert "owned" not in page.title()
    expect(page.get_by_role("link", name="Download Raw Message")).to_be_visible()

    page.goto(alice.mailbox.get_absolute_url())
    page.get_by_role("button", name="Process Now").click()
    expect(page.locator(".messages")).to_contain_text(
        "will be processed within a minute by the background worker"
    )
    assert MailboxSync.objects.get(mailbox=alice.mailbox).next_poll_on is not None
    assert page.console_errors == []
