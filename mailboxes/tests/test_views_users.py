"""User pages: /users/, /users/new/, /users/<id>/."""

import pytest
from django.test import Client

from mailboxes.models import ApprovalStatus, Mailbox, User
from tests.fixtures.ui import field_errors, form_data, page_form_data, page_messages

pytestmark = pytest.mark.django_db


def url(user) -> str:
    return f"/users/{user.pk}/"


def test_new_user_gets_a_mailbox_with_the_default_settings(sysadmin_client, profile, org):
    org.default_server_profile = profile
    org.save()
    data = page_form_data(
        sysadmin_client,
        "/users/new/",
        username="alice",
        full_name="Alice Example",
        email="alice@example.test",
    )
    response = sysadmin_client.post("/users/new/", data, follow=True)
    alice = User.objects.get(username="alice")
    assert response.redirect_chain == [(url(alice), 302)]
    assert page_messages(response) == ["The user “alice” and their mailbox were created."]
    assert not alice.has_usable_password()
    assert alice.mailbox.email == "alice@example.test"
    assert alice.mailbox.server_profile == profile
    assert alice.mailbox.approval_status == ApprovalStatus.PENDING
    assert f'href="/mailboxes/{alice.mailbox.pk}/"' in response.content.decode()


def test_new_user_labels(sysadmin_client):
    html = sysadmin_client.get("/users/new/").content.decode()
    for name, label in [
        ("username", "User Name"),
        ("full_name", "Full Name"),
        ("email", "Primary Email"),
        ("is_active", "Active"),
    ]:
        assert f'<label for="id_{name}">{label}</label>' in html


def test_user_address_must_be_free_for_its_mailbox(sysadmin_client, make_forward_mailbox):
    """M11: the user's address is their mailbox's, so no other mailbox may have it."""
    make_forward_mailbox(email="taken@example.test")
    data = page_form_data(sysadmin_client, "/users/new/", username="bob", email="Taken@example.test")
    response = sysadmin_client.post("/users/new/", data)
    assert field_errors(response, "email") == ["Another mailbox already uses this email address."]
    assert not User.objects.filter(username="bob").exists()


def test_username_is_unique(sysadmin_client, make_user):
    make_user(username="carol")
    data = page_form_data(sysadmin_client, "/users/new/", username="carol", email="carol2@example.test")
    response = sysadmin_client.post("/users/new/", data)
    assert field_errors(response, "username") == ["A user with that username already exists."]


def test_changing_the_address_changes_the_mailbox(sysadmin_client, make_user):
    """M12."""
    user = make_user(email="old@example.test")
    sysadmin_client.post(url(user), page_form_data(sysadmin_client, url(user), email="new@example.test"))
    assert Mailbox.objects.get(user=user).email == "new@example.test"


def test_deactivating_the_user_deactivates_the_mailbox(sysadmin_client, make_user):
    """M16."""
    user = make_user()
    response = sysadmin_client.post(
        url(user), page_form_data(sysadmin_client, url(user), is_active=False, save_close="")
    )
    assert response.headers["Location"] == "/users/"
    assert Mailbox.objects.get(user=user).state == Mailbox.State.INACTIVE


def test_user_form_approves_its_mailbox(sysadmin_client, make_user, org):
    user = make_user()
    html = sysadmin_client.get(url(user)).content.decode()
    assert 'value="approve" class="btn">Approve Email</button>' in html
    sysadmin_client.post(
        "/mailboxes/commands/", {"command": "approve", "selected": [user.mailbox.pk], "next": url(user)}
    )
    assert Mailbox.objects.get(user=user).approval_status == ApprovalStatus.APPROVED


def test_user_list_approves_selected_users_mailboxes(sysadmin_client, make_user, org):
    first, second = make_user(), make_user()
    html = sysadmin_client.get("/users/").content.decode()
    assert 'form="user-rows" name="command" value="reject" class="btn">Reject Email</button>' in html
    assert f'name="selected" value="{first.mailbox.pk}"' in html
    sysadmin_client.post(
        "/mailboxes/commands/", {"command": "reject", "selected": [first.mailbox.pk, second.mailbox.pk]}
    )
    assert set(
        Mailbox.objects.filter(user__in=[first, second]).values_list("approval_status", flat=True)
    ) == {ApprovalStatus.REJECTED}


def test_concurrent_user_edits(sysadmin, manager, make_user):
    user = make_user(full_name="Original")
    first, second = Client(), Client()
    first.force_login(sysadmin)
    second.force_login(manager)
    first_data = page_form_data(first, url(user), full_name="First")
    second_data = page_form_data(second, url(user), full_name="Second")
    first.post(url(user), first_data)
    response = second.post(url(user), second_data)
    assert response.status_code == 409
    assert form_data(response.context["form"])["full_name"] == "First"
    user.refresh_from_db()
    assert user.full_name == "First"


def test_user_list_search_and_queries(sysadmin_client, django_assert_num_queries, make_user):
    for n in range(15):
        make_user(username=f"person{n:02d}")
    # 1. the session; 2. the signed-in user; 3-4. their own and group permissions;
    # 5. the page of users with their mailboxes (one JOIN query).
    with django_assert_num_queries(5):
        response = sysadmin_client.get("/users/")
    assert len(response.context["page"]) >= 15
    searched = sysadmin_client.get("/users/", {"q": "PERSON1"})
    assert [u.username for u in searched.context["page"]] == [f"person1{n}" for n in range(5)]
