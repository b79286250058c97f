"""Bulk actions on the mailbox changelist: valid records change, the others are left
unchanged and listed with their reasons, and each action checks its permission."""

import pytest
from django.contrib.admin.models import LogEntry

from mailboxes.models import Mailbox, TestStatus
from mailboxes.services.mailboxes import mailbox_save
from mailboxes.services.users import user_save
from serverprofiles.models import AuthenticationMethod, ServerType
from tests.fixtures.admin import messages_of

CHANGELIST = "/admin/mailboxes/mailbox/"


def run_action(client, action, mailboxes, query="", **fields):
    data = {"action": action, "index": "0", "_selected_action": [str(m.pk) for m in mailboxes], **fields}
    return client.post(CHANGELIST + query, data, follow=True)


def action_names(response) -> set[str]:
    return {name for name, _label in response.context["action_form"].fields["action"].choices if name}


def fresh(mailbox) -> Mailbox:
    return Mailbox.objects.get(pk=mailbox.pk)


def mark_tested(mailbox) -> None:
    Mailbox.objects.filter(pk=mailbox.pk).update(
        incoming_status=TestStatus.SUCCESS, outgoing_status=TestStatus.SUCCESS, enabled_incoming=True
    )


@pytest.fixture
def sysadmin_client(client_for, sysadmin):
    return client_for(sysadmin)


@pytest.fixture
def exchange_profile(make_profile):
    return make_profile(
        name="Contoso Exchange",
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )


@pytest.fixture
def alice(make_user, profile):
    mailbox = make_user("alice").mailbox
    mailbox.server_profile = profile
    return mailbox_save(mailbox)


@pytest.fixture
def bob(make_user, profile):
    mailbox = make_user("bob").mailbox
    mailbox.server_profile = profile
    return mailbox_save(mailbox)


# Set Server Profile… ----------------------------------------------------------------------


def test_set_server_profile_shows_an_intermediate_page_first(sysadmin_client, alice, bob, make_profile):
    target = make_profile(name="New IMAP")

    response = run_action(sysadmin_client, "set_server_profile", [alice, bob])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/mailboxes/mailbox/change_multiple.html"
    content = response.content.decode()
    assert "2 mailboxes selected" in content
    assert "New IMAP" in content
    assert fresh(alice).server_profile_id != target.pk  # nothing changed yet


def test_set_server_profile_changes_valid_mailboxes_and_refuses_the_others(
    sysadmin_client, sysadmin, alice, bob, make_user, make_forward_mailbox, exchange_profile, make_profile
):
    target = make_profile(name="New IMAP")
    mark_tested(alice)
    forward = make_forward_mailbox()
    # M8: on the Exchange profile carol syncs appointments; the IMAP target has none.
    carol = make_user("carol").mailbox
    carol.server_profile, carol.act_method = exchange_profile, "server-side-sync"
    carol = mailbox_save(carol)

    response = run_action(
        sysadmin_client,
        "set_server_profile",
        [alice, bob, forward, carol],
        server_profile=target.pk,
        apply="yes",
    )

    assert fresh(alice).server_profile == fresh(bob).server_profile == fresh(forward).server_profile == target
    assert fresh(carol).server_profile == exchange_profile  # unchanged
    assert fresh(carol).version == carol.version
    assert fresh(alice).incoming_status == TestStatus.NOT_RUN  # M13
    assert fresh(alice).enabled_incoming is False
    assert fresh(alice).version == alice.version + 1
    [message] = messages_of(response)
    assert message == (
        "3 updated, 1 refused: carol@example.test: Appointments, Contacts, and Tasks: Appointments, "
        "Contacts, and Tasks cannot use Server-Side Synchronization with a POP3/SMTP or IMAP/SMTP "
        "server profile: those servers carry no calendars or contacts."
    )
    entry = LogEntry.objects.get(object_id=str(alice.pk), user=sysadmin, action_flag=2)
    assert entry.get_change_message() == "Changed Server Profile."


def test_set_server_profile_refuses_own_credentials_without_a_user_credentials_profile(
    sysadmin_client, alice, make_profile
):
    alice.allow_credentials, alice.username = True, "alice"
    alice.set_password("alice-pass")
    alice = mailbox_save(alice)
    target = make_profile(
        name="Shared login",
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username="svc",
        password="svc-pass",
    )

    response = run_action(
        sysadmin_client, "set_server_profile", [alice], server_profile=target.pk, apply="yes"
    )

    assert fresh(alice).server_profile_id == alice.server_profile_id
    [message] = messages_of(response)
    assert message.startswith("0 updated, 1 refused: alice@example.test: Allow to Use Credentials for Email")


