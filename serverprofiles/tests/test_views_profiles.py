"""Email server profile pages: /serverprofiles/, new/, <id>/, <id>/delete/."""

import re

import pytest
from django.test import Client

from mailboxes.models import Mailbox, OrganizationSettings, choices
from serverprofiles.models import AuthenticationMethod, EmailServerProfile, ServerType
from tests.fixtures.ui import field_block, field_errors, form_data, page_form_data, page_messages

pytestmark = pytest.mark.django_db

NEW = "/serverprofiles/new/"

LABELS = {
    "name": "Name",
    "description": "Description",
    "server_type": "Email Server Type",
    "owner": "Owner",
    "make_default": "Set as default profile for new mailboxes",
    "auto_discover": "Auto Discover Server Location",
    "incoming_server": "Incoming Server Location",
    "incoming_port": "Incoming Port",
    "incoming_ssl": "Use SSL for Incoming Connection",
    "outgoing_server": "Outgoing Server Location",
    "outgoing_port": "Outgoing Port",
    "outgoing_ssl": "Use SSL for Outgoing Connection",
    "incoming_auth": "Authenticate Using (incoming)",
    "incoming_username": "User Name (incoming)",
    "incoming_password": "Password (incoming)",
    "use_same_settings_for_outgoing": "Use Same Settings for Outgoing Connections",
    "outgoing_auth": "Authenticate Using (outgoing)",
    "outgoing_username": "User Name (outgoing)",
    "outgoing_password": "Password (outgoing)",
    "process_email_from": "Process Email From",
    "min_polling_interval": "Minimum Polling Interval in Minutes",
    "max_connections": "Maximum Concurrent Connections",
    "move_failed_to_undeliverable": "Move Failed Emails to Undeliverable Folder",
    "timeout_ms": "Connection timeout (ms)",
}

IMAP = {
    "name": "Contoso IMAP",
    "server_type": ServerType.IMAP_SMTP,
    "incoming_server": "imap.contoso.test",
    "outgoing_server": "smtp.contoso.test",
    "incoming_auth": AuthenticationMethod.USER_CREDENTIALS,
}
EXCHANGE_URL = "https://mail.contoso.test/EWS/Exchange.asmx"


def url(profile) -> str:
    return f"/serverprofiles/{profile.pk}/"


def create(client, **changes):
    return client.post(NEW, page_form_data(client, NEW, **{**IMAP, **changes}))


def test_form_labels_and_groups(sysadmin_client, profile):
    response = sysadmin_client.get(url(profile))
    html = response.content.decode()
    for name, label in LABELS.items():
        assert f'<label for="id_{name}">{label}</label>' in html
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", html) == [
        "General",
        "Locations and ports",
        "Authentication",
        "OAuth 2.0",
        "Advanced",
    ]
    assert ">Save</button>" in html
    assert ">Save &amp; Close</button>" in html


def test_only_the_fields_that_apply_are_offered(sysadmin_client, profile):
    """app.js shows a field when its data-show-if holds (the model ignores the rest)."""
    response = sysadmin_client.get(url(profile))
    exchange = "[&quot;exchange&quot;, &quot;exchange-hybrid&quot;, &quot;exchange-online&quot;]"
    assert f"{{&quot;server_type&quot;: {exchange}}}" in field_block(response, "auto_discover")
    assert "{&quot;incoming_auth&quot;: [&quot;profile-credentials&quot;]}" in field_block(
        response, "incoming_username"
    )
    assert "{&quot;use_same_settings_for_outgoing&quot;: [&quot;false&quot;]}" in field_block(
        response, "outgoing_auth"
    )


def test_create_fills_ports_from_protocol_and_ssl(sysadmin_client):
    response = create(sysadmin_client, save="")
    profile = EmailServerProfile.objects.get(name="Contoso IMAP")
    assert response.headers["Location"] == url(profile)
    assert (profile.incoming_port, profile.outgoing_port) == (993, 465)
    no_ssl = create(
        sysadmin_client, name="Plain", incoming_ssl=False, outgoing_ssl=False, server_type="pop3-smtp"
    )
    assert no_ssl.status_code == 302
    plain = EmailServerProfile.objects.get(name="Plain")
    assert (plain.incoming_port, plain.outgoing_port) == (110, 587)


def test_save_and_close_returns_to_the_list(sysadmin_client, profile):
    data = page_form_data(sysadmin_client, url(profile), description="Main servers", save_close="")
    response = sysadmin_client.post(url(profile), data, follow=True)
    assert response.redirect_chain == [("/serverprofiles/", 302)]
    assert page_messages(response) == ["The email server profile “Contoso IMAP” was saved."]


def test_set_as_default_and_unset(sysadmin_client, profile, make_profile):
    other = make_profile(name="Other")
    sysadmin_client.post(url(profile), page_form_data(sysadmin_client, url(profile), make_default=True))
    assert OrganizationSettings.load().default_server_profile == profile
    sysadmin_client.post(url(other), page_form_data(sysadmin_client, url(other), make_default=True))
    assert OrganizationSettings.load().default_server_profile == other  # P7: only one
    sysadmin_client.post(url(other), page_form_data(sysadmin_client, url(other), make_default=False))
    assert OrganizationSettings.load().default_server_profile is None


