"""Test Connection in real Chromium: the page says "Testing…" while a worker has not run
the test, then shows the result without being reloaded; without JavaScript, a link leads
to the result."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from serverprofiles.models import ProfileConnectionTest
from tests.test_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def database_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def run_worker() -> None:
    call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0", verbosity=0)


def test_test_connection_shows_testing_then_the_result_without_a_reload(
    browser_page, sysadmin, make_test_server_profile, database_tasks
):
    page = browser_page
    profile = make_test_server_profile(name="Loop IMAP")
    sign_in(page)
    page.goto(profile.get_absolute_url())

    page.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Test Connection: Testing…")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")
    assert ProfileConnectionTest.objects.get().status == "pending"

    run_worker()  # a worker process would, meanwhile

    expect(page.get_by_text("Test Connection, incoming:")).to_be_visible()
    expect(page.get_by_text("Test Connection, outgoing:")).to_be_visible()
    expect(page.get_by_text("Test Connection: Testing…")).to_have_count(0)
    assert page.evaluate("window.stillTheSamePage") is True  # shown without a reload
    expect(page.get_by_label("Name", exact=True)).to_have_value("Loop IMAP")  # the form stays as it was
    assert page.console_errors == []  # no script errors, no Content-Security-Policy violations


def test_without_javascript_a_link_leads_to_the_result(
    chromium, live_server, sysadmin, make_test_server_profile, database_tasks
):
    profile = make_test_server_profile()
    context = chromium.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    try:
        sign_in(page)
        page.goto(profile.get_absolute_url())
        page.get_by_role("button", name="Test Connection").click()
        run_worker()
        page.get_by_role("link", name="see the result").click()
        expect(page.get_by_text("Test Connection, incoming:")).to_be_visible()
    finally:
        context.close()
