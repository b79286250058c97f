"""Services that create and change mailboxes: every entry point calls these."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mailboxadmin import history
from mailboxadmin.exceptions import StaleEditError
from mailboxes.models import (
    ActMethod,
    ApprovalStatus,
    IncomingMethod,
    Mailbox,
    OrganizationSettings,
    OutgoingMethod,
    TestStatus,
)
from mailboxes.models.choices import act_method_allowed
from mailboxes.models.mailboxes import CREDENTIAL_FIELDS, WORKLOADS
from mailboxes.services.roles import check_can_change_account

# A change of any of these fields makes the listed workloads' test results stale (M13).
RESET_BY_FIELD = {
    "email": tuple(WORKLOADS),
    "server_profile": tuple(WORKLOADS),
    "incoming_method": ("incoming",),
    "outgoing_method": ("outgoing",),
    "act_method": ("act",),
    **{field: tuple(WORKLOADS) for field in CREDENTIAL_FIELDS},
}
REGARDING_FIXED = "A mailbox's kind and Regarding are fixed when it is created."


def initial_approval_status(kind: str, org: OrganizationSettings) -> str:
    """M13a: Pending Approval where the organisation requires approval for the kind."""
    if org.approval_required_for(kind):
        return ApprovalStatus.PENDING
    return ApprovalStatus.EMPTY


def default_settings_for(kind: str, org: OrganizationSettings) -> dict:
    """The organisation's defaults, narrowed to what a mailbox of `kind` may use."""
    profile = org.default_server_profile
    incoming, outgoing, act = org.default_incoming, org.default_outgoing, org.default_act
    if kind != Mailbox.Kind.USER:  # M10, M9
        incoming = IncomingMethod.NONE if incoming == IncomingMethod.OUTLOOK else incoming
        outgoing = OutgoingMethod.NONE if outgoing == OutgoingMethod.OUTLOOK else outgoing
        act = ActMethod.NONE
    if kind == Mailbox.Kind.FORWARD:  # M3, M4
        outgoing = OutgoingMethod.NONE
        if incoming != IncomingMethod.NONE:
            incoming = IncomingMethod.SERVER_SIDE_SYNC
    if not act_method_allowed(act, profile):  # M8
        act = ActMethod.NONE
    return {
        "server_profile": profile,
        "incoming_method": incoming,
        "outgoing_method": outgoing,
        "act_method": act,
    }


def reset_test_results(mailbox: Mailbox, workloads) -> None:
    for workload in workloads:
        _, status, enabled, error = WORKLOADS[workload]
        setattr(mailbox, status, TestStatus.NOT_RUN)
        setattr(mailbox, enabled, False)
        setattr(mailbox, error, "")
    if all(getattr(mailbox, WORKLOADS[w][1]) == TestStatus.NOT_RUN for w in WORKLOADS):
        mailbox.test_completed_on = None


def mailbox_build(*, kind: str, regarding, org: OrganizationSettings) -> Mailbox:
    """An unsaved user or queue mailbox with the organisation's default settings."""
    mailbox = Mailbox(
        kind=kind,
        name=str(regarding),
        email=regarding.email,
        approval_status=initial_approval_status(kind, org),
        **default_settings_for(kind, org),
    )
    if kind == Mailbox.Kind.USER:
        mailbox.user = regarding
        mailbox.owner = regarding
        mailbox.state = Mailbox.State.ACTIVE if regarding.is_active else Mailbox.State.INACTIVE
    else:
        mailbox.queue = regarding
        mailbox.owner = regarding.owner
        mailbox.state = Mailbox.State.ACTIVE if regarding.is_active else Mailbox.State.INACTIVE
    return mailbox


