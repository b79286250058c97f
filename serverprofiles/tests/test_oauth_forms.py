"""SPEC 7 on the profile pages and in the admin: the OAuth fields, write-only secrets, who may
change them."""

import json

import pytest
from django.db import connection

from serverprofiles.models import EmailServerProfile
from serverprofiles.tests.test_oauth_rules import other_key_pem
from tests.fixtures.admin import changeform_data
from tests.fixtures.ui import field_block, page_form_data

pytestmark = pytest.mark.django_db

NEW = "/serverprofiles/new/"
ADMIN = "/admin/serverprofiles/emailserverprofile/"
SECRET = "Client-Secret-On-The-Form-58"
OAUTH = {
    "name": "Modern IMAP",
    "server_type": "imap-smtp",
    "incoming_server": "imap.contoso.test",
    "outgoing_server": "smtp.contoso.test",
    "incoming_auth": "oauth2",
    "oauth_provider": "other",
    "oauth_token_url": "https://login.contoso.test/token",
    "oauth_client_id": "app-id",
    "oauth_scope": "mail",
}


def stored_secret_column(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT oauth_client_secret_ciphertext FROM serverprofiles_emailserverprofile WHERE name = %s",
            [name],
        )
        return cursor.fetchone()[0]


def create_on_page(client, **changes):
    return client.post(
        NEW, page_form_data(client, NEW, **{**OAUTH, "oauth_client_secret": SECRET, **changes})
    )


def test_oauth_profile_created_on_the_page_keeps_the_secret_encrypted(sysadmin_client):
    response = create_on_page(sysadmin_client)

    assert response.status_code == 302, response.content.decode()[:2000]
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    assert profile.get_bound_oauth_secret().secret == SECRET
    assert SECRET not in stored_secret_column("Modern IMAP")
    page = sysadmin_client.get(f"/serverprofiles/{profile.pk}/").content.decode()
    assert SECRET not in page and stored_secret_column("Modern IMAP") not in page
    assert "A client secret is set" in page


def test_a_blank_secret_keeps_the_stored_one(sysadmin_client):
    create_on_page(sysadmin_client)
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    url = f"/serverprofiles/{profile.pk}/"

    response = sysadmin_client.post(url, page_form_data(sysadmin_client, url, oauth_client_id="app-2"))

    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.oauth_client_id, profile.get_bound_oauth_secret().secret) == ("app-2", SECRET)


def test_missing_secret_is_shown_on_its_field(sysadmin_client):
    response = create_on_page(sysadmin_client, oauth_client_secret="")

    assert response.status_code == 200
    assert "Enter the client secret" in field_block(response, "oauth_client_secret")
    assert not EmailServerProfile.objects.exists()


def test_a_malformed_token_url_is_refused_on_its_field(sysadmin_client):
    response = create_on_page(sysadmin_client, oauth_token_url="https://[login.contoso.test/token")

    assert response.status_code == 200
    assert "Token URL must be an https URL" in field_block(response, "oauth_token_url")
    assert not EmailServerProfile.objects.exists()


def test_a_service_account_key_that_is_not_rsa_is_refused_on_its_field(sysadmin_client):
    key = json.dumps({"client_email": "svc@p.iam.gserviceaccount.com", "private_key": other_key_pem("ec")})
    response = create_on_page(sysadmin_client, oauth_provider="google", oauth_service_account_key=key)

    assert response.status_code == 200
    assert "Service Account Key holds no RSA private key in its private_key." in field_block(
        response, "oauth_service_account_key"
    )
    assert not EmailServerProfile.objects.exists()


def test_a_refused_form_never_shows_the_typed_secret_or_key_again(sysadmin_client):
    key = '{"client_email": "svc@example.test", "private_key": "Typed-Key-Material-77"}'
    response = create_on_page(sysadmin_client, oauth_provider="google", oauth_service_account_key=key)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Typed-Key-Material-77" not in html and SECRET not in html


def test_the_authentication_choices_say_which_server_types_allow_them(sysadmin_client):
    html = field_block(sysadmin_client.get(NEW), "incoming_auth")

    assert 'value="oauth2" data-server-types="pop3-smtp imap-smtp"' in html
    assert 'value="server-to-server" data-server-types="exchange exchange-hybrid exchange-online"' in html
    assert 'data-server-types="exchange exchange-hybrid pop3-smtp imap-smtp">Credentials Specified by' in html
    assert "mailboxadmin/profile_form.js" in sysadmin_client.get(NEW).content.decode()


