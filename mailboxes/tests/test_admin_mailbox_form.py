"""The admin's mailbox forms: saves through the services, rules on the form, write-only
passwords, stale edits, and no way to add or delete a user's or queue's mailbox."""

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.db import connection

from mailboxes.models import Mailbox
from mailboxes.models.mailboxes import M6_MESSAGE
from mailboxes.services.mailboxes import mailbox_save
from tests.fixtures.admin import changeform_data, messages_of

ADD_URL = "/admin/mailboxes/mailbox/add/"
SECRET = "Tr0ub4dor&3-mailbox"


def change_url(mailbox):
    return f"/admin/mailboxes/mailbox/{mailbox.pk}/change/"


def history_of(mailbox):
    return LogEntry.objects.filter(content_type__model="mailbox", object_id=str(mailbox.pk))


def raw_password_column(mailbox) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT password_ciphertext FROM mailboxes_mailbox WHERE id = %s", [mailbox.pk])
        return cursor.fetchone()[0]


@pytest.fixture
def sysadmin_client(client_for, sysadmin):
    return client_for(sysadmin)


@pytest.fixture
def user_mailbox(make_user, profile):
    mailbox = make_user("alice").mailbox
    mailbox.server_profile = profile
    return mailbox_save(mailbox)


def add_forward(client, profile, **fields):
    data = {
        "name": "Collector",
        "email": "collector@example.test",
        "server_profile": str(profile.pk),
        "incoming_method": "server-side-sync",
        **fields,
    }
    return client.post(ADD_URL, data, follow=True)


def test_admin_adds_only_forward_mailboxes_through_the_service(sysadmin_client, sysadmin, profile):
    response = add_forward(sysadmin_client, profile, delete_after_processing="on")

    assert response.status_code == 200
    mailbox = Mailbox.objects.get(email="collector@example.test")
    assert mailbox.kind == Mailbox.Kind.FORWARD
    assert mailbox.owner == sysadmin  # the service's default: the creator
    assert mailbox.approval_status == "empty"
    entries = list(history_of(mailbox))
    assert [(e.action_flag, e.user) for e in entries] == [(ADDITION, sysadmin)]  # logged once


def test_add_form_offers_no_kind_and_no_regarding(sysadmin_client):
    form = sysadmin_client.get(ADD_URL).context["adminform"].form

    assert "kind" not in form.fields
    assert "user" not in form.fields
    assert "queue" not in form.fields


def test_a_user_mailbox_cannot_be_added_on_its_own(sysadmin_client, profile, make_user):
    someone = make_user("someone")

    add_forward(sysadmin_client, profile, kind="user", user=str(someone.pk), email="sneaky@example.test")

    added = Mailbox.objects.get(email="sneaky@example.test")
    assert added.kind == Mailbox.Kind.FORWARD  # M1: the posted kind and Regarding are ignored
    assert added.user_id is None
    assert Mailbox.objects.filter(user=someone).count() == 1


