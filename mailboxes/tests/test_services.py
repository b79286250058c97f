"""Services: defaults for new mailboxes, stale edits, history, approval."""

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import ValidationError

from mailboxadmin.exceptions import StaleEditError
from mailboxes.models import (
    ActMethod,
    ApprovalStatus,
    IncomingMethod,
    Mailbox,
    OrganizationSettings,
    OutgoingMethod,
    Queue,
    User,
)
from mailboxes.services.mailboxes import (
    mailbox_apply_default_settings,
    mailbox_save,
    mailbox_set_approval,
    mailbox_set_state,
)
from mailboxes.services.organization import organization_settings_save
from mailboxes.services.queues import queue_create, queue_save
from mailboxes.services.users import user_create
from serverprofiles.models import ServerType

pytestmark = pytest.mark.django_db


@pytest.fixture
def org_defaults(org, profile):
    org.default_server_profile = profile
    org.default_incoming = IncomingMethod.SERVER_SIDE_SYNC
    org.default_outgoing = OutgoingMethod.OUTLOOK
    org.default_act = ActMethod.OUTLOOK
    organization_settings_save(org)
    return org


def test_new_user_mailbox_gets_the_organisation_defaults(org_defaults, profile, make_user):
    mailbox = make_user().mailbox
    assert mailbox.server_profile == profile
    assert (mailbox.incoming_method, mailbox.outgoing_method, mailbox.act_method) == (
        IncomingMethod.SERVER_SIDE_SYNC,
        OutgoingMethod.OUTLOOK,
        ActMethod.OUTLOOK,
    )


def test_new_queue_mailbox_gets_defaults_narrowed_to_what_queues_allow(org_defaults, profile, make_queue):
    mailbox = make_queue().mailbox
    assert mailbox.server_profile == profile
    assert (mailbox.incoming_method, mailbox.outgoing_method, mailbox.act_method) == (
        IncomingMethod.SERVER_SIDE_SYNC,
        OutgoingMethod.NONE,
        ActMethod.NONE,
    )


def test_queue_mailbox_follows_its_owner(make_queue, make_user):
    queue = make_queue()
    new_owner = make_user()
    queue.owner = new_owner
    queue_save(queue)
    assert Mailbox.objects.get(queue=queue).owner == new_owner


def test_user_creation_is_atomic_with_its_mailbox(make_user, profile):
    from mailboxes.services.mailboxes import forward_mailbox_create

    forward_mailbox_create(name="F", email="taken@example.test", server_profile=profile)
    with pytest.raises(ValidationError) as info:
        user_create(username="carol", email="taken@example.test")
    assert "email" in info.value.message_dict
    assert not User.objects.filter(username="carol").exists()


def test_queue_creation_is_atomic_with_its_mailbox(make_user, make_forward_mailbox):
    make_forward_mailbox(email="taken@example.test")
    with pytest.raises(ValidationError):
        queue_create(name="Support", email="taken@example.test", owner=make_user())
    assert not Queue.objects.filter(name="Support").exists()


def test_create_user_through_the_manager_creates_its_mailbox(db):
    user = User.objects.create_superuser("root", "root@example.test", "Pass-Word-123")
    assert user.mailbox.email == "root@example.test"
    assert user.check_password("Pass-Word-123")


def test_apply_default_email_settings(org_defaults, profile, make_user):
    mailbox = make_user().mailbox
    mailbox.server_profile = None
    mailbox.incoming_method = IncomingMethod.NONE
    mailbox_save(mailbox)
    mailbox_apply_default_settings(mailbox=mailbox)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert stored.server_profile == profile and stored.incoming_method == IncomingMethod.SERVER_SIDE_SYNC


def test_organisation_refuses_act_sync_default_with_imap_profile(org, profile):
    org.default_server_profile = profile
    org.default_act = ActMethod.SERVER_SIDE_SYNC
    with pytest.raises(ValidationError) as info:
        organization_settings_save(org)
    assert "default_act" in info.value.message_dict
    assert OrganizationSettings.load().default_act == ActMethod.NONE


def test_stale_edit_is_refused_and_first_save_survives(make_user):
    mailbox = make_user().mailbox
    first = Mailbox.objects.get(pk=mailbox.pk)
    second = Mailbox.objects.get(pk=mailbox.pk)
    first.name = "First"
    mailbox_save(first, expected_version=mailbox.version)
    second.name = "Second"
    with pytest.raises(StaleEditError) as info:
        mailbox_save(second, expected_version=mailbox.version)
    assert info.value.current.name == "First"
    assert Mailbox.objects.get(pk=mailbox.pk).name == "First"


def test_each_save_bumps_the_version(make_user):
    mailbox = make_user().mailbox
    version = mailbox.version
    mailbox.name = "Renamed"
    mailbox_save(mailbox, expected_version=version)
    assert Mailbox.objects.get(pk=mailbox.pk).version == version + 1


def test_history_records_who_changed_what_without_the_password(make_user, profile, sysadmin):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox.allow_credentials, mailbox.username = True, "alice"
    mailbox.set_password("History-Secret-7")
    mailbox_save(mailbox, actor=sysadmin)
    entry = LogEntry.objects.filter(object_id=str(mailbox.pk)).latest("action_time")
    assert entry.user == sysadmin
    message = entry.get_change_message()
    assert "Password" in message and "Server Profile" in message
    assert "History-Secret-7" not in message and "gAAAA" not in entry.change_message


def test_approve_and_reject(make_user):
    mailbox = make_user().mailbox
    mailbox_set_approval(mailbox=mailbox, approved=True)
    assert Mailbox.objects.get(pk=mailbox.pk).approval_status == ApprovalStatus.APPROVED
    mailbox_set_approval(mailbox=mailbox, approved=False)
    assert Mailbox.objects.get(pk=mailbox.pk).approval_status == ApprovalStatus.REJECTED


def test_approval_does_not_apply_to_forward_mailboxes(make_forward_mailbox):
    forward = make_forward_mailbox()
    with pytest.raises(ValidationError, match="forward mailboxes"):
        mailbox_set_approval(mailbox=forward, approved=True)
    assert Mailbox.objects.get(pk=forward.pk).approval_status == ApprovalStatus.EMPTY


def test_deactivating_clears_enabled_flags(make_user):
    mailbox = make_user().mailbox
    Mailbox.objects.filter(pk=mailbox.pk).update(enabled_incoming=True)
    mailbox = Mailbox.objects.get(pk=mailbox.pk)
    mailbox_set_state(mailbox=mailbox, active=False)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert stored.state == Mailbox.State.INACTIVE and not stored.enabled_incoming


def test_exchange_profile_defaults_keep_act_sync(org, make_profile, make_user):
    exchange = make_profile(
        server_type=ServerType.EXCHANGE,
        incoming_server="https://mail.example.test/EWS/Exchange.asmx",
        outgoing_server="https://mail.example.test/EWS/Exchange.asmx",
    )
    org.default_server_profile = exchange
    org.default_act = ActMethod.SERVER_SIDE_SYNC
    organization_settings_save(org)
    assert make_user().mailbox.act_method == ActMethod.SERVER_SIDE_SYNC