def test_oauth_fields_show_only_with_oauth(sysadmin_client):
    response = sysadmin_client.get(NEW)

    shown_if = field_block(response, "oauth_client_id")
    assert "&quot;incoming_auth&quot;: [&quot;oauth2&quot;, &quot;server-to-server&quot;]" in shown_if
    assert "&quot;exchange-online&quot;" in shown_if
    assert "&quot;oauth_provider&quot;: [&quot;microsoft&quot;]" in field_block(response, "oauth_tenant_id")
    assert "&quot;oauth_provider&quot;: [&quot;google&quot;]" in field_block(
        response, "oauth_service_account_key"
    )


def test_exchange_online_on_the_page_gets_office365_servers(sysadmin_client):
    response = create_on_page(
        sysadmin_client,
        name="Online",
        server_type="exchange-online",
        incoming_server="",
        outgoing_server="",
        incoming_auth="server-to-server",
        oauth_provider="microsoft",
        oauth_tenant_id="contoso.onmicrosoft.com",
        oauth_scope="",
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    profile = EmailServerProfile.objects.get(name="Online")
    assert (profile.incoming_server, profile.outgoing_server) == (
        "outlook.office365.com",
        "smtp.office365.com",
    )
    assert profile.oauth_effective_scope == "https://outlook.office365.com/.default"


# Roles ----------------------------------------------------------------------------------


def test_manager_may_set_the_oauth_values(manager_client):
    assert create_on_page(manager_client).status_code == 302
    assert EmailServerProfile.objects.get(name="Modern IMAP").oauth_client_id == "app-id"


def test_read_only_sees_no_secret_input_and_cannot_change_them(client_for, readonly, sysadmin):
    create_on_page(client_for(sysadmin))
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    url = f"/serverprofiles/{profile.pk}/"
    client = client_for(readonly)

    page = client.get(url)
    refused = client.post(
        url, {**OAUTH, "oauth_client_id": "evil", "oauth_client_secret": "x", "version": "1"}
    )

    assert page.context["form"].fields["oauth_client_secret"].disabled
    assert SECRET not in page.content.decode()
    assert refused.status_code == 403
    profile.refresh_from_db()
    assert (profile.oauth_client_id, profile.get_bound_oauth_secret().secret) == ("app-id", SECRET)


def test_anonymous_is_sent_to_sign_in(client):
    response = client.post(NEW, {**OAUTH, "oauth_client_secret": SECRET})

    assert response.status_code == 302 and "login" in response["Location"]
    assert not EmailServerProfile.objects.exists()


# Admin ----------------------------------------------------------------------------------


def admin_data(**fields):
    return {
        **OAUTH,
        "outgoing_auth": "oauth2",
        "use_same_settings_for_outgoing": "on",
        "incoming_ssl": "on",
        "outgoing_ssl": "on",
        "min_polling_interval": "0",
        "max_connections": "10",
        "timeout_ms": "10000",
        "oauth_client_secret": SECRET,
        **fields,
    }


def test_admin_adds_an_oauth_profile_and_never_shows_its_secret(client_for, sysadmin):
    client = client_for(sysadmin)
    response = client.post(ADMIN + "add/", admin_data())

    assert response.status_code == 302, response.content.decode()[:3000]
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    assert profile.get_bound_oauth_secret().secret == SECRET
    data = changeform_data(client.get(f"{ADMIN}{profile.pk}/change/"))
    assert data.get("oauth_client_secret", "") == ""
    for url in (ADMIN, f"{ADMIN}{profile.pk}/change/", f"{ADMIN}{profile.pk}/history/"):
        content = client.get(url).content.decode()
        assert SECRET not in content and stored_secret_column("Modern IMAP") not in content, url


def test_admin_refuses_a_malformed_token_url_on_its_field(client_for, sysadmin):
    response = client_for(sysadmin).post(
        ADMIN + "add/", admin_data(oauth_token_url="https://[login.contoso.test/token")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["oauth_token_url"] == [
        "Token URL must be an https URL such as https://login.example.com/oauth2/token."
    ]
    assert not EmailServerProfile.objects.exists()


def test_admin_read_only_role_gets_no_secret_input(client_for, readonly, sysadmin):
    client_for(sysadmin).post(ADMIN + "add/", admin_data())
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    client = client_for(readonly)

    page = client.get(f"{ADMIN}{profile.pk}/change/").content.decode()

    assert 'name="oauth_client_secret"' not in page
    assert client.post(f"{ADMIN}{profile.pk}/change/", admin_data()).status_code == 403


def test_admin_takes_the_service_account_key_in_a_text_area_it_never_fills(client_for, sysadmin):
    client = client_for(sysadmin)
    key = '{"client_email": "svc@example.test", "private_key": "Admin-Key-Material-91"}'

    # Google without a client id is refused: the form comes back, without the pasted key.
    response = client.post(
        ADMIN + "add/", admin_data(oauth_provider="google", oauth_client_id="", oauth_service_account_key=key)
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Admin-Key-Material-91" not in html
    start = html.index('name="oauth_service_account_key"')
    tag = html[html.rindex("<", 0, start) : html.index("</textarea>", start)]
    # An empty text area, not a one-line input.
    assert tag.startswith("<textarea") and tag.rstrip().endswith(">")


# The secrets are called what they are (no "password") --------------------------------------


def admin_help(response, name: str) -> str:
    """The help text the admin renders under the field `name`."""
    html = response.content.decode()
    start = html.index(f'id="id_{name}_helptext"')
    return html[start : html.index("</div>", start)]


def test_admin_help_calls_the_secrets_by_their_names(client_for, sysadmin):
    client = client_for(sysadmin)

    add_page = client.get(ADMIN + "add/")
    client.post(ADMIN + "add/", admin_data())
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    change_page = client.get(f"{ADMIN}{profile.pk}/change/")

    assert "No client secret is set." in admin_help(add_page, "oauth_client_secret")
    assert "No service account key is set." in admin_help(add_page, "oauth_service_account_key")
    assert "A client secret is set." in admin_help(change_page, "oauth_client_secret")
    assert "sent only to the Token URL it was entered for" in admin_help(change_page, "oauth_client_secret")
    for page in (add_page, change_page):
        for name in ("oauth_client_secret", "oauth_service_account_key"):
            assert "password" not in admin_help(page, name).lower()
    assert "A password is set" not in admin_help(change_page, "oauth_client_secret")


def test_a_new_secret_and_clear_together_are_refused_in_the_secrets_words(client_for, sysadmin):
    client = client_for(sysadmin)
    client.post(ADMIN + "add/", admin_data())
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    url = f"{ADMIN}{profile.pk}/change/"
    data = changeform_data(client.get(url))

    response = client.post(
        url, {**data, "oauth_client_secret": "New-One-9", "clear_oauth_client_secret": "on"}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["clear_oauth_client_secret"]
    assert errors == ["Enter a new client secret or clear the stored one, not both."]
    assert "New-One-9" not in response.content.decode()


def test_the_page_form_says_client_secret_and_key_not_password(sysadmin_client):
    create_on_page(sysadmin_client)
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    url = f"/serverprofiles/{profile.pk}/"

    response = sysadmin_client.post(
        url,
        page_form_data(sysadmin_client, url, oauth_client_secret="New-One-9", clear_oauth_client_secret="on"),
    )

    assert response.status_code == 200
    secret = field_block(response, "clear_oauth_client_secret")
    assert "Enter a new client secret or clear the stored one, not both." in secret
    assert "No service account key is set." in field_block(response, "oauth_service_account_key")
    assert "A client secret is set." in field_block(response, "oauth_client_secret")
    assert "password is set" not in field_block(response, "oauth_client_secret")


def test_history_names_a_changed_secret_by_its_label(client_for, sysadmin):
    client = client_for(sysadmin)
    client.post(ADMIN + "add/", admin_data())
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    url = f"{ADMIN}{profile.pk}/change/"

    client.post(url, {**changeform_data(client.get(url)), "oauth_client_secret": "New-One-9"})

    history = client.get(f"{ADMIN}{profile.pk}/history/").content.decode()
    assert "Client Secret" in history
    assert "ciphertext" not in history and "New-One-9" not in history


def test_rebind_keeps_the_client_secret_bound_to_the_new_token_url(client_for, sysadmin):
    """The admin's re-bind saves the re-bound client secret too (it used to re-bind it in
    memory and save only the passwords), and says so."""
    from serverprofiles.bindings import oauth_binding_refusal

    client = client_for(sysadmin)
    client.post(ADMIN + "add/", admin_data())
    EmailServerProfile.objects.filter(name="Modern IMAP").update(
        oauth_token_url="https://login2.contoso.test/token"
    )
    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    assert oauth_binding_refusal(profile.get_bound_oauth_secret(), profile.oauth_token_endpoint)

    response = client.post(
        ADMIN,
        {"action": "rebind_passwords", "index": "0", "_selected_action": [str(profile.pk)]},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]][-1] == (
        "Stored passwords and OAuth secrets of 1 profile re-bound to their current servers."
    )
    profile.refresh_from_db()
    assert oauth_binding_refusal(profile.get_bound_oauth_secret(), profile.oauth_token_endpoint) is None
    assert profile.get_bound_oauth_secret().secret == SECRET
    history = client.get(f"{ADMIN}{profile.pk}/history/").content.decode()
    assert "Re-bound to the current servers: Client Secret." in history
