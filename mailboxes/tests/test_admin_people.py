"""Users, queues and the organisation settings in the admin: saves through the services."""

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

from mailboxes.models import Mailbox, OrganizationSettings, Queue, User
from mailboxes.services.organization import organization_settings_save
from mailboxes.services.users import user_save
from tests.fixtures.admin import changeform_data, messages_of


@pytest.fixture
def sysadmin_client(client_for, sysadmin):
    return client_for(sysadmin)


def history_of(obj):
    return LogEntry.objects.filter(content_type__model=obj._meta.model_name, object_id=str(obj.pk))


def test_adding_a_user_creates_its_mailbox_and_one_history_entry(sysadmin_client, sysadmin):
    response = sysadmin_client.post(
        "/admin/mailboxes/user/add/",
        {
            "username": "carol",
            "full_name": "Carol Example",
            "email": "carol@example.test",
            "usable_password": "false",
        },
        follow=True,
    )

    assert response.status_code == 200
    carol = User.objects.get(username="carol")
    assert carol.mailbox.email == "carol@example.test"
    assert carol.mailbox.kind == Mailbox.Kind.USER
    assert [(e.action_flag, e.user) for e in history_of(carol)] == [(ADDITION, sysadmin)]


def test_user_form_has_full_name_not_first_and_last(sysadmin_client, make_user):
    user = make_user("dave")

    form = sysadmin_client.get(f"/admin/mailboxes/user/{user.pk}/change/").context["adminform"].form

    assert "full_name" in form.fields
    assert "first_name" not in form.fields
    assert "last_name" not in form.fields


def test_user_address_change_carries_over_to_the_mailbox(sysadmin_client, sysadmin, make_user):
    user = make_user("erin")
    data = changeform_data(sysadmin_client.get(f"/admin/mailboxes/user/{user.pk}/change/"))
    data["email"] = "erin.new@example.test"

    sysadmin_client.post(f"/admin/mailboxes/user/{user.pk}/change/", data)

    user.refresh_from_db()
    assert user.email == user.mailbox.email == "erin.new@example.test"
    assert history_of(user).filter(action_flag=CHANGE, user=sysadmin).count() == 1


def test_a_mailbox_rule_the_service_finds_shows_on_the_user_form(
    sysadmin_client, make_user, make_forward_mailbox
):
    # The user form knows nothing of mailboxes; the service finds the address taken (M11)
    # after the form passed, and its refusal lands on the form instead of a 500.
    make_forward_mailbox(email="taken@example.test")
    user = make_user("frank")
    data = changeform_data(sysadmin_client.get(f"/admin/mailboxes/user/{user.pk}/change/"))
    data["email"] = "taken@example.test"

    response = sysadmin_client.post(f"/admin/mailboxes/user/{user.pk}/change/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["email"] == [
        "Another mailbox already uses this email address."
    ]
    user.refresh_from_db()
    assert user.email == "frank@example.test"


def test_stale_user_edit_is_refused(sysadmin_client, make_user):
    user = make_user("gina")
    data = changeform_data(sysadmin_client.get(f"/admin/mailboxes/user/{user.pk}/change/"))
    meanwhile = User.objects.get(pk=user.pk)
    meanwhile.full_name = "Gina Meanwhile"
    user_save(meanwhile)
    data["full_name"] = "Gina Stale"

    response = sysadmin_client.post(f"/admin/mailboxes/user/{user.pk}/change/", data, follow=True)

    user.refresh_from_db()
    assert user.full_name == "Gina Meanwhile"
    assert any("changed by someone else" in m for m in messages_of(response))


def test_user_who_owns_a_queue_is_not_deleted(sysadmin_client, make_user, make_queue):
    owner = make_user("hank")
    make_queue(name="Support", owner=owner)

    page = sysadmin_client.get(f"/admin/mailboxes/user/{owner.pk}/delete/")
    sysadmin_client.post(f"/admin/mailboxes/user/{owner.pk}/delete/", {"post": "yes"})

    assert "owns these queues: Support" in page.content.decode()
    assert User.objects.filter(pk=owner.pk).exists()


def test_user_is_deleted_with_its_mailbox(sysadmin_client, make_user):
    user = make_user("ivy")

    response = sysadmin_client.post(f"/admin/mailboxes/user/{user.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Mailbox.objects.filter(email="ivy@example.test").exists()


def test_adding_a_queue_creates_its_mailbox(sysadmin_client, sysadmin, make_user):
    owner = make_user("jack")

    sysadmin_client.post(
        "/admin/mailboxes/queue/add/",
        {
            "name": "Sales",
            "queue_type": "public",
            "email": "sales@example.test",
            "owner": str(owner.pk),
            "convert_incoming": "responses",
            "is_active": "on",
        },
    )

    queue = Queue.objects.get(name="Sales")
    assert queue.mailbox.kind == Mailbox.Kind.QUEUE
    assert queue.mailbox.owner == owner
    assert [(e.action_flag, e.user) for e in history_of(queue)] == [(ADDITION, sysadmin)]


def test_deactivating_a_queue_deactivates_its_mailbox(sysadmin_client, make_queue):
    queue = make_queue()
    data = changeform_data(sysadmin_client.get(f"/admin/mailboxes/queue/{queue.pk}/change/"))
    del data["is_active"]

    sysadmin_client.post(f"/admin/mailboxes/queue/{queue.pk}/change/", data)

    assert Mailbox.objects.get(queue=queue).state == Mailbox.State.INACTIVE  # M16


def test_organisation_settings_are_one_record_changed_through_the_service(sysadmin_client, sysadmin, org):
    listing = sysadmin_client.get("/admin/mailboxes/organizationsettings/")
    assert listing.status_code == 302
    assert sysadmin_client.get("/admin/mailboxes/organizationsettings/add/").status_code == 403
    assert sysadmin_client.get("/admin/mailboxes/organizationsettings/1/delete/").status_code == 403

    data = changeform_data(sysadmin_client.get(listing.url))
    del data["approval_required_for_users"]
    sysadmin_client.post(listing.url, data)

    assert OrganizationSettings.load().approval_required_for_users is False
    assert history_of(OrganizationSettings.load()).filter(user=sysadmin).count() == 1


def test_stale_settings_edit_is_refused(sysadmin_client, org):
    url = "/admin/mailboxes/organizationsettings/1/change/"
    data = changeform_data(sysadmin_client.get(url))
    meanwhile = OrganizationSettings.load()
    meanwhile.approval_required_for_queues = False
    organization_settings_save(meanwhile)
    del data["approval_required_for_users"]

    response = sysadmin_client.post(url, data, follow=True)

    assert OrganizationSettings.load().approval_required_for_users is True
    assert any("changed by someone else" in m for m in messages_of(response))
