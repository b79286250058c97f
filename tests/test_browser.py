"""An administrator's day in real Chromium: sign in, a server profile, a forward mailbox
with a rule violation and its fix, an edit, and the mailbox found again in the list.

Screenshots of the form and of the list are saved to artifacts/.
"""

import re

import pytest
from playwright.sync_api import expect

from mailboxes.models import Mailbox
from serverprofiles.models import EmailServerProfile

# The live server runs in another thread: the database is committed for real, and
# serialized_rollback restores the data migration's groups afterwards.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "Correct-Horse-9"
MAILBOX_SECRET = "Browser-Secret-31"


def sign_in(page, username="sysadmin"):
    page.goto("/mailboxes/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/mailboxes/$"))
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/mailboxes/$"))


def field_row(page, name):
    return page.locator(f'[data-field="{name}"]')


def test_administrator_sets_up_a_forward_mailbox(browser_page, sysadmin, artifacts):
    page = browser_page
    sign_in(page)
    expect(page.get_by_role("heading", name="Mailboxes")).to_be_visible()

    # A server profile: only the fields that apply to IMAP/SMTP are offered.
    page.get_by_role("link", name="Server Profiles").click()
    page.get_by_role("link", name="New Server Profile").click()
    page.get_by_label("Name", exact=True).fill("Contoso IMAP")
    page.get_by_label("Email Server Type", exact=True).select_option(label="IMAP/SMTP")
    expect(page.get_by_label("Auto Discover Server Location", exact=True)).to_be_hidden()
    expect(page.get_by_label("User Name (incoming)", exact=True)).to_be_hidden()
    page.get_by_label("Incoming Server Location", exact=True).fill("imap.contoso.test")
    page.get_by_label("Outgoing Server Location", exact=True).fill("smtp.contoso.test")
    page.get_by_label("Authenticate Using (incoming)", exact=True).select_option(
        label="Credentials Specified in Email Server Profile"
    )
    expect(page.get_by_label("User Name (incoming)", exact=True)).to_be_visible()
    page.get_by_label("Authenticate Using (incoming)", exact=True).select_option(
        label="Credentials Specified by a User or Queue"
    )
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The email server profile “Contoso IMAP” was created.")).to_be_visible()
    page.screenshot(path=str(artifacts / "profile-form.png"), full_page=True)
    profile = EmailServerProfile.objects.get(name="Contoso IMAP")
    assert (profile.incoming_port, profile.outgoing_port) == (993, 465)  # filled on save

    # New Forward Mailbox, first without the server profile a forward mailbox must have.
    page.get_by_role("link", name="Mailboxes", exact=True).click()
    page.get_by_role("link", name="New Forward Mailbox").click()
    expect(page.get_by_role("heading", name="New Forward Mailbox")).to_be_visible()
    for section in ["General", "Credentials", "Synchronization Method", "Configuration Test Results"]:
        expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Browser forward box")
    page.get_by_label("Email address", exact=True).fill("fwd-browser@contoso.test")
    expect(page.get_by_label("Allow to Use Credentials for Email Processing", exact=True)).to_be_hidden()
    expect(page.get_by_label("Regarding", exact=True)).to_be_disabled()
    expect(page.get_by_label("Is Forward Mailbox", exact=True)).to_have_value("Yes")
    page.get_by_label("Incoming Email", exact=True).select_option(
        label="Server-Side Synchronization or Email Router"
    )
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("Nothing was saved.")).to_be_visible()
    expect(field_row(page, "server_profile").locator(".field__errors")).to_have_text(
        "A forward mailbox must have a server profile."
    )
    assert not Mailbox.objects.filter(email="fwd-browser@contoso.test").exists()

    # The fix.
    page.get_by_label("Server Profile", exact=True).select_option(label="Contoso IMAP")
    expect(page.get_by_label("Allow to Use Credentials for Email Processing", exact=True)).to_be_visible()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The forward mailbox “Browser forward box” was created.")).to_be_visible()
    mailbox = Mailbox.objects.get(email="fwd-browser@contoso.test")
    expect(page).to_have_url(re.compile(rf"/mailboxes/{mailbox.pk}/$"))
    assert (mailbox.kind, mailbox.outgoing_method, mailbox.owner) == ("forward", "none", sysadmin)
    page.screenshot(path=str(artifacts / "mailbox-form.png"), full_page=True)

    # Edit: the mailbox's own credentials, then Save & Close.
    page.get_by_label("Allow to Use Credentials for Email Processing", exact=True).check()
    page.get_by_label("User Name", exact=True).fill("fwd-browser")
    page.get_by_label("Password", exact=True).fill(MAILBOX_SECRET)
    page.get_by_label("Delete Emails After Processing", exact=True).check()
    page.get_by_role("button", name="Save & Close", exact=True).click()
    expect(page).to_have_url(re.compile(r"/mailboxes/$"))
    expect(page.get_by_text("The mailbox “Browser forward box” was saved.")).to_be_visible()
    mailbox.refresh_from_db()
    assert mailbox.get_password() == MAILBOX_SECRET
    assert mailbox.delete_after_processing
    assert MAILBOX_SECRET not in page.content()

    # Find it in the list by searching its address.
    page.get_by_label("Search", exact=True).fill("fwd-browser@")
    page.get_by_label("Search", exact=True).press("Enter")
    expect(page).to_have_url(re.compile(r"q=fwd-browser%40"))
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Browser forward box")
    expect(rows.first).to_contain_text("fwd-browser@contoso.test")
    expect(rows.first).to_contain_text("Contoso IMAP")
    page.screenshot(path=str(artifacts / "mailbox-list.png"), full_page=True)

    # Open it again from the list: the password is set, and not shown.
    rows.first.get_by_role("link", name="Browser forward box").click()
    expect(field_row(page, "password")).to_contain_text("A password is set.")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")

    assert page.console_errors == []  # no script errors, no Content-Security-Policy violations


def test_the_mailbox_form_works_without_javascript(chromium, live_server, sysadmin, make_profile):
    """Without JavaScript every field is shown, and the server's validation decides."""
    make_profile(name="Plain IMAP")
    context = chromium.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    try:
        sign_in(page)
        page.goto("/mailboxes/new-forward/")
        expect(page.get_by_label("Allow to Use Credentials for Email Processing", exact=True)).to_be_visible()
        page.get_by_label("Name", exact=True).fill("No script box")
        page.get_by_label("Email address", exact=True).fill("noscript@contoso.test")
        page.get_by_label("Server Profile", exact=True).select_option(label="Plain IMAP")
        page.get_by_role("button", name="Save & Close", exact=True).click()
        expect(page).to_have_url(re.compile(r"/mailboxes/$"))
        assert Mailbox.objects.filter(email="noscript@contoso.test", kind="forward").exists()
    finally:
        context.close()


def test_selected_rows_are_deactivated_from_the_list(browser_page, sysadmin, make_forward_mailbox):
    page = browser_page
    first = make_forward_mailbox(name="Row one")
    make_forward_mailbox(name="Row two")
    sign_in(page)
    page.goto("/mailboxes/?view=forward")
    page.get_by_label("Select Row one", exact=True).check()
    page.get_by_role("button", name="Deactivate", exact=True).click()
    expect(page.get_by_text("1 mailbox deactivated.")).to_be_visible()
    first.refresh_from_db()
    assert not first.is_active
    page.get_by_label("Select all mailboxes on this page").check()
    expect(page.get_by_label("Select Row two", exact=True)).to_be_checked()
    assert page.console_errors == []
