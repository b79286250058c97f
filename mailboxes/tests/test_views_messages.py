"""Messages that say what to do (issue 16, defect 7)."""

import re

import pytest

from mailboxes.models import Mailbox
from mailboxes.views.mailboxes import last_test_errors
from serverprofiles.connectors import APPROVAL_REQUIRED_MESSAGE
from tests.fixtures.ui import field_block, field_errors, page_form_data

pytestmark = pytest.mark.django_db


def test_the_approval_alert_keeps_its_words_and_says_who_approves_with_what():
    assert APPROVAL_REQUIRED_MESSAGE.startswith("The email address requires approval. ")  # SPEC A2
    assert "Approve Email" in APPROVAL_REQUIRED_MESSAGE
    assert "System Administrator" in APPROVAL_REQUIRED_MESSAGE


def test_one_error_of_several_workloads_is_shown_once_as_general():
    mailbox = Mailbox(incoming_error=APPROVAL_REQUIRED_MESSAGE, outgoing_error=APPROVAL_REQUIRED_MESSAGE)
    assert last_test_errors(mailbox) == [("General", APPROVAL_REQUIRED_MESSAGE)]


def test_each_workloads_own_error_keeps_its_workload():
    mailbox = Mailbox(incoming_error="Connection refused.", outgoing_error="Timed out.")
    assert last_test_errors(mailbox) == [
        ("Incoming Email", "Connection refused."),
        ("Outgoing Email", "Timed out."),
    ]


def conflict_link(response) -> str:
    match = re.search(
        r'<p class="field__conflict">.*?<a href="([^"]+)">', field_block(response, "email"), re.S
    )
    return match.group(1) if match else ""


def test_a_taken_address_links_the_mailbox_that_has_it(sysadmin_client, make_user, make_forward_mailbox):
    other = make_forward_mailbox(email="shared@example.test")
    mailbox = make_user().mailbox
    url = mailbox.get_absolute_url()
    response = sysadmin_client.post(url, page_form_data(sysadmin_client, url, email="Shared@Example.test"))
    assert field_errors(response, "email") == ["Another mailbox already uses this email address."]
    assert conflict_link(response) == other.get_absolute_url()


def test_a_new_users_taken_address_links_the_mailbox_that_has_it(sysadmin_client, make_forward_mailbox):
    other = make_forward_mailbox(email="taken@example.test")
    data = page_form_data(sysadmin_client, "/users/new/", username="bob", email="taken@example.test")
    assert conflict_link(sysadmin_client.post("/users/new/", data)) == other.get_absolute_url()


def test_a_queues_taken_address_links_the_mailbox_that_has_it(sysadmin_client, make_queue, make_user):
    alice = make_user(username="alice")
    queue = make_queue()
    url = queue.get_absolute_url()
    response = sysadmin_client.post(url, page_form_data(sysadmin_client, url, email=alice.email))
    assert conflict_link(response) == alice.mailbox.get_absolute_url()


def test_other_errors_link_nothing(sysadmin_client, make_user):
    mailbox = make_user().mailbox
    url = mailbox.get_absolute_url()
    response = sysadmin_client.post(url, page_form_data(sysadmin_client, url, email="not-an-address"))
    assert conflict_link(response) == ""
