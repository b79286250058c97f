"""SPEC 9: "Allow credentials over unencrypted connections" is off by default, shown as a
warning when on, and set only by a System Administrator: on the profile page, in the
admin, with create_server_profile and with apply_config."""

import json

import pytest
from django.core.management.base import CommandError

from serverprofiles.models import EmailServerProfile
from tests.fixtures.admin import changeform_data
from tests.fixtures.ui import field_block, page_form_data

LABEL = "Allow credentials over unencrypted connections"
WARNING = "Allow credentials over unencrypted connections is on"
IMAP = [
    "--server-type",
    "imap-smtp",
    "--incoming-server",
    "imap.contoso.test",
    "--outgoing-server",
    "smtp.contoso.test",
]


@pytest.fixture
def superuser(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def allowed(profile) -> bool:
    return EmailServerProfile.objects.get(pk=profile.pk).allow_unencrypted_credentials


def test_it_is_off_by_default(profile):
    assert profile.allow_unencrypted_credentials is False


# The profile page -------------------------------------------------------------------


def test_a_system_administrator_turns_it_on_and_the_page_warns(client_for, superuser, profile):
    client = client_for(superuser)
    url = f"/serverprofiles/{profile.pk}/"

    client.post(url, page_form_data(client, url, allow_unencrypted_credentials=True))

    assert allowed(profile)
    page = client.get(url).content.decode()
    assert WARNING in page
    assert f">{LABEL}</label>" in page


def test_a_mailbox_manager_sees_it_disabled_and_cannot_turn_it_on(client_for, manager, profile):
    client = client_for(manager)
    url = f"/serverprofiles/{profile.pk}/"
    assert "disabled" in field_block(client.get(url), "allow_unencrypted_credentials")
    data = page_form_data(client, url, description="edited")
    data["allow_unencrypted_credentials"] = "on"  # posted all the same

    client.post(url, data)

    assert EmailServerProfile.objects.get(pk=profile.pk).description == "edited"
    assert not allowed(profile)


def test_a_mailbox_manager_cannot_turn_it_off_either(client_for, manager, make_profile):
    profile = make_profile(allow_unencrypted_credentials=True)
    client = client_for(manager)
    url = f"/serverprofiles/{profile.pk}/"

    client.post(url, page_form_data(client, url, allow_unencrypted_credentials=False))

    assert allowed(profile)
    assert WARNING in client.get(url).content.decode()


def test_read_only_and_anonymous_users_cannot_change_it(client_for, readonly, client, profile):
    url = f"/serverprofiles/{profile.pk}/"
    reader = client_for(readonly)
    data = page_form_data(reader, url, allow_unencrypted_credentials=True)
    data["allow_unencrypted_credentials"] = "on"

    assert reader.post(url, data).status_code == 403
    assert client.post(url, data).status_code == 302  # to the login page
    assert not allowed(profile)


def test_test_connection_of_a_manager_uses_the_stored_value_not_the_posted_one(
    client_for, manager, make_profile, recording_servers
):
    profile = make_profile(
        incoming_auth="profile-credentials",
        incoming_username="svc",
        password="Svc-Secret-1",
        incoming_server=recording_servers.host,
        incoming_port=recording_servers.imap_port,
        incoming_ssl=False,
        outgoing_server=recording_servers.host,
        outgoing_port=recording_servers.smtp_port,
        outgoing_ssl=False,
        timeout_ms=2000,
    )
    client = client_for(manager)
    url = f"/serverprofiles/{profile.pk}/"
    data = page_form_data(client, url, test_connection="1")
    data["allow_unencrypted_credentials"] = "on"

    client.post(url, data)

    assert not recording_servers.recording.holds_secret("Svc-Secret-1", "svc")


# The admin --------------------------------------------------------------------------


def admin_url(profile) -> str:
    return f"/admin/serverprofiles/emailserverprofile/{profile.pk}/change/"


def test_a_system_administrator_sets_it_in_the_admin(client_for, superuser, profile):
    client = client_for(superuser)
    data = changeform_data(client.get(admin_url(profile)))
    data["allow_unencrypted_credentials"] = "on"

    client.post(admin_url(profile), data)

    assert allowed(profile)


def test_a_mailbox_manager_cannot_set_it_in_the_admin(client_for, manager, profile):
    client = client_for(manager)
    response = client.get(admin_url(profile))
    assert "allow_unencrypted_credentials" not in response.context["adminform"].form.fields  # read-only
    data = changeform_data(response)
    data["allow_unencrypted_credentials"] = "on"

    client.post(admin_url(profile), data)

    assert not allowed(profile)


# Commands ---------------------------------------------------------------------------


def test_create_server_profile_sets_it_for_a_system_administrator(run, superuser):
    run(
        "create_server_profile",
        "--name",
        "Plain",
        *IMAP,
        "--allow-unencrypted-credentials",
        "--actor",
        "root",
    )

    assert EmailServerProfile.objects.get(name="Plain").allow_unencrypted_credentials


def test_create_server_profile_refuses_it_for_a_mailbox_manager(run, manager, unchanged_database):
    flag = "--allow-unencrypted-credentials"
    with (
        unchanged_database(),
        pytest.raises(CommandError, match=f"{flag}: Only a System Administrator"),
    ):
        run("create_server_profile", "--name", "Plain", *IMAP, flag, "--actor", "manager")


def test_apply_config_sets_it_for_a_system_administrator_and_export_writes_it(run, tmp_path, superuser):
    path = tmp_path / "config.json"
    profile = {"name": "Plain", "server_type": "imap-smtp", "incoming_server": "imap.contoso.test"}
    profile |= {"outgoing_server": "smtp.contoso.test", "allow_unencrypted_credentials": True}
    path.write_text(json.dumps({"server_profiles": [profile]}))

    run("apply_config", str(path), actor="root")

    assert EmailServerProfile.objects.get(name="Plain").allow_unencrypted_credentials
    exported = json.loads(run("export_config").stdout)
    assert exported["server_profiles"][0]["allow_unencrypted_credentials"] is True


def test_apply_config_refuses_it_for_a_mailbox_manager_naming_record_and_key(
    run, tmp_path, manager, make_profile, unchanged_database
):
    make_profile(name="Contoso IMAP")
    path = tmp_path / "config.json"
    entry = {"name": "Contoso IMAP", "allow_unencrypted_credentials": True}
    path.write_text(json.dumps({"server_profiles": [entry]}))

    with unchanged_database(), pytest.raises(CommandError) as refused:
        run("apply_config", str(path), actor="manager")

    assert "allow_unencrypted_credentials" in str(refused.value)
    assert "Only a System Administrator" in str(refused.value)


def test_read_only_and_anonymous_users_cannot_set_it_in_the_admin(
    client_for, readonly, client, superuser, profile
):
    data = changeform_data(client_for(superuser).get(admin_url(profile)))
    data["allow_unencrypted_credentials"] = "on"

    assert client_for(readonly).post(admin_url(profile), data).status_code == 403
    assert client.post(admin_url(profile), data).status_code == 302  # to the login page
    assert not allowed(profile)
