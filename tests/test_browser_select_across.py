""" "Select all N mailboxes that match" on /mailboxes/, in real Chromium: tick the page,
choose every mailbox the search matches (more than a page), and Set Server Profile… on
all of them; unticking a row goes back to the ticked rows."""

import re

import pytest
from playwright.sync_api import expect

from mailboxes.models import Mailbox
from mailboxes.tests.test_views_bulk_select_across import bulk_user_mailboxes
from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_manager_sets_a_server_profile_on_every_mailbox_that_matches(
    browser_page, manager, profile, make_profile, screenshots
):
    page = browser_page
    target = make_profile(name="Target IMAP")
    matching = bulk_user_mailboxes("agent", 60, server_profile=profile)
    bystanders = bulk_user_mailboxes("bystander", 3, server_profile=profile)
    sign_in(page, "manager")
    page.goto("/mailboxes/?view=all&q=agent")

    bar = page.locator("[data-select-across]")
    expect(bar).to_be_hidden()
    page.get_by_label("Select all mailboxes on this page").check()
    expect(bar).to_contain_text("All 50 mailboxes on this page are selected.")
    page.get_by_role("button", name="Select all 60 mailboxes that match").click()
    expect(bar).to_contain_text("All 60 mailboxes that match are selected.")
    expect(page.get_by_role("button", name="Test & Enable Mailbox")).to_be_disabled()
    page.screenshot(path=screenshots / "mailboxes-select-all-that-match-1280.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=screenshots / "mailboxes-select-all-that-match-390.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    # Unticking a row: back to the ticked rows of the page.
    page.get_by_label("Select agent 0", exact=True).uncheck()
    expect(bar).to_be_hidden()
    expect(page.locator('input[name="select_across"]')).to_have_value("0")
    expect(page.get_by_role("button", name="Test & Enable Mailbox")).to_be_enabled()
    page.get_by_label("Select agent 0", exact=True).check()
    page.get_by_role("button", name="Select all 60 mailboxes that match").click()

    page.get_by_role("button", name="Set Server Profile…").click()
    expect(page.get_by_role("heading", name=re.compile("Set Server Profile"))).to_contain_text(
        "60 mailboxes selected"
    )
    page.get_by_label("Server Profile", exact=True).select_option(label="Target IMAP")
    page.get_by_role("button", name="Apply to 60 mailboxes").click()

    expect(page.get_by_role("status")).to_have_text("60 changed, 0 refused.")
    assert Mailbox.objects.filter(pk__in=[m.pk for m in matching], server_profile=target).count() == 60
    assert Mailbox.objects.filter(pk__in=[m.pk for m in bystanders], server_profile=profile).count() == 3
    assert page.console_errors == []


def test_a_page_holding_every_match_offers_no_more(browser_page, manager, profile):
    page = browser_page
    bulk_user_mailboxes("agent", 3, server_profile=profile)
    sign_in(page, "manager")
    page.goto("/mailboxes/?view=all&q=agent")
    page.get_by_label("Select all mailboxes on this page").check()
    bar = page.locator("[data-select-across]")
    expect(bar).to_contain_text("All 3 mailboxes on this page are selected.")
    page.wait_for_load_state("networkidle")  # the count has come back
    expect(page.get_by_role("button", name=re.compile("that match"))).to_be_hidden()
    assert page.console_errors == []