@transaction.atomic
def forward_mailbox_create(
    *,
    name: str,
    email: str,
    server_profile,
    owner=None,
    delete_after_processing: bool = False,
    incoming_method: str = IncomingMethod.SERVER_SIDE_SYNC,
    allow_credentials: bool = False,
    username: str = "",
    password: str = "",
    process_email_after=None,
    actor=None,
    via: str = "",
) -> Mailbox:
    """Create a forward mailbox (M1: the only way one comes into being)."""
    mailbox = Mailbox(
        kind=Mailbox.Kind.FORWARD,
        name=name,
        email=email,
        owner=owner if owner is not None else actor,
        server_profile=server_profile,
        delete_after_processing=delete_after_processing,
        incoming_method=incoming_method,
        outgoing_method=OutgoingMethod.NONE,
        act_method=ActMethod.NONE,
        allow_credentials=allow_credentials,
        username=username,
        process_email_after=process_email_after,
    )
    if password:
        mailbox.set_password(password)
    return forward_mailbox_insert(mailbox, actor=actor, via=via)


@transaction.atomic
def forward_mailbox_insert(mailbox: Mailbox, *, actor=None, via: str = "") -> Mailbox:
    """Save a new forward mailbox built by a form (the browser's or the admin's)."""
    if mailbox.pk is not None or mailbox.kind != Mailbox.Kind.FORWARD:
        raise ValidationError(
            "Only forward mailboxes are created on their own; user and queue "
            "mailboxes come with their user or queue."
        )
    if mailbox.owner_id is None and actor is not None:
        mailbox.owner = actor
    mailbox.approval_status = ApprovalStatus.EMPTY
    mailbox.full_clean()
    mailbox.save()
    history.log_addition(actor, mailbox, via=via)
    return mailbox


@transaction.atomic
def mailbox_save(
    mailbox: Mailbox, *, expected_version: int | None = None, actor=None, via: str = ""
) -> Mailbox:
    """Save changes to an existing mailbox, with every rule (M1–M16) and its consequences.

    `expected_version` is the version the editor read; if the row has moved on since,
    StaleEditError is raised and nothing is written. Changing the address keeps the
    user's or queue's address in step (M12) and resets approval and test results (M13).
    """
    current = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    if expected_version is not None and current.version != expected_version:
        raise StaleEditError(current)
    changed = mailbox_change_prepare(current, mailbox, actor=actor)
    if not changed:
        return mailbox
    mailbox.version = current.version + 1
    mailbox.save()
    if "email" in changed:
        regarding_email_follow(mailbox)
    history.log_change(actor, mailbox, changed, via=via)
    return mailbox


def mailbox_change_prepare(before: Mailbox, after: Mailbox, *, actor=None, facts=None) -> list[str]:
    """The one place that says what changing `before` into `after` implies; every writer
    of a mailbox (mailbox_save, the bulk writer, apply_config) calls it before writing.

    Checks every rule on `after` (full_clean(); with `facts`, a bulk writer's RuleFacts,
    the rules that read other rows are answered from what it loaded for the whole set),
    applies the consequences to `after` — a queue mailbox's owner follows its queue, an
    inactive mailbox is enabled for nothing (M16), test results of what changed reset and
    a new address awaits approval again (M13) — and checks that the actor may change the
    account of a user mailbox's address or state (SPEC 9). Returns the fields the change
    names (what history records); raises ValidationError and changes nothing stored.
    The caller writes `after` and then calls regarding_email_follow if the address changed.
    """
    if (after.kind, after.user_id, after.queue_id) != (before.kind, before.user_id, before.queue_id):
        raise ValidationError(REGARDING_FIXED)
    if after.kind == Mailbox.Kind.QUEUE:
        after.owner_id = after.queue.owner_id if facts is None else facts.queue_owner_id(after.queue_id)
    if not after.is_active:
        after.enabled_incoming = after.enabled_outgoing = after.enabled_act = False
    if facts is None:
        after.full_clean()
    else:
        facts.full_clean(after, fields=history.changed_fields(before, after))
    changed = history.changed_fields(before, after)
    stale = {workload for field in changed for workload in RESET_BY_FIELD.get(field, ())}
    if stale:
        reset_test_results(after, stale)
    if "email" in changed and after.kind != Mailbox.Kind.FORWARD:
        org = OrganizationSettings.load() if facts is None else facts.organization()
        after.approval_status = initial_approval_status(after.kind, org)
    if changed and after.kind == Mailbox.Kind.USER and {"email", "state"} & set(changed):
        # The account's address and state: a System Administrator's only by one (SPEC 9).
        check_can_change_account(actor, after.user)
    return changed


