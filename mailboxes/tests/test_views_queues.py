"""Queue pages: /queues/, /queues/new/, /queues/<id>/."""

import pytest
from django.test import Client

from mailboxes.models import ApprovalStatus, Mailbox, Queue
from tests.fixtures.ui import field_errors, form_data, page_form_data, page_messages

pytestmark = pytest.mark.django_db


def url(queue) -> str:
    return f"/queues/{queue.pk}/"


def test_new_queue_gets_its_mailbox(sysadmin_client, make_user, org):
    owner = make_user(username="owner")
    data = page_form_data(
        sysadmin_client, "/queues/new/", name="Support", email="support@example.test", owner="owner"
    )
    response = sysadmin_client.post("/queues/new/", data, follow=True)
    queue = Queue.objects.get(name="Support")
    assert response.redirect_chain == [(url(queue), 302)]
    assert page_messages(response) == ["The queue “Support” and its mailbox were created."]
    assert queue.owner == owner
    assert queue.mailbox.email == "support@example.test"
    assert queue.mailbox.owner == owner
    assert queue.mailbox.approval_status == ApprovalStatus.PENDING


def test_queue_labels(sysadmin_client):
    html = sysadmin_client.get("/queues/new/").content.decode()
    for name, label in [
        ("name", "Name"),
        ("queue_type", "Type"),
        ("email", "Incoming Email"),
        ("owner", "Owner"),
        ("description", "Description"),
        ("convert_incoming", "Convert Incoming Email To Activities"),
        ("is_active", "Active"),
    ]:
        assert f'<label for="id_{name}">{label}</label>' in html


def test_owner_must_be_an_existing_user(sysadmin_client):
    data = page_form_data(
        sysadmin_client, "/queues/new/", name="Support", email="s@example.test", owner="nobody"
    )
    response = sysadmin_client.post("/queues/new/", data)
    assert field_errors(response, "owner") == ["There is no user with this user name."]
    assert not Queue.objects.exists()


def test_queue_address_must_be_free_for_its_mailbox(sysadmin_client, make_user, make_forward_mailbox):
    make_user(username="owner")
    make_forward_mailbox(email="support@example.test")
    data = page_form_data(
        sysadmin_client, "/queues/new/", name="Support", email="SUPPORT@example.test", owner="owner"
    )
    response = sysadmin_client.post("/queues/new/", data)
    assert field_errors(response, "email") == ["Another mailbox already uses this email address."]
    assert not Queue.objects.exists()


def test_new_owner_becomes_the_mailbox_owner(sysadmin_client, make_queue, make_user):
    queue = make_queue()
    make_user(username="newowner")
    sysadmin_client.post(url(queue), page_form_data(sysadmin_client, url(queue), owner="newowner"))
    assert Mailbox.objects.get(queue=queue).owner.username == "newowner"


def test_deactivating_the_queue_deactivates_its_mailbox(sysadmin_client, make_queue):
    queue = make_queue()
    sysadmin_client.post(url(queue), page_form_data(sysadmin_client, url(queue), is_active=False))
    assert Mailbox.objects.get(queue=queue).state == Mailbox.State.INACTIVE


def test_queue_form_and_list_offer_approval(sysadmin_client, make_queue, org):
    queue = make_queue()
    form_html = sysadmin_client.get(url(queue)).content.decode()
    assert 'value="approve" class="btn">Approve Email</button>' in form_html
    assert f'href="/mailboxes/{queue.mailbox.pk}/"' in form_html
    list_html = sysadmin_client.get("/queues/").content.decode()
    assert 'form="queue-rows" name="command" value="approve" class="btn">Approve Email</button>' in list_html
    sysadmin_client.post("/mailboxes/commands/", {"command": "approve", "selected": [queue.mailbox.pk]})
    assert Mailbox.objects.get(queue=queue).approval_status == ApprovalStatus.APPROVED


def test_concurrent_queue_edits(sysadmin, manager, make_queue):
    queue = make_queue(description="original")
    first, second = Client(), Client()
    first.force_login(sysadmin)
    second.force_login(manager)
    first_data = page_form_data(first, url(queue), description="first")
    second_data = page_form_data(second, url(queue), description="second")
    first.post(url(queue), first_data)
    response = second.post(url(queue), second_data)
    assert response.status_code == 409
    assert form_data(response.context["form"])["description"] == "first"
    queue.refresh_from_db()
    assert queue.description == "first"


def test_queue_list_queries(sysadmin_client, django_assert_num_queries, make_queue):
    for _ in range(12):
        make_queue()
    # 1. the session; 2. the signed-in user; 3-4. their own and group permissions;
    # 5. the page of queues with their owners and mailboxes (one JOIN query).
    with django_assert_num_queries(5):
        response = sysadmin_client.get("/queues/")
    assert len(response.context["page"]) == 12


def test_new_queue_owner_defaults_to_whoever_creates_it(manager_client, manager, org):
    data = page_form_data(manager_client, "/queues/new/", name="Support", email="support@example.test")
    assert data["owner"] == "manager"
    manager_client.post("/queues/new/", data)
    assert Queue.objects.get(name="Support").owner == manager


def test_owner_input_offers_suggestions(sysadmin_client):
    html = sysadmin_client.get("/queues/new/").content.decode()
    assert 'data-listbox="id_owner_listbox"' in html
    assert 'data-user-picker="/users/autocomplete/"' in html
    assert '<ul id="id_owner_listbox" class="picker__listbox" role="listbox" hidden></ul>' in html
