"""The OAuth 2.0 part of the server profile form in real Chromium: Authenticate Using
offers only what the server type allows, Exchange Online preselects Server to Server
Authentication, and the OAuth fields follow the provider (profile_form.js, app.js)."""

import pytest
from playwright.sync_api import expect

from serverprofiles.models import EmailServerProfile
from tests.test_browser import field_row, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SECRET = "Browser-Client-Secret-12"


def offered(page, name) -> list[str]:
    return page.eval_on_selector_all(
        f'select[name="{name}"] option', "options => options.filter(o => !o.disabled).map(o => o.value)"
    )


def test_exchange_online_offers_only_server_to_server_and_microsoft_fields(browser_page, sysadmin):
    page = browser_page
    sign_in(page)
    page.goto("/serverprofiles/new/")
    page.get_by_label("Name", exact=True).fill("Microsoft 365")

    page.get_by_label("Email Server Type", exact=True).select_option(label="IMAP/SMTP")
    assert "oauth2" in offered(page, "incoming_auth")
    assert "server-to-server" not in offered(page, "incoming_auth")
    expect(field_row(page, "oauth_client_id")).to_be_hidden()

    page.get_by_label("Email Server Type", exact=True).select_option(label="Exchange Online (Hybrid)")
    assert offered(page, "incoming_auth") == ["server-to-server"]
    expect(page.get_by_label("Authenticate Using (incoming)", exact=True)).to_have_value("server-to-server")
    expect(field_row(page, "oauth_provider")).to_be_hidden()
    expect(page.get_by_label("Tenant ID", exact=True)).to_be_visible()
    expect(page.get_by_label("Client Secret", exact=True)).to_be_visible()
    expect(field_row(page, "oauth_service_account_key")).to_be_hidden()

    page.get_by_label("Tenant ID", exact=True).fill("contoso.onmicrosoft.com")
    page.get_by_label("Client ID", exact=True).fill("app-id")
    page.get_by_label("Client Secret", exact=True).fill(SECRET)
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("was created")).to_be_visible()
    assert SECRET not in page.content()
    profile = EmailServerProfile.objects.get(name="Microsoft 365")
    assert (profile.incoming_auth, profile.incoming_server) == ("server-to-server", "outlook.office365.com")
    assert profile.get_bound_oauth_secret().secret == SECRET


def test_google_shows_the_service_account_key_instead_of_the_secret(browser_page, sysadmin):
    page = browser_page
    sign_in(page)
    page.goto("/serverprofiles/new/")
    page.get_by_label("Email Server Type", exact=True).select_option(label="IMAP/SMTP")
    page.get_by_label("Authenticate Using (incoming)", exact=True).select_option(
        label="OAuth 2.0 (Modern Authentication)"
    )

    page.get_by_label("OAuth Provider", exact=True).select_option(label="Google Workspace")

    expect(page.get_by_label("Service Account Key", exact=True)).to_be_visible()
    expect(field_row(page, "oauth_client_secret")).to_be_hidden()
    expect(field_row(page, "oauth_tenant_id")).to_be_hidden()
