"""Rules M1–M16: each rejects with its message on the right field, and accepts its neighbour."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from mailboxes.models import (
    ActMethod,
    ApprovalStatus,
    IncomingMethod,
    Mailbox,
    OutgoingMethod,
    TestStatus,
)
from mailboxes.models.mailboxes import M6_MESSAGE, M15_WARNING
from mailboxes.services.mailboxes import (
    forward_mailbox_create,
    forward_mailbox_delete,
    mailbox_save,
)
from mailboxes.services.queues import queue_save
from mailboxes.services.users import user_save
from mailboxes.tests.rules import rejected
from serverprofiles.models import AuthenticationMethod, ServerType

pytestmark = pytest.mark.django_db


# M1 -------------------------------------------------------------------------------


def test_forward_mailbox_cannot_become_a_user_mailbox(make_forward_mailbox, make_user):
    forward = make_forward_mailbox()
    forward.kind = Mailbox.Kind.USER
    forward.user = make_user()
    with pytest.raises(ValidationError, match="fixed when it is created"):
        mailbox_save(forward)
    assert Mailbox.objects.get(pk=forward.pk).kind == Mailbox.Kind.FORWARD


def test_user_mailbox_cannot_become_a_forward_mailbox(make_user):
    mailbox = make_user().mailbox
    mailbox.kind = Mailbox.Kind.FORWARD
    mailbox.user = None
    with pytest.raises(ValidationError, match="fixed when it is created"):
        mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).kind == Mailbox.Kind.USER


def test_user_mailbox_cannot_be_deleted_on_its_own(make_user):
    mailbox = make_user().mailbox
    with pytest.raises(ValidationError, match="deleted only with its user"):
        forward_mailbox_delete(mailbox=mailbox)
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()


def test_forward_mailbox_can_be_deleted(make_forward_mailbox):
    forward = make_forward_mailbox()
    forward_mailbox_delete(mailbox=forward)
    assert not Mailbox.objects.filter(pk=forward.pk).exists()


def test_deleting_a_user_deletes_its_mailbox(make_user):
    user = make_user()
    mailbox_id = user.mailbox.pk
    user.delete()
    assert not Mailbox.objects.filter(pk=mailbox_id).exists()


def test_each_user_and_queue_has_exactly_one_mailbox(make_user, make_queue):
    user, queue = make_user(), make_queue()
    assert Mailbox.objects.filter(user=user).count() == 1
    assert Mailbox.objects.filter(queue=queue).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Mailbox.objects.create(kind=Mailbox.Kind.USER, user=user, name="Second", email="second@example.test")


# M2 -------------------------------------------------------------------------------


def test_forward_mailbox_has_no_regarding(make_forward_mailbox):
    assert make_forward_mailbox().regarding is None


def test_database_refuses_a_forward_mailbox_with_regarding(profile, make_user):
    with pytest.raises(IntegrityError), transaction.atomic():
        Mailbox.objects.create(
            kind=Mailbox.Kind.FORWARD,
            user=make_user(),
            name="X",
            email="x@example.test",
            server_profile=profile,
        )


# M3 -------------------------------------------------------------------------------


def test_forward_mailbox_rejects_outgoing_method(make_forward_mailbox):
    forward = make_forward_mailbox()
    forward.outgoing_method = OutgoingMethod.SERVER_SIDE_SYNC
    with rejected("outgoing_method", "Outgoing Email must be None", unchanged=[forward]):
        mailbox_save(forward)


def test_forward_mailbox_accepts_outgoing_none(make_forward_mailbox):
    forward = make_forward_mailbox(name="Before")
    forward.name = "After"
    mailbox_save(forward)
    assert Mailbox.objects.get(pk=forward.pk).outgoing_method == OutgoingMethod.NONE


# M4 -------------------------------------------------------------------------------


def test_forward_mailbox_rejects_forward_mailbox_incoming(make_forward_mailbox):
    forward = make_forward_mailbox()
    forward.incoming_method = IncomingMethod.FORWARD_MAILBOX
    with rejected("incoming_method", "None or Server-Side", unchanged=[forward]):
        mailbox_save(forward)


def test_forward_mailbox_rejects_outlook_incoming_at_creation(profile):
    with rejected("incoming_method"):
        forward_mailbox_create(
            name="F", email="f@example.test", server_profile=profile, incoming_method=IncomingMethod.OUTLOOK
        )
    assert not Mailbox.objects.filter(email="f@example.test").exists()


def test_forward_mailbox_rejects_act_method(make_forward_mailbox):
    forward = make_forward_mailbox()
    forward.act_method = ActMethod.SERVER_SIDE_SYNC
    with rejected("act_method", "must be None", unchanged=[forward]):
        mailbox_save(forward)


def test_forward_mailbox_accepts_incoming_none(make_forward_mailbox):
    forward = make_forward_mailbox()
    forward.incoming_method = IncomingMethod.NONE
    mailbox_save(forward)
    assert Mailbox.objects.get(pk=forward.pk).incoming_method == IncomingMethod.NONE


# M5 -------------------------------------------------------------------------------


def test_forward_mailbox_requires_server_profile(db):
    with rejected("server_profile", "must have a server profile"):
        forward_mailbox_create(name="F", email="f@example.test", server_profile=None)
    assert not Mailbox.objects.exists()


def test_forward_mailbox_with_server_profile_is_created(profile):
    forward = forward_mailbox_create(name="F", email="f@example.test", server_profile=profile)
    assert forward.server_profile == profile
    assert forward.approval_status == ApprovalStatus.EMPTY


# M6 -------------------------------------------------------------------------------


def test_user_mailbox_rejects_delete_after_processing(make_user):
    mailbox = make_user().mailbox
    mailbox.delete_after_processing = True
    with rejected("delete_after_processing", M6_MESSAGE, unchanged=[mailbox]):
        mailbox_save(mailbox)


def test_m6_message_is_word_for_word():
    assert M6_MESSAGE == "The Delete Emails after Processing option cannot be set to Yes for user mailboxes."


def test_queue_mailbox_accepts_delete_after_processing(make_queue):
    mailbox = make_queue().mailbox
    mailbox.delete_after_processing = True
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).delete_after_processing


def test_forward_mailbox_accepts_delete_after_processing(profile):
    forward = forward_mailbox_create(
        name="F", email="f@example.test", server_profile=profile, delete_after_processing=True
    )
    assert forward.delete_after_processing


# M7 -------------------------------------------------------------------------------


def test_credentials_rejected_when_profile_uses_its_own(make_user, make_profile):
    profile = make_profile(
        incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS,
        incoming_username="svc",
        password="Profile-Secret-1",
    )
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox.allow_credentials = True
    mailbox.username = "alice"
    mailbox.set_password("Mailbox-Secret-1")
    with rejected("allow_credentials", "Credentials Specified by a User or Queue", unchanged=[mailbox]):
        mailbox_save(mailbox)


def test_credentials_require_user_name_and_password(make_user, profile):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox.allow_credentials = True
    with pytest.raises(ValidationError) as info:
        mailbox_save(mailbox)
    assert set(info.value.message_dict) == {"username", "password"}
    assert not Mailbox.objects.get(pk=mailbox.pk).allow_credentials


def test_credentials_accepted_with_user_credentials_profile(make_user, profile):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox.allow_credentials = True
    mailbox.username = "alice"
    mailbox.set_password("Mailbox-Secret-1")
    mailbox_save(mailbox)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert stored.username == "alice"
    assert stored.get_password() == "Mailbox-Secret-1"


def test_turning_credentials_off_removes_them(make_user, profile):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox.allow_credentials, mailbox.username = True, "alice"
    mailbox.set_password("Mailbox-Secret-1")
    mailbox_save(mailbox)
    mailbox.allow_credentials = False
    mailbox_save(mailbox)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert (stored.username, stored.password_ciphertext) == ("", "")


# M8 -------------------------------------------------------------------------------


@pytest.mark.parametrize("server_type", [ServerType.IMAP_SMTP, ServerType.POP3_SMTP])
def test_act_sync_rejected_with_pop3_or_imap_profile(make_user, make_profile, server_type):
    mailbox = make_user().mailbox
    mailbox.server_profile = make_profile(server_type=server_type)
    mailbox.act_method = ActMethod.SERVER_SIDE_SYNC
    with rejected("act_method", "carry no calendars", unchanged=[mailbox]):
        mailbox_save(mailbox)


def test_act_sync_accepted_with_exchange_profile(make_user, make_profile):
    exchange = make_profile(
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )
    mailbox = make_user().mailbox
    mailbox.server_profile = exchange
    mailbox.act_method = ActMethod.SERVER_SIDE_SYNC
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).act_method == ActMethod.SERVER_SIDE_SYNC


# M9 -------------------------------------------------------------------------------


def test_queue_mailbox_rejects_act_method(make_queue, make_profile):
    mailbox = make_queue().mailbox
    mailbox.server_profile = make_profile(
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )
    mailbox.act_method = ActMethod.SERVER_SIDE_SYNC
    with rejected("act_method", "queue mailbox", unchanged=[mailbox]):
        mailbox_save(mailbox)


def test_queue_mailbox_accepts_forward_mailbox_incoming(make_queue, make_forward_mailbox):
    make_forward_mailbox()
    mailbox = make_queue().mailbox
    mailbox.incoming_method = IncomingMethod.FORWARD_MAILBOX
    mailbox.outgoing_method = OutgoingMethod.SERVER_SIDE_SYNC
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).incoming_method == IncomingMethod.FORWARD_MAILBOX


# M10 ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["incoming_method", "outgoing_method"])
def test_queue_mailbox_rejects_outlook(make_queue, field):
    mailbox = make_queue().mailbox
    setattr(mailbox, field, "outlook")
    with rejected(field, "", unchanged=[mailbox]) as info:
        mailbox_save(mailbox)
    assert "Outlook" in str(info.value) or "queue mailbox" in str(info.value)


def test_user_mailbox_accepts_outlook(make_user):
    mailbox = make_user().mailbox
    mailbox.incoming_method = mailbox.outgoing_method = mailbox.act_method = "outlook"
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).act_method == "outlook"


def test_database_refuses_outlook_on_a_queue_mailbox(make_queue):
    mailbox = make_queue().mailbox
    with pytest.raises(IntegrityError), transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(outgoing_method="outlook")


# M11 ------------------------------------------------------------------------------


def test_email_must_be_valid(make_user):
    mailbox = make_user().mailbox
    mailbox.email = "not-an-address"
    with rejected("email", "valid email", unchanged=[mailbox]):
        mailbox_save(mailbox)


def test_email_unique_case_insensitively(make_user, profile):
    make_user(email="alice@example.test")
    with rejected("email", "already uses this email address"):
        forward_mailbox_create(name="F", email="ALICE@Example.TEST", server_profile=profile)
    assert Mailbox.objects.filter(email__iexact="alice@example.test").count() == 1


def test_database_refuses_duplicate_address_in_other_case(make_user):
    make_user(email="alice@example.test")
    bob = make_user(email="bob@example.test")
    with pytest.raises(IntegrityError), transaction.atomic():
        Mailbox.objects.filter(pk=bob.mailbox.pk).update(email="Alice@Example.test")


def test_distinct_address_accepted(make_user, profile):
    make_user(email="alice@example.test")
    forward_mailbox_create(name="F", email="alice-fwd@example.test", server_profile=profile)


# M12 ------------------------------------------------------------------------------


def test_changing_user_email_changes_mailbox_email(make_user):
    user = make_user(email="old@example.test")
    user.email = "new@example.test"
    user_save(user)
    assert Mailbox.objects.get(user=user).email == "new@example.test"


def test_changing_mailbox_email_changes_user_email(make_user):
    user = make_user(email="old@example.test")
    mailbox = user.mailbox
    mailbox.email = "new@example.test"
    mailbox_save(mailbox)
    user.refresh_from_db()
    assert user.email == "new@example.test"


def test_changing_queue_email_changes_mailbox_email(make_queue):
    queue = make_queue(email="q-old@example.test")
    queue.email = "q-new@example.test"
    queue_save(queue)
    assert Mailbox.objects.get(queue=queue).email == "q-new@example.test"


def test_user_email_taken_by_a_forward_mailbox_is_refused_on_the_user(make_user, make_forward_mailbox):
    make_forward_mailbox(email="fwd@example.test")
    user = make_user(email="old@example.test")
    user.email = "fwd@example.test"
    with rejected("email", "already uses", unchanged=[user, user.mailbox]):
        user_save(user)


# M13 ------------------------------------------------------------------------------


def _tested(mailbox):
    Mailbox.objects.filter(pk=mailbox.pk).update(
        incoming_status=TestStatus.SUCCESS,
        outgoing_status=TestStatus.FAILURE,
        act_status=TestStatus.SUCCESS,
        enabled_incoming=True,
        approval_status=ApprovalStatus.APPROVED,
    )
    return Mailbox.objects.get(pk=mailbox.pk)


def test_changing_email_resets_approval_and_all_statuses(make_user):
    mailbox = _tested(make_user().mailbox)
    mailbox.email = "moved@example.test"
    mailbox_save(mailbox)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert stored.approval_status == ApprovalStatus.PENDING
    assert {stored.incoming_status, stored.outgoing_status, stored.act_status} == {TestStatus.NOT_RUN}
    assert not stored.enabled_incoming


def test_changing_email_resets_approval_to_empty_when_not_required(make_user, org):
    org.approval_required_for_users = False
    org.save()
    mailbox = _tested(make_user().mailbox)
    mailbox.email = "moved@example.test"
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).approval_status == ApprovalStatus.EMPTY


def test_changing_one_method_resets_only_that_workload(make_user):
    mailbox = _tested(make_user().mailbox)
    mailbox.outgoing_method = OutgoingMethod.NONE
    mailbox_save(mailbox)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert stored.outgoing_status == TestStatus.NOT_RUN
    assert stored.incoming_status == TestStatus.SUCCESS
    assert stored.approval_status == ApprovalStatus.APPROVED


def test_changing_the_profile_resets_all_workloads(make_user, make_profile):
    mailbox = _tested(make_user().mailbox)
    mailbox.server_profile = make_profile()
    mailbox_save(mailbox)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert {stored.incoming_status, stored.outgoing_status, stored.act_status} == {TestStatus.NOT_RUN}


def test_changing_the_name_keeps_test_results(make_user):
    mailbox = _tested(make_user().mailbox)
    mailbox.name = "Renamed"
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).incoming_status == TestStatus.SUCCESS


def test_changing_credentials_resets_statuses(make_user, profile):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox_save(mailbox)
    mailbox = _tested(mailbox)
    mailbox.allow_credentials, mailbox.username = True, "alice"
    mailbox.set_password("Mailbox-Secret-1")
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).incoming_status == TestStatus.NOT_RUN


# M13a -----------------------------------------------------------------------------


def test_new_user_mailbox_pending_when_approval_required(make_user):
    assert make_user().mailbox.approval_status == ApprovalStatus.PENDING


def test_new_queue_mailbox_empty_when_approval_not_required(make_queue, org):
    org.approval_required_for_queues = False
    org.save()
    assert make_queue().mailbox.approval_status == ApprovalStatus.EMPTY


def test_forward_mailbox_approval_is_always_empty(make_forward_mailbox):
    assert make_forward_mailbox().approval_status == ApprovalStatus.EMPTY


# M14 ------------------------------------------------------------------------------


def test_forward_mailbox_incoming_requires_an_active_forward_mailbox(make_user, make_forward_mailbox):
    from mailboxes.services.mailboxes import mailbox_set_state

    mailbox_set_state(mailbox=make_forward_mailbox(), active=False)
    mailbox = make_user().mailbox
    mailbox.incoming_method = IncomingMethod.FORWARD_MAILBOX
    with rejected("incoming_method", "active forward mailbox", unchanged=[mailbox]):
        mailbox_save(mailbox)


def test_forward_mailbox_incoming_accepted_with_active_forward_mailbox(make_user, make_forward_mailbox):
    make_forward_mailbox()
    mailbox = make_user().mailbox
    mailbox.incoming_method = IncomingMethod.FORWARD_MAILBOX
    mailbox_save(mailbox)


# M15 ------------------------------------------------------------------------------


def test_sync_without_profile_is_saved_with_a_warning(make_user):
    mailbox = make_user().mailbox
    mailbox.server_profile = None
    mailbox.incoming_method = IncomingMethod.SERVER_SIDE_SYNC
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).processing_warning == M15_WARNING


def test_no_warning_with_a_profile(make_user, profile):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox_save(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).processing_warning == ""


# M16 ------------------------------------------------------------------------------


def test_deactivating_a_user_deactivates_its_mailbox(make_user):
    user = make_user()
    user.is_active = False
    user_save(user)
    assert Mailbox.objects.get(user=user).state == Mailbox.State.INACTIVE


def test_deactivating_a_queue_deactivates_its_mailbox(make_queue):
    queue = make_queue()
    queue.is_active = False
    queue_save(queue)
    assert Mailbox.objects.get(queue=queue).state == Mailbox.State.INACTIVE


def test_mailbox_of_inactive_user_cannot_be_activated(make_user):
    user = make_user()
    user.is_active = False
    user_save(user)
    mailbox = Mailbox.objects.get(user=user)
    mailbox.state = Mailbox.State.ACTIVE
    with rejected("state", "while its user is inactive", unchanged=[mailbox]):
        mailbox_save(mailbox)


def test_reactivating_a_user_reactivates_its_mailbox(make_user):
    user = make_user()
    user.is_active = False
    user_save(user)
    user.is_active = True
    user_save(user)
    assert Mailbox.objects.get(user=user).state == Mailbox.State.ACTIVE