def test_default_is_an_email_setting_the_manager_cannot_change(manager_client, profile):
    response = manager_client.get(url(profile))
    assert re.search(r'name="make_default"[^>]*disabled', field_block(response, "make_default"))
    manager_client.post(url(profile), page_form_data(manager_client, url(profile)) | {"make_default": "on"})
    assert OrganizationSettings.load().default_server_profile is None


# Rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "changes", "field", "message"),
    [
        ("P1", {"name": ""}, "name", "This field is required."),
        ("P1", {"server_type": ""}, "server_type", "This field is required."),
        (
            "P2",
            {"incoming_auth": "profile-credentials", "incoming_password": "Profile-Secret-1"},
            "incoming_username",
            "Enter the user name this profile authenticates with.",
        ),
        (
            "P2",
            {"incoming_auth": "profile-credentials", "incoming_username": "svc"},
            "incoming_password",
            "Enter the password this profile authenticates with.",
        ),
        (
            "P2",
            {
                "use_same_settings_for_outgoing": False,
                "outgoing_auth": "profile-credentials",
                "outgoing_username": "svc",
            },
            "outgoing_password",
            "Enter the password for outgoing connections.",
        ),
        (
            "P3",
            {"incoming_auth": "windows"},
            "incoming_auth",
            '"Windows Integrated Authentication" is valid only for Exchange server types.',
        ),
        (
            "P3",
            {
                "server_type": "exchange-online",
                "incoming_server": EXCHANGE_URL,
                "outgoing_server": EXCHANGE_URL,
            },
            "incoming_auth",
            'Exchange Online (Hybrid) accepts only "Server to Server Authentication".',
        ),
        (
            "P4",
            {"incoming_auth": "anonymous"},
            "incoming_auth",
            '"Without Credentials (Anonymous)" is not valid for incoming connections.',
        ),
        (
            "P5",
            {"auto_discover": True},
            "auto_discover",
            "Auto Discover Server Location applies only to Exchange server types.",
        ),
        (
            "P5",
            {"move_failed_to_undeliverable": True},
            "move_failed_to_undeliverable",
            "Move Failed Emails to Undeliverable Folder applies only to Exchange server types.",
        ),
        (
            "P5",
            {"incoming_server": ""},
            "incoming_server",
            "Incoming Server Location is required.",
        ),
        (
            "P5",
            {"server_type": "exchange", "incoming_server": "", "outgoing_server": EXCHANGE_URL},
            "incoming_server",
            "Incoming Server Location is required unless the server location is discovered automatically.",
        ),
        (
            "P5",
            {"outgoing_server": "smtp://smtp.contoso.test:25"},
            "outgoing_server",
            "Outgoing Server Location must be a host name (imap.contoso.com), without scheme, port or path.",
        ),
        (
            "P5",
            {
                "server_type": "exchange",
                "incoming_server": "mail.contoso.test",
                "outgoing_server": EXCHANGE_URL,
            },
            "incoming_server",
            "Incoming Server Location must be an https URL for Exchange server types, "
            "e.g. https://mail.contoso.com/EWS/Exchange.asmx.",
        ),
        (
            "P6",
            {"incoming_port": "70000"},
            "incoming_port",
            "Ensure this value is less than or equal to 65535.",
        ),
        ("P6", {"outgoing_port": "0"}, "outgoing_port", "Ensure this value is greater than or equal to 1."),
        (
            "P6",
            {"max_connections": "301"},
            "max_connections",
            "Ensure this value is less than or equal to 300.",
        ),
        (
            "P6",
            {"max_connections": "0"},
            "max_connections",
            "Ensure this value is greater than or equal to 1.",
        ),
        (
            "P6",
            {"min_polling_interval": "1441"},
            "min_polling_interval",
            "Ensure this value is less than or equal to 1440.",
        ),
        (
            "P6",
            {"timeout_ms": "60001"},
            "timeout_ms",
            "Connection timeout (ms) is at most 60000 (one minute): a mail server that has not answered "
            "within a minute is not going to.",
        ),
        ("P6", {"timeout_ms": "0"}, "timeout_ms", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_each_rule_shows_its_message_next_to_its_field(sysadmin_client, rule, changes, field, message):
    response = create(sysadmin_client, **changes)
    assert response.status_code == 200
    assert field_errors(response, field) == [message]
    assert not EmailServerProfile.objects.exists()


def test_name_is_unique(sysadmin_client, profile):
    response = create(sysadmin_client, name=profile.name)
    assert field_errors(response, "name") == ["Email server profile with this Name already exists."]


def test_exchange_profile_with_auto_discovery_needs_no_locations(sysadmin_client):
    create(
        sysadmin_client,
        name="Exchange",
        server_type="exchange",
        auto_discover=True,
        incoming_server="",
        outgoing_server="",
        incoming_auth="server-to-server",
    )
    profile = EmailServerProfile.objects.get(name="Exchange")
    assert profile.auto_discover


def test_changing_how_it_connects_resets_its_mailboxes_tests(sysadmin_client, profile, make_forward_mailbox):
    """P9."""
    mailbox = make_forward_mailbox()
    Mailbox.objects.filter(pk=mailbox.pk).update(
        incoming_status=choices.TestStatus.SUCCESS, enabled_incoming=True
    )
    data = page_form_data(sysadmin_client, url(profile), incoming_server="imap2.contoso.test")
    sysadmin_client.post(url(profile), data)
    mailbox.refresh_from_db()
    assert (mailbox.incoming_status, mailbox.enabled_incoming) == ("not-run", False)


# Write-only passwords --------------------------------------------------------------------


def test_profile_password_is_write_only(sysadmin_client):
    response = create(
        sysadmin_client,
        incoming_auth="profile-credentials",
        incoming_username="svc",
        incoming_password="Profile-Secret-1",
    )
    profile = EmailServerProfile.objects.get(name="Contoso IMAP")
    assert profile.get_incoming_password() == "Profile-Secret-1"
    page = sysadmin_client.get(response.headers["Location"])
    assert "Profile-Secret-1" not in page.content.decode()
    assert "A password is set." in field_block(page, "incoming_password")

    sysadmin_client.post(url(profile), page_form_data(sysadmin_client, url(profile), description="kept"))
    profile.refresh_from_db()
    assert profile.get_incoming_password() == "Profile-Secret-1"

    data = page_form_data(sysadmin_client, url(profile), clear_incoming_password=True)
    response = sysadmin_client.post(url(profile), data)
    assert field_errors(response, "incoming_password") == [
        "Enter the password this profile authenticates with."
    ]
    sysadmin_client.post(
        url(profile),
        page_form_data(
            sysadmin_client, url(profile), clear_incoming_password=True, incoming_auth="user-credentials"
        ),
    )
    profile.refresh_from_db()
    assert not profile.has_incoming_password


# Stale edit -------------------------------------------------------------------------------


def test_concurrent_profile_edits(sysadmin, manager, profile):
    first, second = Client(), Client()
    first.force_login(sysadmin)
    second.force_login(manager)
    first_data = page_form_data(first, url(profile), description="first")
    second_data = page_form_data(second, url(profile), description="second")
    assert first.post(url(profile), first_data).status_code == 302
    response = second.post(url(profile), second_data)
    assert response.status_code == 409
    assert "was changed by someone else" in page_messages(response)[0]
    assert form_data(response.context["form"])["description"] == "first"
    profile.refresh_from_db()
    assert profile.description == "first"


# Delete (P8) --------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes_an_unused_profile(sysadmin_client, make_profile):
    unused = make_profile(name="Unused")
    page = sysadmin_client.get(f"/serverprofiles/{unused.pk}/delete/")
    assert "Delete the email server profile “Unused”?" in page.content.decode()
    response = sysadmin_client.post(f"/serverprofiles/{unused.pk}/delete/", follow=True)
    assert response.redirect_chain == [("/serverprofiles/", 302)]
    assert page_messages(response) == ["The email server profile “Unused” was deleted."]
    assert not EmailServerProfile.objects.filter(pk=unused.pk).exists()


def test_delete_is_refused_with_the_mailboxes_that_use_it(sysadmin_client, profile, make_forward_mailbox):
    first = make_forward_mailbox(email="a-fwd@example.test")
    second = make_forward_mailbox(email="b-fwd@example.test")
    response = sysadmin_client.post(f"/serverprofiles/{profile.pk}/delete/")
    assert response.status_code == 409
    html = response.content.decode()
    assert "The profile was not deleted." in html
    assert f"<li>{first.email}</li>" in html
    assert f"<li>{second.email}</li>" in html
    assert f"/mailboxes/?view=all&amp;profile={profile.pk}" in html
    assert EmailServerProfile.objects.filter(pk=profile.pk).exists()


# List ----------------------------------------------------------------------------------------


def test_profile_list_marks_the_default_in_fixed_queries(
    sysadmin_client, django_assert_num_queries, make_profile, make_user, org
):
    owner = make_user()
    profiles = [make_profile(owner=owner) for _ in range(12)]
    org.default_server_profile = profiles[3]
    org.save()
    # 1. the session
    # 2. the signed-in user
    # 3-4. the user's own and group permissions
    # 5. the page of profiles, with their owners (one JOIN query)
    # 6. which profile is the organisation's default (not one query per row)
    with django_assert_num_queries(6):
        response = sysadmin_client.get("/serverprofiles/")
    assert len(response.context["page"]) == 12
    assert response.content.decode().count('<span class="tag tag--default">Default</span>') == 1


def test_profile_list_search(sysadmin_client, make_profile):
    make_profile(name="Contoso", incoming_server="imap.contoso.test")
    make_profile(name="Fabrikam", incoming_server="imap.fabrikam.test")
    response = sysadmin_client.get("/serverprofiles/", {"q": "fabrikam"})
    assert [p.name for p in response.context["page"]] == ["Fabrikam"]