def test_set_server_profile_on_all_matching_keeps_the_list_filters(
    sysadmin_client, alice, bob, make_forward_mailbox, make_profile
):
    target = make_profile(name="New IMAP")
    forward = make_forward_mailbox()

    # As in the browser: the page's rows are ticked, then "Select all … mailboxes".
    page = run_action(
        sysadmin_client, "set_server_profile", [alice], query="?kind__exact=user", select_across="1"
    )
    response = run_action(
        sysadmin_client,
        "set_server_profile",
        [alice],
        query="?kind__exact=user",
        select_across="1",
        server_profile=target.pk,
        apply="yes",
    )

    assert "all that match the list's filters" in page.content.decode()
    user_mailboxes = Mailbox.objects.filter(kind="user")
    assert fresh(alice).server_profile == fresh(bob).server_profile == target
    assert not user_mailboxes.exclude(server_profile=target).exists()
    assert fresh(forward).server_profile != target
    assert messages_of(response) == [f"{user_mailboxes.count()} updated."]


# Set Delivery Methods… --------------------------------------------------------------------


def test_set_delivery_methods_checks_each_kind(sysadmin_client, alice, make_queue, make_forward_mailbox):
    queue = make_queue().mailbox  # already sends through Server-Side Synchronization
    forward = make_forward_mailbox()
    alice.outgoing_method = "none"
    alice = mailbox_save(alice)
    mark_tested(alice)

    response = run_action(
        sysadmin_client,
        "set_delivery_methods",
        [alice, queue, forward],
        outgoing_method="server-side-sync",
        incoming_method="",
        act_method="",
        apply="yes",
    )

    assert fresh(alice).outgoing_method == fresh(queue).outgoing_method == "server-side-sync"
    assert fresh(forward).outgoing_method == "none"
    assert fresh(alice).outgoing_status == TestStatus.NOT_RUN
    assert fresh(alice).incoming_status == TestStatus.SUCCESS  # only the workload concerned resets
    [message] = messages_of(response)
    assert message.startswith("1 updated, 1 unchanged, 1 refused: ")
    assert f"{forward.email}: Outgoing Email: A forward mailbox's Outgoing Email must be None." in message


def test_set_delivery_methods_needs_a_choice(sysadmin_client, alice):
    response = run_action(
        sysadmin_client,
        "set_delivery_methods",
        [alice],
        incoming_method="",
        outgoing_method="",
        act_method="",
        apply="yes",
    )

    assert "Choose at least one delivery method to change." in response.content.decode()
    assert fresh(alice).version == alice.version


def test_outlook_is_refused_for_queue_mailboxes(sysadmin_client, alice, make_queue):
    queue = make_queue().mailbox

    response = run_action(
        sysadmin_client, "set_delivery_methods", [alice, queue], incoming_method="outlook", apply="yes"
    )

    assert fresh(alice).incoming_method == "outlook"
    assert fresh(queue).incoming_method == queue.incoming_method
    assert "Incoming Email: A queue mailbox's Incoming Email must be" in messages_of(response)[0]


# Approve Email / Reject Email ---------------------------------------------------------------


def test_approve_and_reject_email(sysadmin_client, alice, bob, make_forward_mailbox):
    forward = make_forward_mailbox()
    assert fresh(alice).approval_status == "pending"

    approved = run_action(sysadmin_client, "approve_email", [alice, forward])
    rejected = run_action(sysadmin_client, "reject_email", [bob])

    assert fresh(alice).approval_status == "approved"
    assert fresh(bob).approval_status == "rejected"
    assert fresh(forward).approval_status == "empty"
    assert messages_of(approved) == [
        f"1 approved, 1 refused: {forward.email}: "
        f"{forward.email}: approval does not apply to forward mailboxes."
    ]
    assert messages_of(rejected) == ["1 rejected."]


def test_approval_needs_its_permission(client_for, manager, alice):
    client = client_for(manager)  # a Mailbox Manager may not approve (A1)

    listing = client.get(CHANGELIST)
    response = run_action(client, "approve_email", [alice])

    assert "approve_email" not in action_names(listing)
    assert "set_server_profile" in action_names(listing)
    assert fresh(alice).approval_status == "pending"
    assert messages_of(response) == ["No action selected."]


# Activate / Deactivate ---------------------------------------------------------------------


def test_deactivate_and_activate(sysadmin_client, alice, bob):
    bob_user = bob.user
    bob_user.is_active = False
    user_save(bob_user)  # deactivates bob's mailbox too (M16)

    deactivated = run_action(sysadmin_client, "deactivate", [alice])
    activated = run_action(sysadmin_client, "activate", [alice, bob])

    assert messages_of(deactivated) == ["1 deactivated."]
    assert fresh(alice).state == "active"
    assert fresh(bob).state == "inactive"
    assert messages_of(activated) == [
        "1 activated, 1 refused: bob@example.test: "
        "Status: The mailbox cannot be active while its user is inactive."
    ]


def test_deactivate_clears_the_enabled_flags(sysadmin_client, alice):
    mark_tested(alice)

    run_action(sysadmin_client, "deactivate", [alice])

    assert fresh(alice).state == "inactive"
    assert fresh(alice).enabled_incoming is False


# Apply Default Email Settings ------------------------------------------------------------