def test_add_form_shows_rule_errors_on_their_fields(sysadmin_client):
    response = sysadmin_client.post(
        ADD_URL, {"name": "No profile", "email": "np@example.test", "incoming_method": "server-side-sync"}
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["server_profile"] == ["A forward mailbox must have a server profile."]  # M5
    assert not Mailbox.objects.filter(email="np@example.test").exists()


def test_change_form_saves_through_the_service_and_logs_once(sysadmin_client, sysadmin, user_mailbox):
    data = changeform_data(sysadmin_client.get(change_url(user_mailbox)))
    data["name"] = "Alice (sales)"
    data["outgoing_method"] = "none"

    response = sysadmin_client.post(change_url(user_mailbox), data, follow=True)

    assert response.status_code == 200
    user_mailbox.refresh_from_db()
    assert user_mailbox.name == "Alice (sales)"
    assert user_mailbox.version == 3
    changes = history_of(user_mailbox).filter(action_flag=CHANGE)
    assert changes.count() == 1
    assert changes.get().get_change_message() == "Changed Name and Outgoing Email."


def test_change_form_shows_the_m6_message_on_its_field(sysadmin_client, user_mailbox):
    data = changeform_data(sysadmin_client.get(change_url(user_mailbox)))
    data["delete_after_processing"] = "on"

    response = sysadmin_client.post(change_url(user_mailbox), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["delete_after_processing"] == [M6_MESSAGE]
    user_mailbox.refresh_from_db()
    assert user_mailbox.delete_after_processing is False


def test_address_change_on_a_user_mailbox_carries_over_to_the_user(sysadmin_client, user_mailbox):
    data = changeform_data(sysadmin_client.get(change_url(user_mailbox)))
    data["email"] = "alice.new@example.test"

    sysadmin_client.post(change_url(user_mailbox), data)

    user_mailbox.user.refresh_from_db()
    assert user_mailbox.user.email == "alice.new@example.test"  # M12


def test_regarding_kind_and_test_results_are_read_only(sysadmin_client, user_mailbox):
    response = sysadmin_client.get(change_url(user_mailbox))
    form = response.context["adminform"].form

    for name in ("kind", "user", "queue", "owner", "approval_status", "incoming_status", "test_completed_on"):
        assert name not in form.fields
    content = response.content.decode()
    assert "Regarding" in content
    assert "Configuration Test Results" in content


def test_stale_edit_is_refused_and_the_current_values_shown(sysadmin_client, user_mailbox):
    data = changeform_data(sysadmin_client.get(change_url(user_mailbox)))
    someone_else = Mailbox.objects.get(pk=user_mailbox.pk)
    someone_else.name = "Renamed meanwhile"
    mailbox_save(someone_else)
    data["name"] = "My stale edit"

    response = sysadmin_client.post(change_url(user_mailbox), data, follow=True)

    user_mailbox.refresh_from_db()
    assert user_mailbox.name == "Renamed meanwhile"
    assert any("changed by someone else" in m for m in messages_of(response))
    assert response.context["adminform"].form["name"].value() == "Renamed meanwhile"


def test_user_and_queue_mailboxes_cannot_be_deleted_on_their_own(sysadmin_client, user_mailbox, make_queue):
    queue_mailbox = make_queue().mailbox

    for mailbox in (user_mailbox, queue_mailbox):
        response = sysadmin_client.post(f"/admin/mailboxes/mailbox/{mailbox.pk}/delete/", {"post": "yes"})
        assert response.status_code == 403
        assert Mailbox.objects.filter(pk=mailbox.pk).exists()


def test_forward_mailbox_is_deleted_through_the_service(sysadmin_client, sysadmin, make_forward_mailbox):
    forward = make_forward_mailbox()

    response = sysadmin_client.post(f"/admin/mailboxes/mailbox/{forward.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Mailbox.objects.filter(pk=forward.pk).exists()
    assert list(history_of(forward).values_list("action_flag", flat=True)) == [3]  # one deletion entry


def test_last_forward_mailbox_in_use_is_not_deleted(sysadmin_client, make_forward_mailbox, user_mailbox):
    forward = make_forward_mailbox()
    user_mailbox.incoming_method = "forward-mailbox"
    mailbox_save(user_mailbox)

    page = sysadmin_client.get(f"/admin/mailboxes/mailbox/{forward.pk}/delete/")
    response = sysadmin_client.post(f"/admin/mailboxes/mailbox/{forward.pk}/delete/", {"post": "yes"})

    assert "cannot be deleted" in page.content.decode()
    assert "last active forward mailbox" in page.content.decode()
    assert response.status_code == 200  # the refusal page again, nothing deleted
    assert Mailbox.objects.filter(pk=forward.pk).exists()


# Passwords ----------------------------------------------------------------------------


def test_password_set_in_the_admin_is_encrypted_at_rest(sysadmin_client, make_profile):
    profile = make_profile()
    response = add_forward(
        sysadmin_client, profile, allow_credentials="on", username="collector", password=SECRET
    )

    assert response.status_code == 200
    mailbox = Mailbox.objects.get(email="collector@example.test")
    stored = raw_password_column(mailbox)
    assert stored
    assert SECRET not in stored
    assert mailbox.get_password() == SECRET


def test_password_never_appears_in_any_admin_page(sysadmin_client, make_profile):
    profile = make_profile()
    add_forward(sysadmin_client, profile, allow_credentials="on", username="collector", password=SECRET)
    mailbox = Mailbox.objects.get(email="collector@example.test")
    data = changeform_data(sysadmin_client.get(change_url(mailbox)))
    data["password"] = SECRET + "-new"
    sysadmin_client.post(change_url(mailbox), data)
    ciphertext = raw_password_column(mailbox)

    pages = [
        "/admin/mailboxes/mailbox/",
        f"/admin/mailboxes/mailbox/?q={mailbox.email}",
        change_url(mailbox),
        f"/admin/mailboxes/mailbox/{mailbox.pk}/history/",
        "/admin/",
    ]
    for url in pages:
        content = sysadmin_client.get(url).content.decode()
        assert SECRET not in content, url
        assert ciphertext not in content, url
    change_form = sysadmin_client.get(change_url(mailbox)).content.decode()
    assert "A password is set" in change_form
    history = sysadmin_client.get(f"/admin/mailboxes/mailbox/{mailbox.pk}/history/").content.decode()
    assert "Changed Password." in history


def test_blank_password_keeps_the_stored_one_and_clear_removes_it(sysadmin_client, make_profile):
    profile = make_profile()
    add_forward(sysadmin_client, profile, allow_credentials="on", username="collector", password=SECRET)
    mailbox = Mailbox.objects.get(email="collector@example.test")

    data = changeform_data(sysadmin_client.get(change_url(mailbox)))
    assert "password" not in data  # never rendered
    data["name"] = "Collector (renamed)"
    sysadmin_client.post(change_url(mailbox), data)
    mailbox.refresh_from_db()
    assert mailbox.get_password() == SECRET

    data = changeform_data(sysadmin_client.get(change_url(mailbox)))
    data.update(clear_password="on", allow_credentials="")
    del data["allow_credentials"]
    sysadmin_client.post(change_url(mailbox), data)
    mailbox.refresh_from_db()
    assert raw_password_column(mailbox) == ""


def test_clearing_a_required_password_is_refused_on_the_form(sysadmin_client, make_profile):
    profile = make_profile()
    add_forward(sysadmin_client, profile, allow_credentials="on", username="collector", password=SECRET)
    mailbox = Mailbox.objects.get(email="collector@example.test")
    data = changeform_data(sysadmin_client.get(change_url(mailbox)))
    data["clear_password"] = "on"

    response = sysadmin_client.post(change_url(mailbox), data)

    assert response.context["adminform"].form.errors["password"] == [
        "Enter the password, or set Allow to Use Credentials to No."
    ]
    mailbox.refresh_from_db()
    assert mailbox.get_password() == SECRET


def test_read_only_role_sees_the_mailbox_without_inputs(client_for, readonly, user_mailbox):
    client = client_for(readonly)

    response = client.get(change_url(user_mailbox))
    posted = client.post(change_url(user_mailbox), {"name": "Changed by reader"})

    assert response.status_code == 200
    assert 'name="name"' not in response.content.decode()
    assert "No password is set." in response.content.decode()
    assert posted.status_code == 403


# History and alerts ---------------------------------------------------------------------


def test_changes_made_elsewhere_show_in_the_admin_history(sysadmin_client, manager, user_mailbox):
    user_mailbox.name = "Alice (renamed by a command)"
    mailbox_save(user_mailbox, actor=manager, via="apply_config")
    user_mailbox.outgoing_method = "none"
    mailbox_save(user_mailbox, actor=manager)  # as the browser UI saves

    content = sysadmin_client.get(f"/admin/mailboxes/mailbox/{user_mailbox.pk}/history/").content.decode()

    assert "Changed Name (via apply_config)." in content
    assert "Changed Outgoing Email." in content
    assert "manager" in content


def test_a_rule_on_a_field_the_form_does_not_show_is_reported_on_the_form(sysadmin_client, user_mailbox):
    # An inconsistent row (active mailbox of an inactive user, M16): the rule names the
    # read-only Status field, so the error shows at the top of the form, not as a 500.
    user_mailbox.user.__class__.objects.filter(pk=user_mailbox.user_id).update(is_active=False)
    data = changeform_data(sysadmin_client.get(change_url(user_mailbox)))
    data["name"] = "Alice again"

    response = sysadmin_client.post(change_url(user_mailbox), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Status: The mailbox cannot be active while its user is inactive."
    ]


def test_change_form_lists_the_most_recent_alerts(sysadmin_client, user_mailbox):
    from mailboxes.models import MailboxAlert

    for n in range(12):
        MailboxAlert.objects.create(mailbox=user_mailbox, severity="error", message=f"Failure number {n}.")

    content = sysadmin_client.get(change_url(user_mailbox)).content.decode()

    assert "Failure number 11." in content
    assert "Failure number 2." in content
    assert "Failure number 1." not in content  # only the ten most recent
    every_alert = sysadmin_client.get(f"/admin/mailboxes/mailboxalert/?mailbox__id__exact={user_mailbox.pk}")
    assert every_alert.status_code == 200
    assert every_alert.context["cl"].result_count == 12
