"""Email server profiles in the admin: saves through the services, write-only passwords,
P8 on single and bulk delete, and Test & Enable for a profile's mailboxes."""

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.db import connection

from serverprofiles.models import EmailServerProfile
from serverprofiles.services import profile_save
from tests.fixtures.admin import changeform_data, messages_of

CHANGELIST = "/admin/serverprofiles/emailserverprofile/"
SECRET = "Correct-Battery-Staple-77"


def change_url(profile):
    return f"{CHANGELIST}{profile.pk}/change/"


def raw_password_columns(profile) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT incoming_password_ciphertext, outgoing_password_ciphertext "
            "FROM serverprofiles_emailserverprofile WHERE id = %s",
            [profile.pk],
        )
        return cursor.fetchone()


@pytest.fixture
def sysadmin_client(client_for, sysadmin):
    return client_for(sysadmin)


def profile_data(**fields):
    return {
        "name": "Fabrikam IMAP",
        "server_type": "imap-smtp",
        "incoming_server": "imap.fabrikam.test",
        "outgoing_server": "smtp.fabrikam.test",
        "incoming_auth": "profile-credentials",
        "outgoing_auth": "profile-credentials",
        "use_same_settings_for_outgoing": "on",
        "incoming_username": "svc@fabrikam.test",
        "incoming_password": SECRET,
        "incoming_ssl": "on",
        "outgoing_ssl": "on",
        "min_polling_interval": "0",
        "max_connections": "10",
        "timeout_ms": "10000",
        **fields,
    }


def test_profile_added_with_a_password_is_encrypted_at_rest(sysadmin_client, sysadmin):
    response = sysadmin_client.post(CHANGELIST + "add/", profile_data(make_default="on"), follow=True)

    assert response.status_code == 200
    profile = EmailServerProfile.objects.get(name="Fabrikam IMAP")
    incoming, _outgoing = raw_password_columns(profile)
    assert incoming
    assert SECRET not in incoming
    assert profile.get_incoming_password() == SECRET
    assert profile.incoming_port == 993  # filled from protocol and SSL
    assert profile.is_default
    entries = LogEntry.objects.filter(object_id=str(profile.pk), content_type__model="emailserverprofile")
    assert [(e.action_flag, e.user) for e in entries] == [(ADDITION, sysadmin)]


def test_profile_password_never_appears_in_any_admin_page(sysadmin_client):
    sysadmin_client.post(CHANGELIST + "add/", profile_data())
    profile = EmailServerProfile.objects.get(name="Fabrikam IMAP")
    data = changeform_data(sysadmin_client.get(change_url(profile)))
    data["incoming_password"] = SECRET + "-rotated"
    sysadmin_client.post(change_url(profile), data)
    incoming, _ = raw_password_columns(profile)

    for url in (
        CHANGELIST,
        CHANGELIST + "?q=Fabrikam",
        change_url(profile),
        f"{CHANGELIST}{profile.pk}/history/",
    ):
        content = sysadmin_client.get(url).content.decode()
        assert SECRET not in content, url
        assert incoming not in content, url
    assert "A password is set" in sysadmin_client.get(change_url(profile)).content.decode()
    assert (
        "Changed Password (incoming)."
        in sysadmin_client.get(f"{CHANGELIST}{profile.pk}/history/").content.decode()
    )


def test_blank_password_keeps_the_stored_one(sysadmin_client):
    sysadmin_client.post(CHANGELIST + "add/", profile_data())
    profile = EmailServerProfile.objects.get(name="Fabrikam IMAP")
    data = changeform_data(sysadmin_client.get(change_url(profile)))
    assert "incoming_password" not in data
    data["description"] = "Moved to the new data centre"

    sysadmin_client.post(change_url(profile), data)

    profile.refresh_from_db()
    assert profile.description == "Moved to the new data centre"
    assert profile.get_incoming_password() == SECRET


def test_clearing_a_required_password_is_refused_on_the_form(sysadmin_client):
    sysadmin_client.post(CHANGELIST + "add/", profile_data())
    profile = EmailServerProfile.objects.get(name="Fabrikam IMAP")
    data = changeform_data(sysadmin_client.get(change_url(profile)))
    data["clear_incoming_password"] = "on"

    response = sysadmin_client.post(change_url(profile), data)

    assert response.context["adminform"].form.errors["incoming_password"] == [
        "Enter the password this profile authenticates with."  # P2
    ]
    profile.refresh_from_db()
    assert profile.get_incoming_password() == SECRET


def test_profile_rules_show_on_their_fields(sysadmin_client):
    response = sysadmin_client.post(
        CHANGELIST + "add/",
        profile_data(incoming_auth="windows", incoming_password="", max_connections="500"),
    )

    errors = response.context["adminform"].form.errors
    assert errors["incoming_auth"] == [
        '"Windows Integrated Authentication" is valid only for Exchange server types.'
    ]
    assert "max_connections" in errors  # P6
    assert not EmailServerProfile.objects.filter(name="Fabrikam IMAP").exists()


