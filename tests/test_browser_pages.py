"""The pages as an administrator expects them (issue 16), in real Chromium: who is signed
in, the choices each form offers, errors that are seen, phones, Test & Enable results
that arrive by themselves, messages that say what to do, and the first-run guide.

Screenshots of the main pages at 1280 and 390 pixels wide go to artifacts/screenshots/.
"""

import re

import pytest
from playwright.sync_api import expect

from mailboxes.models import Mailbox, MailboxAlert
from tests.fixtures.ui import field_errors, page_form_data
from tests.test_browser import sign_in
from tests.test_browser_connection_test import run_worker

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


def offered(page, label) -> list[str]:
    return page.get_by_label(label, exact=True).locator("option").all_inner_texts()


SSYNC = "Server-Side Synchronization or Email Router"


def test_each_kind_of_mailbox_is_offered_only_the_methods_its_rules_allow(
    browser_page, sysadmin, make_user, make_queue, make_forward_mailbox
):
    page = browser_page
    forward = make_forward_mailbox(name="Collector")
    queue = make_queue(name="Support")
    user = make_user(username="alice")
    sign_in(page)

    for url in ("/mailboxes/new-forward/", forward.get_absolute_url()):  # M3, M4
        page.goto(url)
        assert offered(page, "Incoming Email") == ["None", SSYNC]
        assert offered(page, "Outgoing Email") == ["None"]
        assert offered(page, "Appointments, Contacts, and Tasks") == ["None"]

    page.goto(queue.mailbox.get_absolute_url())  # M9, M10
    assert offered(page, "Incoming Email") == ["None", SSYNC, "Forward Mailbox"]
    assert offered(page, "Outgoing Email") == ["None", SSYNC]
    assert offered(page, "Appointments, Contacts, and Tasks") == ["None"]

    page.goto(user.mailbox.get_absolute_url())  # a user mailbox may use each one
    assert offered(page, "Incoming Email") == ["None", "Outlook", SSYNC, "Forward Mailbox"]
    assert offered(page, "Outgoing Email") == ["None", "Outlook", SSYNC]
    assert offered(page, "Appointments, Contacts, and Tasks") == [
        "None",
        "Outlook",
        "Server-Side Synchronization",
    ]
    assert page.console_errors == []


def test_a_forbidden_method_sent_anyway_is_refused_by_the_server(sysadmin_client, make_queue):
    """The drop-down is a convenience: the model's rule still decides (M10)."""
    mailbox = make_queue().mailbox
    before = mailbox.outgoing_method
    data = page_form_data(sysadmin_client, mailbox.get_absolute_url(), outgoing_method="outlook")
    response = sysadmin_client.post(mailbox.get_absolute_url(), data)
    assert field_errors(response, "outgoing_method") == [
        "A queue mailbox's Outgoing Email must be None or Server-Side Synchronization or Email Router."
    ]
    mailbox.refresh_from_db()
    assert mailbox.outgoing_method == before


ERROR_RED = "rgb(179, 38, 30)"  # --bad in app.css


def test_a_refused_save_marks_the_field_in_red_and_focuses_the_error_summary(browser_page, sysadmin, profile):
    page = browser_page
    sign_in(page)
    page.goto("/mailboxes/new-forward/")
    page.get_by_label("Email address", exact=True).fill("not an address")
    page.get_by_label("Server Profile", exact=True).select_option(label=profile.name)
    page.get_by_role("button", name="Save", exact=True).click()

    summary = page.locator(".form-errors")
    expect(summary).to_be_focused()
    email = page.get_by_label("Email address", exact=True)
    expect(email).to_have_css("border-top-color", ERROR_RED)
    expect(page.get_by_label("Name", exact=True)).to_have_css("border-top-color", ERROR_RED)
    expect(page.get_by_label("Server Profile", exact=True)).not_to_have_css("border-top-color", ERROR_RED)
    # The summary links each field in error; following a link puts the cursor in it.
    expect(summary.get_by_role("link")).to_have_text(["Name", "Email address"])
    summary.get_by_role("link", name="Email address").click()
    expect(email).to_be_focused()
    assert page.console_errors == []


PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_on_a_phone_nothing_scrolls_sideways_and_the_sections_fold(
    browser_page, sysadmin, make_user, make_forward_mailbox, profile, screenshots
):
    page = browser_page
    for n in range(3):
        make_user(username=f"someone.with.a.long.name{n}", full_name=f"Someone With A Long Name {n}")
    forward = make_forward_mailbox(name="Collector for the whole organisation")
    sign_in(page)
    page.set_viewport_size(PHONE)

    pages = {
        "mailbox-list": "/mailboxes/?view=all",
        "mailbox-form": forward.get_absolute_url(),
        "new-forward-mailbox": "/mailboxes/new-forward/",
        "profile-form": profile.get_absolute_url(),
        "new-profile": "/serverprofiles/new/",
    }
    for name, url in pages.items():
        page.goto(url)
        assert no_sideways_scroll(page), name
        page.screenshot(path=str(screenshots / f"{name}-390.png"), full_page=True)

    # Labels above their inputs: the input is as wide as the page allows, not squeezed.
    page.goto(forward.get_absolute_url())
    label = page.locator('label[for="id_name"]').bounding_box()
    name_input = page.get_by_label("Name", exact=True).bounding_box()
    assert name_input["y"] > label["y"] + label["height"] - 1
    assert name_input["width"] > 300

    # The list's table scrolls inside its frame.
    page.goto("/mailboxes/?view=all")
    frame = page.locator(".table-wrap").first
    assert frame.evaluate("element => element.scrollWidth > element.clientWidth")

    # The sections fold behind Menu.
    sections = page.get_by_role("navigation", name="Sections")
    expect(sections).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    sections.get_by_role("link", name="Server Profiles").click()
    expect(page.get_by_role("heading", name="Email Server Profiles")).to_be_visible()
    assert no_sideways_scroll(page)

    # A refused save on a phone: still no sideways scroll.
    page.goto("/mailboxes/new-forward/")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".form-errors")).to_be_focused()
    assert no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / "new-forward-mailbox-errors-390.png"), full_page=True)
    assert page.console_errors == []


def test_screenshots_of_the_main_pages_at_1280_and_390(
    browser_page, sysadmin, make_user, make_queue, make_forward_mailbox, profile, make_email, screenshots
):
    """For a reviewer: artifacts/screenshots/<page>-<width>.png (see README)."""
    page = browser_page
    user = make_user(username="alice", full_name="Alice Example")
    queue = make_queue(name="Support")
    forward = make_forward_mailbox(name="Collector")
    email = make_email(
        user.mailbox, subject="Quarterly report", attachments=[("report.pdf", "application/pdf", b"%PDF")]
    )
    make_email(queue.mailbox, subject="Where is my order?", forward_mailbox=forward)
    MailboxAlert.objects.create(mailbox=user.mailbox, severity="error", message="Authentication failed.")
    MailboxAlert.objects.create(profile=profile, severity="warning", message="The server was slow to answer.")
    sign_in(page)
    pages = {
        "mailbox-list": "/mailboxes/?view=all",
        "user-mailbox": user.mailbox.get_absolute_url(),
        "queue-mailbox": queue.mailbox.get_absolute_url(),
        "forward-mailbox": forward.get_absolute_url(),
        "profile-list": "/serverprofiles/",
        "profile-form": profile.get_absolute_url(),
        "users": "/users/",
        "user-form": user.get_absolute_url(),
        "queues": "/queues/",
        "email-settings": "/settings/email/",
        "emails": "/emails/",
        "email": email.get_absolute_url(),
        "alerts": "/alerts/",
    }
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        for name, url in pages.items():
            page.goto(url)
            assert no_sideways_scroll(page), (name, viewport)
            page.screenshot(path=str(screenshots / f"{name}-{viewport['width']}.png"), full_page=True)
    assert page.console_errors == []


