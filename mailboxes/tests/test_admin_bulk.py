"""The set-wise bulk service behind Set Server Profile… and Set Delivery Methods…:
a fixed number of queries per chunk, every rule checked, the same consequences and
history as mailbox_save."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from mailboxadmin.outcomes import BulkOutcome, Refusal
from mailboxes.models import Mailbox, Queue, TestStatus, User
from mailboxes.services.bulk import (
    mailboxes_change,
    mailboxes_set_delivery_methods,
    mailboxes_set_server_profile,
)
from mailboxes.services.mailboxes import mailbox_save
from serverprofiles.models import AuthenticationMethod, ServerType


def ids(mailboxes) -> list[int]:
    return [m.pk for m in mailboxes]


@pytest.fixture(autouse=True)
def _content_types_cached(db):
    ContentType.objects.get_for_model(Mailbox)  # counted queries stay about the rows


@pytest.fixture
def target(make_profile):
    return make_profile(name="Target IMAP")


def test_queries_per_chunk_do_not_depend_on_its_rows(
    many_mailboxes, target, sysadmin, django_assert_num_queries
):
    # SAVEPOINT; the chunk, locked; its server profiles; its inactive users and its
    # queues' states and owners (M16, one query per kind of mailbox present); one UPDATE
    # (all rows get the same new values); the history entries in one INSERT; RELEASE
    # SAVEPOINT. (No query for M11: addresses do not change, the unique index holds.)
    selected = ids(many_mailboxes)
    with django_assert_num_queries(8):
        outcome = mailboxes_set_server_profile(selected, server_profile=target, actor=sysadmin)

    assert outcome.updated == len(selected)
    assert not outcome.refused


def test_rules_reading_users_and_queues_hold_without_loading_them(
    many_mailboxes, target, sysadmin, make_user
):
    idle = make_user("idle").mailbox
    # Rows as an edit outside the application could leave them: an active mailbox of an
    # inactive user (M16), a queue whose owner its mailbox does not follow yet.
    User.objects.filter(pk=idle.user_id).update(is_active=False)
    queued = Mailbox.objects.filter(kind="queue").first()
    Queue.objects.filter(pk=queued.queue_id).update(owner=sysadmin)

    outcome = mailboxes_set_server_profile([idle.pk, queued.pk], server_profile=target, actor=sysadmin)

    assert [r.record for r in outcome.refused] == [idle.email]
    assert "cannot be active while its user is inactive" in outcome.refused[0].reasons
    assert Mailbox.objects.get(pk=idle.pk).server_profile_id != target.pk
    assert Mailbox.objects.values_list("server_profile_id", "owner_id").get(pk=queued.pk) == (
        target.pk,
        sysadmin.pk,
    )


def test_chunks_each_cost_the_same(many_mailboxes, target, sysadmin, django_assert_num_queries):
    rows = sorted(ids(many_mailboxes))[:10]

    # Two chunks of five user mailboxes: as above, without the queues' query.
    with django_assert_num_queries(2 * 7):
        mailboxes_change(
            rows, change=lambda m: setattr(m, "server_profile", target), actor=sysadmin, chunk_size=5
        )


def test_changed_rows_get_a_version_test_reset_and_one_history_entry(make_user, profile, target, sysadmin):
    mailbox = make_user("alice").mailbox
    mailbox.server_profile = profile
    mailbox = mailbox_save(mailbox)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        incoming_status=TestStatus.SUCCESS, enabled_incoming=True, incoming_error=""
    )

    mailboxes_set_server_profile([mailbox.pk], server_profile=target, actor=sysadmin)

    changed = Mailbox.objects.get(pk=mailbox.pk)
    assert changed.server_profile == target
    assert changed.version == mailbox.version + 1
    assert changed.incoming_status == TestStatus.NOT_RUN  # M13
    assert changed.enabled_incoming is False
    [entry] = LogEntry.objects.filter(object_id=str(mailbox.pk), action_flag=CHANGE, user=sysadmin)
    assert entry.get_change_message() == "Changed Server Profile."


def test_unchanged_rows_keep_their_version_and_get_no_history(make_forward_mailbox, profile, sysadmin):
    forward = make_forward_mailbox()

    outcome = mailboxes_set_server_profile([forward.pk], server_profile=profile, actor=sysadmin)

    assert (outcome.updated, outcome.unchanged) == (0, 1)
    assert Mailbox.objects.get(pk=forward.pk).version == forward.version
    assert not LogEntry.objects.filter(object_id=str(forward.pk), action_flag=CHANGE).exists()


def test_clearing_the_profile_of_a_forward_mailbox_is_refused(make_forward_mailbox, make_user):
    forward = make_forward_mailbox()
    user_mailbox = make_user("bob").mailbox

    outcome = mailboxes_set_server_profile([forward.pk, user_mailbox.pk], server_profile=None)

    assert outcome.refused == [
        Refusal(forward.email, "Server Profile: A forward mailbox must have a server profile.")  # M5
    ]
    assert Mailbox.objects.get(pk=forward.pk).server_profile_id == forward.server_profile_id


def test_own_credentials_need_a_user_credentials_profile(make_forward_mailbox, make_profile):
    forward = make_forward_mailbox(allow_credentials=True, username="svc", password="pw")
    shared = make_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS, incoming_username="svc", password="pw"
    )

    outcome = mailboxes_set_server_profile([forward.pk], server_profile=shared)

    [refusal] = outcome.refused
    assert refusal.reasons.startswith("Allow to Use Credentials for Email Processing: ")  # M7
    assert Mailbox.objects.get(pk=forward.pk).get_password() == "pw"


def test_act_sync_needs_an_exchange_profile(make_user, make_profile):
    exchange = make_profile(
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )
    mailbox = make_user("carol").mailbox
    mailbox.server_profile = exchange
    mailbox_save(mailbox)

    synced = mailboxes_set_delivery_methods([mailbox.pk], act_method="server-side-sync")
    moved = mailboxes_set_server_profile([mailbox.pk], server_profile=make_profile())

    assert synced.updated == 1
    assert moved.refused[0].reasons.startswith("Appointments, Contacts, and Tasks: ")  # M8


def test_forward_mailbox_method_needs_a_usable_forward_mailbox(make_user, make_forward_mailbox, sysadmin):
    alice = make_user("alice").mailbox

    without = mailboxes_set_delivery_methods([alice.pk], incoming_method="forward-mailbox")
    make_forward_mailbox()
    with_one = mailboxes_set_delivery_methods([alice.pk], incoming_method="forward-mailbox")

    assert without.refused[0].reasons.startswith(
        "Incoming Email: Incoming Email = Forward Mailbox needs"
    )  # M14
    assert with_one.updated == 1
    assert Mailbox.objects.get(pk=alice.pk).incoming_method == "forward-mailbox"


def test_a_forward_mailbox_cannot_forward_to_itself(make_forward_mailbox):
    forward = make_forward_mailbox()

    outcome = mailboxes_set_delivery_methods([forward.pk], incoming_method="forward-mailbox")

    assert outcome.refused[0].reasons.startswith("Incoming Email: A forward mailbox's Incoming Email")  # M4


def test_a_value_outside_the_choices_is_refused(make_user):
    mailbox = make_user("dora").mailbox

    outcome = mailboxes_set_delivery_methods([mailbox.pk], outgoing_method="carrier-pigeon")

    assert outcome.refused[0].reasons.startswith(
        "Outgoing Email: Value 'carrier-pigeon' is not a valid choice."
    )


def test_a_bulk_change_never_touches_an_address(make_user):
    mailbox = make_user("erin").mailbox

    with pytest.raises(ValueError, match="address, kind or Regarding"):
        mailboxes_change([mailbox.pk], change=lambda m: setattr(m, "email", "other@example.test"))

    assert Mailbox.objects.get(pk=mailbox.pk).email == "erin@example.test"


def test_a_forward_mailbox_cannot_be_approved_in_bulk(make_user, make_forward_mailbox, sysadmin):
    # M13a: clean() refuses approval on a forward mailbox (the constraint
    # mailbox_forward_methods says the same in the database); the user mailbox changes.
    user_mailbox = make_user("fred").mailbox
    forward = make_forward_mailbox()

    outcome = mailboxes_change(
        [user_mailbox.pk, forward.pk],
        change=lambda m: setattr(m, "approval_status", "approved"),
        actor=sysadmin,
    )

    assert outcome.updated == 1
    assert [r.record for r in outcome.refused] == [forward.email]
    assert Mailbox.objects.get(pk=user_mailbox.pk).approval_status == "approved"
    assert Mailbox.objects.get(pk=forward.pk).approval_status == "empty"


def test_summary_lists_refusals_up_to_a_limit():
    outcome = BulkOutcome(
        updated=3, unchanged=1, refused=[Refusal(f"m{n}@x.test", "Reason.") for n in range(12)]
    )

    assert outcome.summary(limit=2) == (
        "3 updated, 1 unchanged, 12 refused: m0@x.test: Reason.; m1@x.test: Reason.; and 10 more."
    )
    assert BulkOutcome(updated=2).summary() == "2 updated."
