"""The owner picker and the mailbox list's "contains" search, in real Chromium."""

import re

import pytest
from playwright.sync_api import expect

from mailboxes.models import Queue
from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_owner_picker_suggests_users_as_one_types(browser_page, sysadmin, make_user, org, artifacts):
    make_user(username="alice", full_name="Alice Example", email="alice@contoso.test")
    make_user(username="alan", full_name="Alan Other", email="alan@fabrikam.test")
    make_user(username="bob", full_name="Bob Alison", email="bob@contoso.test")
    page = browser_page
    sign_in(page)
    page.goto("/queues/new/")
    owner = page.get_by_label("Owner", exact=True)
    expect(owner).to_have_value("sysadmin")  # a new queue's owner: whoever creates it

    owner.fill("")
    owner.press_sequentially("Bob A")  # a full name's start
    options = page.locator("#id_owner_options option")
    expect(options.first).to_have_attribute("value", "bob")
    expect(options).to_have_count(1)
    expect(options.first).to_have_text("Bob Alison · bob@contoso.test")

    owner.fill("")
    owner.press_sequentially("ali")  # a user name's start (and an address's)
    expect(options.first).to_have_attribute("value", "alice")
    expect(options).to_have_count(1)
    page.screenshot(path=str(artifacts / "owner-picker.png"))

    owner.fill("alice")  # what choosing the suggestion puts in the input
    page.get_by_label("Name", exact=True).fill("Support")
    page.get_by_label("Incoming Email", exact=True).fill("support@contoso.test")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The queue “Support” and its mailbox were created.")).to_be_visible()
    assert Queue.objects.get(name="Support").owner.username == "alice"
    assert page.console_errors == []


def test_a_domain_search_finds_its_mailboxes(browser_page, sysadmin, make_user, org, artifacts):
    make_user(username="alice", full_name="Alice Example", email="alice@contoso.test")
    make_user(username="bob", full_name="Bob Builder", email="bob@fabrikam.test")
    make_user(username="carol", full_name="Carol Jones", email="carol@contoso.test")
    page = browser_page
    sign_in(page)
    page.get_by_label("Search", exact=True).fill("@contoso.test")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r"q=%40contoso\.test"))
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("alice@contoso.test")
    expect(rows.nth(1)).to_contain_text("carol@contoso.test")
    expect(page.get_by_text("bob@fabrikam.test")).to_have_count(0)
    page.screenshot(path=str(artifacts / "mailbox-domain-search.png"))
    assert page.console_errors == []