def test_apply_default_settings(sysadmin_client, org, alice, make_forward_mailbox, make_profile):
    default = make_profile(name="Org default")
    org.default_server_profile, org.default_outgoing = default, "none"
    org.save()
    forward = make_forward_mailbox()

    response = run_action(sysadmin_client, "apply_default_settings", [alice, forward])

    assert fresh(alice).server_profile == default
    assert fresh(alice).outgoing_method == "none"
    assert fresh(forward).server_profile == default
    assert messages_of(response) == ["2 updated."]


def test_apply_default_settings_refuses_a_forward_mailbox_without_a_default_profile(
    sysadmin_client, org, make_forward_mailbox
):
    forward = make_forward_mailbox()
    assert org.default_server_profile is None

    response = run_action(sysadmin_client, "apply_default_settings", [forward])

    assert fresh(forward).server_profile == forward.server_profile
    assert messages_of(response) == [
        f"0 updated, 1 refused: {forward.email}: Server Profile: The organisation has no default "
        "server profile to give this forward mailbox."
    ]


# Delete --------------------------------------------------------------------------------------


def test_bulk_delete_lists_user_mailboxes_as_refused(sysadmin_client, alice, make_forward_mailbox):
    forward = make_forward_mailbox()

    page = run_action(sysadmin_client, "delete_selected", [alice, forward])
    confirmed = run_action(sysadmin_client, "delete_selected", [alice, forward], post="yes")

    assert "it is deleted only with its user" in page.content.decode()
    assert "Yes, I’m sure" not in page.content.decode()
    assert Mailbox.objects.filter(pk=alice.pk).exists()
    assert not Mailbox.objects.filter(pk=forward.pk).exists()
    assert messages_of(confirmed)[0].startswith("1 deleted, 1 refused: ")


# Permissions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("apply_default_settings", {}),
        ("set_server_profile", {"apply": "yes"}),
        ("set_delivery_methods", {"apply": "yes", "outgoing_method": "none"}),
        ("activate", {}),
        ("deactivate", {}),
        ("approve_email", {}),
        ("reject_email", {}),
        ("test_and_enable", {}),
        ("delete_selected", {"post": "yes"}),
    ],
)
def test_read_only_role_can_run_no_action(client_for, readonly, alice, make_profile, action, fields):
    client = client_for(readonly)
    if action == "set_server_profile":
        fields["server_profile"] = make_profile().pk
    before = fresh(alice)

    listing = client.get(CHANGELIST)
    response = run_action(client, action, [alice], **fields)

    assert listing.context["action_form"] is None
    assert response.status_code == 200
    after = fresh(alice)
    assert (after.version, after.state, after.approval_status) == (
        before.version,
        before.state,
        before.approval_status,
    )


# Test & Enable -------------------------------------------------------------------------------


def test_test_and_enable_schedules_the_selected_mailboxes(sysadmin_client, alice):
    response = run_action(sysadmin_client, "test_and_enable", [alice])

    assert messages_of(response) == [
        "Test & Enable scheduled for 1 mailbox; the results show on each mailbox when its test has run."
    ]
    tested = fresh(alice)
    # Run at once by the tests' task backend; approval is required and alice is pending (A2).
    assert tested.test_completed_on is not None
    assert tested.incoming_status == "failure"
    assert tested.incoming_error.startswith("The email address requires approval.")


def test_test_and_enable_needs_its_permission(client_for, make_user, alice):
    from django.contrib.auth.models import Group

    clerk = make_user("clerk", is_staff=True)
    clerk.groups.add(Group.objects.get(name="Read-only"))
    clerk.user_permissions.add(
        *Group.objects.get(name="Mailbox Manager").permissions.exclude(codename="test_mailbox")
    )
    client = client_for(clerk)

    listing = client.get(CHANGELIST)
    response = run_action(client, "test_and_enable", [alice])

    assert "test_and_enable" not in action_names(listing)
    assert "deactivate" in action_names(listing)
    assert messages_of(response) == ["No action selected."]


# A damaged selection ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "²", "9" * 30])
@pytest.mark.parametrize("action", ["deactivate", "set_server_profile", "test_and_enable"])
def test_a_selected_value_that_is_no_id_refuses_the_action_with_a_message(
    sysadmin_client, alice, action, value
):
    response = sysadmin_client.post(
        CHANGELIST, {"action": action, "index": "0", "_selected_action": [str(alice.pk), value]}, follow=True
    )

    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert messages_of(response) == [
        "Nothing was changed: the selection holds a value that is not the id of any mailbox. "
        "Reload the page and select the rows again."
    ]
    assert (fresh(alice).state, fresh(alice).test_completed_on) == ("active", None)


def test_a_damaged_selection_of_groups_refuses_the_action_with_a_message(sysadmin_client):
    from django.contrib.auth.models import Group

    groups = "/admin/auth/group/"
    kept = Group.objects.create(name="Kept")
    data = {"action": "delete_selected", "index": "0", "_selected_action": [str(kept.pk), "abc"]}

    response = sysadmin_client.post(groups, data, follow=True)

    assert response.redirect_chain == [(groups, 302)]
    assert messages_of(response) == [
        "Nothing was changed: the selection holds a value that is not the id of any group. "
        "Reload the page and select the rows again."
    ]
    assert Group.objects.filter(pk=kept.pk).exists()