@pytest.fixture
def database_tasks(settings):
    """Tasks wait in the database for a worker, as in production (not run at once)."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def test_test_and_enable_results_appear_at_the_top_without_a_reload(
    browser_page,
    sysadmin,
    make_test_server_profile,
    make_test_mailbox,
    no_approval_required,
    database_tasks,
    screenshots,
):
    page = browser_page
    mailbox = make_test_mailbox(make_test_server_profile(), password="Wrong-Password-1")
    sign_in(page)
    page.goto(mailbox.get_absolute_url())
    page.get_by_role("button", name="Test & Enable Mailbox").click()
    expect(page.get_by_text("Test & Enable scheduled: testing…")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")

    run_worker()  # a worker process would, meanwhile

    status = page.locator("#mailbox-status")
    expect(status.locator('[data-status="incoming"]')).to_have_text("Failure")
    expect(status.locator('[data-status="incoming"]')).to_have_css("color", ERROR_RED)
    expect(status.locator('[data-status="outgoing"]')).to_have_text(re.compile("Success|Failure"))
    expect(status.locator(".alert-banner--error")).to_contain_text("uthentication failed")
    expect(page.get_by_text("Test & Enable scheduled: testing…")).to_have_count(0)
    expect(page.get_by_label("Incoming Email Status", exact=True)).to_have_value("Failure")
    expect(page.get_by_label("Incoming Email Status", exact=True)).to_have_css("color", ERROR_RED)
    assert page.evaluate("window.stillTheSamePage") is True  # shown without a reload
    assert "Wrong-Password-1" not in page.content()
    page.screenshot(path=str(screenshots / "mailbox-test-result-1280.png"), full_page=True)

    # The form follows the version the test gave the mailbox: Save is not refused as stale.
    page.get_by_label("Name", exact=True).fill("Tested box")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The mailbox “Tested box” was saved.")).to_be_visible()
    assert page.console_errors == []


def test_messages_say_what_to_do(
    browser_page, sysadmin, make_test_server_profile, make_test_mailbox, make_forward_mailbox, org
):
    page = browser_page
    mailbox = make_test_mailbox(make_test_server_profile())  # pending approval (A2)
    other = make_forward_mailbox(name="Collector", email="collector@example.test")
    sign_in(page)
    page.goto(mailbox.get_absolute_url())
    page.get_by_role("button", name="Test & Enable Mailbox").click()

    # The approval failure names the command and who may run it, with one workload everywhere.
    banner = page.locator("#mailbox-status .alert-banner--error")
    expect(banner).to_contain_text("The email address requires approval. A System Administrator")
    expect(banner).to_contain_text("General")
    alerts = page.locator("#section-alerts").locator("..")
    expect(alerts.locator(".alert--error strong")).to_have_text(["General:"])
    expect(alerts.locator("tbody tr").first).to_contain_text("General")

    # A taken address links the mailbox that has it.
    page.get_by_label("Email address", exact=True).fill("Collector@example.test")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("link", name="Collector <collector@example.test>").click()
    expect(page).to_have_url(re.compile(rf"/mailboxes/{other.pk}/$"))
    assert page.console_errors == []


def test_deactivating_the_only_forward_mailbox_warns_first(
    browser_page, sysadmin, make_user, make_forward_mailbox, profile
):
    from mailboxes.services.mailboxes import mailbox_save

    page = browser_page
    forward = make_forward_mailbox(name="Collector")
    alice = make_user(username="alice", full_name="Alice Example").mailbox
    alice.server_profile, alice.incoming_method = profile, "forward-mailbox"
    mailbox_save(alice)
    sign_in(page)
    page.goto(forward.get_absolute_url())
    page.get_by_role("button", name="Deactivate", exact=True).click()

    expect(page.get_by_role("heading", name="Deactivate “Collector”?")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("this is the only active one")
    expect(page.get_by_role("link", name=f"Alice Example <{alice.email}>")).to_be_visible()
    forward.refresh_from_db()
    assert forward.is_active
    page.get_by_role("button", name="Deactivate", exact=True).click()
    expect(page.get_by_text("1 mailbox deactivated.")).to_be_visible()

    # Afterwards the mailbox that received through it says so, and how to fix it.
    page.goto(alice.get_absolute_url())
    expect(page.locator(".warning")).to_contain_text("no forward mailbox is active")
    expect(page.locator(".warning")).to_contain_text("activate the forward mailbox Collector")
    assert page.console_errors == []


def test_first_run_guide_leads_the_way_and_goes_once_done(browser_page, sysadmin, org, screenshots):
    page = browser_page
    sign_in(page)
    guide = page.get_by_role("region", name="Getting started")
    expect(guide).to_be_visible()
    expect(guide.get_by_role("listitem")).to_have_count(4)
    page.screenshot(path=str(screenshots / "first-run-1280.png"), full_page=True)

    # 1 and 2: a server profile, made the default; it is offered to the mailbox that has none.
    guide.get_by_role("link", name="Create a server profile").click()
    page.get_by_label("Name", exact=True).fill("Contoso IMAP")
    page.get_by_label("Email Server Type", exact=True).select_option(label="IMAP/SMTP")
    page.get_by_label("Incoming Server Location", exact=True).fill("imap.contoso.test")
    page.get_by_label("Outgoing Server Location", exact=True).fill("smtp.contoso.test")
    page.get_by_label("Set as default profile for new mailboxes", exact=True).check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("“Contoso IMAP” is now the default for new mailboxes.")).to_be_visible()
    page.get_by_role("button", name="Give It to Mailboxes Without a Profile").click()
    expect(page.get_by_text("given to the mailboxes that had none: 1 updated.")).to_be_visible()
    assert Mailbox.objects.get(pk=sysadmin.mailbox.pk).server_profile.name == "Contoso IMAP"

    page.get_by_role("link", name="Mailboxes", exact=True).click()
    expect(guide.locator(".guide__step--done")).to_have_count(2)
    expect(guide.get_by_role("link", name="Add users and queues")).to_be_visible()

    # 3: a user; 4: a test (its result is what counts, whatever it was).
    guide.get_by_role("link", name="Add users and queues").click()
    page.get_by_label("User Name", exact=True).fill("alice")
    page.get_by_label("Primary Email", exact=True).fill("alice@contoso.test")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("The user “alice” and their mailbox were created.")).to_be_visible()
    Mailbox.objects.filter(email="alice@contoso.test").update(incoming_status="failure")
    page.get_by_role("link", name="Mailboxes", exact=True).click()
    expect(page.get_by_role("heading", name="Mailboxes")).to_be_visible()
    expect(guide).to_have_count(0)
    assert page.console_errors == []


def test_without_javascript_a_phone_still_shows_the_sections(chromium, live_server, sysadmin):
    context = chromium.new_context(java_script_enabled=False, base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page)
        sections = page.get_by_role("navigation", name="Sections")
        expect(sections.get_by_role("link", name="Server Profiles")).to_be_visible()
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        assert no_sideways_scroll(page)
    finally:
        context.close()