def regarding_email_follow(mailbox: Mailbox) -> None:
    """M12: a user's or queue's address is its mailbox's address (after the mailbox's is written)."""
    regarding = mailbox.regarding
    if regarding is not None and regarding.email != mailbox.email:
        type(regarding).objects.filter(pk=regarding.pk).update(email=mailbox.email, version=F("version") + 1)
        regarding.email = mailbox.email


def mailbox_apply_default_settings(*, mailbox: Mailbox, actor=None, via: str = "") -> Mailbox:
    """Apply the organisation's default profile and delivery methods to a mailbox."""
    for field, value in default_settings_for(mailbox.kind, OrganizationSettings.load()).items():
        setattr(mailbox, field, value)
    if mailbox.kind == Mailbox.Kind.FORWARD and mailbox.server_profile is None:
        raise ValidationError(
            {"server_profile": "The organisation has no default server profile to give this forward mailbox."}
        )
    return mailbox_save(mailbox, actor=actor, via=via)


def mailbox_set_state(*, mailbox: Mailbox, active: bool, actor=None, via: str = "") -> Mailbox:
    """Activate or deactivate a mailbox (M16: inactive mailboxes are neither tested nor processed)."""
    mailbox.state = Mailbox.State.ACTIVE if active else Mailbox.State.INACTIVE
    return mailbox_save(mailbox, actor=actor, via=via)


@transaction.atomic
def mailbox_set_approval(*, mailbox: Mailbox, approved: bool, actor=None) -> Mailbox:
    """A1: Approve Email / Reject Email. Forward mailboxes are not approved (M13a)."""
    if mailbox.kind == Mailbox.Kind.FORWARD:
        raise ValidationError(f"{mailbox.email}: approval does not apply to forward mailboxes.")
    status = ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED
    current = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    if current.approval_status != status:
        Mailbox.objects.filter(pk=mailbox.pk).update(
            approval_status=status, version=current.version + 1, modified_on=timezone.now()
        )
        history.log_message(actor, current, f"Email address {'approved' if approved else 'rejected'}.")
        current.approval_status, current.version = status, current.version + 1
    mailbox.approval_status, mailbox.version = current.approval_status, current.version
    return mailbox


@transaction.atomic
def mailbox_rebind_password(*, mailbox: Mailbox, actor) -> Mailbox:
    """Bind the stored password to the servers of the mailbox's profile now (SPEC 9): a
    System Administrator vouches that they are the servers it was entered for."""
    from serverprofiles.services import can_administer_credentials

    if not can_administer_credentials(actor):
        raise PermissionDenied("Only a System Administrator may re-bind stored passwords.")
    locked = Mailbox.objects.select_for_update(of=("self",)).select_related("server_profile")
    current = locked.get(pk=mailbox.pk)
    if current.rebind_password():
        current.version += 1
        current.modified_on = timezone.now()
        Mailbox.objects.filter(pk=current.pk).update(
            password_ciphertext=current.password_ciphertext,
            version=current.version,
            modified_on=current.modified_on,
        )
        history.log_message(actor, current, "Stored password re-bound to the current servers.")
    mailbox.password_ciphertext, mailbox.version = current.password_ciphertext, current.version
    return mailbox


@transaction.atomic
def forward_mailbox_delete(*, mailbox: Mailbox, actor=None) -> None:
    """Delete a forward mailbox (M1: user and queue mailboxes go only with their owner)."""
    if mailbox.kind != Mailbox.Kind.FORWARD:
        raise ValidationError(
            f"{mailbox.email} is the mailbox of a {mailbox.kind}; it is deleted only with its {mailbox.kind}."
        )
    others = Mailbox.objects.usable_forward_targets().exclude(pk=mailbox.pk)
    dependants = Mailbox.objects.filter(incoming_method=IncomingMethod.FORWARD_MAILBOX)
    if not others.exists() and dependants.exists():
        names = ", ".join(dependants.values_list("email", flat=True)[:10])
        raise ValidationError(
            f"{mailbox.email} is the last active forward mailbox, and these mailboxes receive "
            f"through it: {names}. Change their Incoming Email first."
        )
    history.log_deletion(actor, mailbox)
    mailbox.delete()
