"""Bulk edits from /mailboxes/ (issue 16), in real Chromium: tick rows, Set Server
Profile…, choose the profile, and read the per-record result."""

import re

import pytest
from playwright.sync_api import expect

from mailboxes.models import Mailbox
from mailboxes.services.mailboxes import mailbox_save
from serverprofiles.models import ServerType
from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_manager_sets_a_server_profile_on_selected_rows_and_sees_the_result(
    browser_page, manager, make_user, profile, make_profile, screenshots
):
    page = browser_page
    target = make_profile(name="Target IMAP")
    exchange = make_profile(
        name="Contoso Exchange",
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )
    mailboxes = []
    for name in ("ann", "ben"):
        mailbox = make_user(name).mailbox
        mailbox.server_profile = profile
        mailboxes.append(mailbox_save(mailbox))
    carol = make_user("carol").mailbox
    carol.server_profile, carol.act_method = exchange, "server-side-sync"  # an IMAP profile refuses it (M8)
    carol = mailbox_save(carol)
    sign_in(page, "manager")

    for mailbox in [*mailboxes, carol]:
        page.get_by_label(f"Select {mailbox.name}", exact=True).check()
    page.get_by_role("button", name="Set Server Profile…").click()

    expect(page.get_by_role("heading", name=re.compile("Set Server Profile"))).to_contain_text(
        "3 mailboxes selected"
    )
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=screenshots / "bulk-set-server-profile-390.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_label("Server Profile", exact=True).select_option(label="Target IMAP")
    page.get_by_role("button", name="Apply to 3 mailboxes").click()

    expect(page.get_by_role("status")).to_have_text("2 changed, 1 refused.")
    refused = page.get_by_role("table").get_by_role("row").filter(has_text="carol@example.test")
    expect(refused).to_contain_text("cannot use Server-Side Synchronization with a POP3/SMTP or IMAP/SMTP")
    page.screenshot(path=screenshots / "bulk-set-server-profile-result-1280.png", full_page=True)
    assert Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes], server_profile=target).count() == 2
    assert Mailbox.objects.get(pk=carol.pk).server_profile == exchange
    refused.get_by_role("link", name="carol@example.test").click()
    expect(page).to_have_url(re.compile(rf"/mailboxes/{carol.pk}/$"))
    assert page.console_errors == []
