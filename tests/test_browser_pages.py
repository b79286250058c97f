"""The pages as an administrator expects them (issue 16), in real Chromium: who is signed
in, the choices each form offers, errors that are seen, phones, Test & Enable results
that arrive by themselves, messages that say what to do, and the first-run guide.

Screenshots of the main pages at 1280 and 390 pixels wide go to artifacts/screenshots/.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_user_page_names_the_signed_in_user_not_the_edited_one(browser_page, sysadmin, make_user):
    page = browser_page
    alice = make_user(username="alice", full_name="Alice Example")
    sign_in(page)
    page.goto(f"/users/{alice.pk}/")
    expect(page.get_by_role("heading", name=re.compile("Alice Example"))).to_be_visible()
    expect(page.locator(".topbar__user")).to_have_text(sysadmin.get_short_name())
    expect(page.get_by_role("navigation", name="Sections").get_by_role("link", name="Users")).to_be_visible()
    assert page.console_errors == []