def test_stale_profile_edit_is_refused(sysadmin_client, profile):
    data = changeform_data(sysadmin_client.get(change_url(profile)))
    meanwhile = EmailServerProfile.objects.get(pk=profile.pk)
    meanwhile.description = "Changed meanwhile"
    profile_save(meanwhile)
    data["description"] = "Stale"

    response = sysadmin_client.post(change_url(profile), data, follow=True)

    profile.refresh_from_db()
    assert profile.description == "Changed meanwhile"
    assert any("changed by someone else" in m for m in messages_of(response))


def test_profile_in_use_is_not_deleted_and_its_mailboxes_listed(
    sysadmin_client, profile, make_forward_mailbox
):
    first = make_forward_mailbox(email="fwd-a@example.test")
    second = make_forward_mailbox(email="fwd-b@example.test")

    page = sysadmin_client.get(f"{CHANGELIST}{profile.pk}/delete/")
    sysadmin_client.post(f"{CHANGELIST}{profile.pk}/delete/", {"post": "yes"})

    content = page.content.decode()
    assert "cannot be deleted" in content
    assert first.email in content
    assert second.email in content
    assert "Yes, I’m sure" not in content
    assert EmailServerProfile.objects.filter(pk=profile.pk).exists()


def test_bulk_delete_refuses_profiles_in_use_and_deletes_the_others(
    sysadmin_client, profile, make_profile, make_forward_mailbox
):
    in_use = make_forward_mailbox(email="fwd-a@example.test").server_profile
    unused = make_profile(name="Unused")
    selection = {"action": "delete_selected", "index": "0", "_selected_action": [in_use.pk, unused.pk]}

    page = sysadmin_client.post(CHANGELIST, selection)
    confirmed = sysadmin_client.post(CHANGELIST, {**selection, "post": "yes"}, follow=True)

    assert "fwd-a@example.test" in page.content.decode()
    assert "Yes, I’m sure" not in page.content.decode()
    assert EmailServerProfile.objects.filter(pk=in_use.pk).exists()
    assert not EmailServerProfile.objects.filter(pk=unused.pk).exists()
    [message] = messages_of(confirmed)
    assert message.startswith(f"1 deleted, 1 refused: {in_use.name}: The email server profile")
    assert "fwd-a@example.test" in message


def test_a_bulk_delete_whose_selection_holds_no_id_is_refused_with_a_message(sysadmin_client, make_profile):
    unused = make_profile(name="Unused")
    selection = {"action": "delete_selected", "index": "0", "_selected_action": [unused.pk, "²"]}

    response = sysadmin_client.post(CHANGELIST, {**selection, "post": "yes"}, follow=True)

    assert messages_of(response) == [
        "Nothing was changed: the selection holds a value that is not the id of any email server "
        "profile. Reload the page and select the rows again."
    ]
    assert EmailServerProfile.objects.filter(pk=unused.pk).exists()


def test_unused_profile_is_deleted_through_the_service(sysadmin_client, sysadmin, make_profile):
    unused = make_profile(name="Unused")

    response = sysadmin_client.post(f"{CHANGELIST}{unused.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not EmailServerProfile.objects.filter(pk=unused.pk).exists()
    entries = LogEntry.objects.filter(object_id=str(unused.pk), content_type__model="emailserverprofile")
    assert list(entries.values_list("action_flag", "user")) == [(3, sysadmin.pk)]


def test_default_column_and_read_only_role(client_for, readonly, profile, org):
    org.default_server_profile = profile
    org.save()
    client = client_for(readonly)

    listing = client.get(CHANGELIST)
    form_page = client.get(change_url(profile))

    assert listing.status_code == 200
    assert listing.context["cl"].result_list[0].is_default_profile is True
    assert 'name="incoming_password"' not in form_page.content.decode()
    assert client.post(change_url(profile), {"name": "x"}).status_code == 403


def test_test_and_enable_mailboxes_of_a_profile(sysadmin_client, profile, make_forward_mailbox):
    forward = make_forward_mailbox()

    response = sysadmin_client.post(
        CHANGELIST,
        {"action": "test_and_enable_mailboxes", "index": "0", "_selected_action": [profile.pk]},
        follow=True,
    )

    assert messages_of(response)[0].startswith("Test & Enable scheduled for the 1 mailbox of the selected")
    forward.refresh_from_db()
    # The tests' task backend runs the task at once: the forward mailbox's incoming
    # workload was tested (its profile's host does not resolve here: a Failure).
    assert forward.test_completed_on is not None
    assert forward.incoming_status == "failure"
    assert forward.outgoing_status == "not-run"


def test_test_and_enable_mailboxes_needs_its_permission(client_for, make_user, profile):
    from django.contrib.auth.models import Group

    clerk = make_user("clerk", is_staff=True)
    manager_perms = Group.objects.get(name="Mailbox Manager").permissions
    clerk.user_permissions.add(*manager_perms.exclude(codename="test_mailbox"))
    client = client_for(clerk)

    listing = client.get(CHANGELIST)
    response = client.post(
        CHANGELIST,
        {"action": "test_and_enable_mailboxes", "index": "0", "_selected_action": [profile.pk]},
        follow=True,
    )

    offered = dict(listing.context["action_form"].fields["action"].choices)
    assert "delete_selected" in offered
    assert "test_and_enable_mailboxes" not in offered
    assert messages_of(response) == ["No action selected."]
