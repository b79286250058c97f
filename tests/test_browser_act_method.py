"""M8 in real Chromium: Appointments, Contacts, and Tasks offers Server-Side
Synchronization only while the chosen server profile is an Exchange type, also when the
user picks another profile on the form (act_method.js), on the mailbox form and on the
email settings page."""

import pytest
from playwright.sync_api import expect

from mailboxes.models import Mailbox, OrganizationSettings
from mailboxes.services.mailboxes import mailbox_save
from serverprofiles.models import ServerType
from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ACT = "Appointments, Contacts, and Tasks"
SYNC = "Server-Side Synchronization"


def offered(page, label) -> list[str]:
    return page.get_by_label(label, exact=True).locator("option:not([disabled])").all_inner_texts()


@pytest.fixture
def exchange(make_profile):
    return make_profile(
        name="Contoso Exchange",
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )


def test_the_mailbox_form_offers_server_side_synchronization_only_with_an_exchange_profile(
    browser_page, sysadmin, make_user, profile, exchange
):
    page = browser_page
    mailbox = make_user("alice").mailbox
    mailbox.server_profile = profile
    mailbox = mailbox_save(mailbox)
    sign_in(page)
    page.goto(mailbox.get_absolute_url())
    assert offered(page, ACT) == ["None", "Outlook"]

    page.get_by_label("Server Profile", exact=True).select_option(label="Contoso Exchange")
    assert offered(page, ACT) == ["None", "Outlook", SYNC]
    page.get_by_label(ACT, exact=True).select_option(label=SYNC)

    # Back to the IMAP profile: the method it does not allow gives way to None.
    page.get_by_label("Server Profile", exact=True).select_option(label="Contoso IMAP")
    assert offered(page, ACT) == ["None", "Outlook"]
    expect(page.get_by_label(ACT, exact=True)).to_have_value("none")

    page.get_by_label("Server Profile", exact=True).select_option(label="Contoso Exchange")
    page.get_by_label(ACT, exact=True).select_option(label=SYNC)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The mailbox “Alice” was saved.")).to_be_visible()
    mailbox = Mailbox.objects.get(pk=mailbox.pk)
    assert (mailbox.server_profile, mailbox.act_method) == (exchange, "server-side-sync")
    assert page.console_errors == []


def test_the_email_settings_default_appointments_follow_the_default_profile(
    browser_page, sysadmin, profile, exchange
):
    page = browser_page
    sign_in(page)
    page.goto("/settings/email/")
    profile_select = page.get_by_label("Server Profile", exact=True)
    assert offered(page, ACT) == ["None", "Outlook", SYNC]  # no default profile yet

    profile_select.select_option(label="Contoso IMAP")
    assert offered(page, ACT) == ["None", "Outlook"]
    profile_select.select_option(label="Contoso Exchange")
    page.get_by_label(ACT, exact=True).select_option(label=SYNC)
    profile_select.select_option(label="Contoso IMAP")
    expect(page.get_by_label(ACT, exact=True)).to_have_value("none")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The email settings were saved.")).to_be_visible()
    settings = OrganizationSettings.load()
    assert (settings.default_server_profile, settings.default_act) == (profile, "none")
    assert page.console_errors == []
