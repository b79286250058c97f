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
    owner = page.get_by_role("combobox", name="Owner", exact=True)
    expect(owner).to_have_value("sysadmin")  # a new queue's owner: whoever creates it
    expect(owner).to_have_attribute("aria-expanded", "false")

    owner.fill("")
    owner.press_sequentially("Bob A")  # a full name's start
    listbox = page.get_by_role("listbox", name="Owner suggestions")
    options = listbox.get_by_role("option")
    expect(options).to_have_count(1)
    expect(options.first).to_have_text("bob Bob Alison · bob@contoso.test")
    expect(owner).to_have_attribute("aria-expanded", "true")
    expect(owner).to_have_attribute("aria-controls", "id_owner_listbox")
    expect(page.get_by_role("status").filter(has_text="1 user found")).to_be_attached()

    owner.fill("")
    owner.press_sequentially("ali")  # a user name's start (and an address's)
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("alice")
    page.screenshot(path=str(artifacts / "owner-picker.png"))

    owner.press("ArrowDown")  # the keyboard chooses: no mouse needed
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(owner).to_have_attribute("aria-activedescendant", "id_owner_listbox_0")
    owner.press("Enter")  # takes the suggestion; does not submit the form
    expect(owner).to_have_value("alice")
    expect(listbox).to_be_hidden()
    expect(owner).to_have_attribute("aria-expanded", "false")
    expect(page).to_have_url(re.compile(r"/queues/new/$"))

    page.get_by_label("Name", exact=True).fill("Support")
    page.get_by_label("Incoming Email", exact=True).fill("support@contoso.test")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The queue “Support” and its mailbox were created.")).to_be_visible()
    assert Queue.objects.get(name="Support").owner.username == "alice"
    assert page.console_errors == []


def test_owner_picker_is_used_with_the_keyboard_alone(browser_page, sysadmin, make_user, org):
    make_user(username="alice", full_name="Alice Example", email="alice@contoso.test")
    make_user(username="alina", full_name="Alina Other", email="alina@fabrikam.test")
    page = browser_page
    sign_in(page)
    page.goto("/queues/new/")
    owner = page.get_by_role("combobox", name="Owner", exact=True)
    owner.fill("")
    owner.press_sequentially("ali")
    options = page.get_by_role("listbox", name="Owner suggestions").get_by_role("option")
    expect(options).to_have_count(2)
    expect(options.nth(0)).to_contain_text("alice")
    expect(options.nth(1)).to_contain_text("alina")

    def active():
        return owner.get_attribute("aria-activedescendant")

    owner.press("ArrowDown")
    assert active() == "id_owner_listbox_0"
    owner.press("ArrowDown")
    assert active() == "id_owner_listbox_1"
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(options.nth(0)).to_have_attribute("aria-selected", "false")
    owner.press("ArrowDown")  # wraps to the first
    assert active() == "id_owner_listbox_0"
    owner.press("ArrowUp")  # and back to the last
    assert active() == "id_owner_listbox_1"

    owner.press("Escape")  # closes the list, keeps what was typed
    expect(owner).to_have_attribute("aria-expanded", "false")
    assert active() is None
    expect(owner).to_have_value("ali")
    expect(owner).to_be_focused()

    owner.press("ArrowDown")  # opens it again on the first suggestion
    expect(owner).to_have_attribute("aria-expanded", "true")
    assert active() == "id_owner_listbox_0"
    options.nth(1).click()  # the mouse works too, and focus stays in the input
    expect(owner).to_have_value("alina")
    expect(owner).to_be_focused()
    expect(owner).to_have_attribute("aria-expanded", "false")
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
