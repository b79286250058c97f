"""Which mailboxes mail processing reads (SPEC section 8): an own mailbox (Incoming Email
is Server-Side Synchronization or Email Router) or a forward mailbox, active (M16),
enabled for incoming by Test & Enable, with a server profile, and approved where the
organisation requires approval (A2)."""

from django.db.models import Q, QuerySet

from mailboxes.models import Mailbox, OrganizationSettings
from mailboxes.models.choices import ApprovalStatus, IncomingMethod


def processable(mailboxes: QuerySet, settings: OrganizationSettings | None = None) -> QuerySet:
    """The mailboxes of `mailboxes` that are processed."""
    settings = settings or OrganizationSettings.load()
    approval_waived = Q()
    for kind in (Mailbox.Kind.USER, Mailbox.Kind.QUEUE):
        if settings.approval_required_for(kind):
            approval_waived &= ~Q(kind=kind) | Q(approval_status=ApprovalStatus.APPROVED)
    return mailboxes.filter(
        approval_waived,
        state=Mailbox.State.ACTIVE,
        incoming_method=IncomingMethod.SERVER_SIDE_SYNC,
        enabled_incoming=True,
        server_profile__isnull=False,
    )


def not_processed_reason(mailbox: Mailbox, settings: OrganizationSettings | None = None) -> str | None:
    """Why `mailbox` is not processed, in words for its page and alerts; None if it is."""
    settings = settings or OrganizationSettings.load()
    if mailbox.state != Mailbox.State.ACTIVE:
        return "the mailbox is inactive"
    if settings.approval_required_for(mailbox.kind) and mailbox.approval_status != ApprovalStatus.APPROVED:
        return "the email address is not approved"
    if mailbox.incoming_method == IncomingMethod.FORWARD_MAILBOX:
        return "its email arrives through a forward mailbox"
    if mailbox.incoming_method != IncomingMethod.SERVER_SIDE_SYNC:
        return "Incoming Email is not Server-Side Synchronization or Email Router"
    if mailbox.server_profile_id is None:
        return "it has no server profile"
    if not mailbox.enabled_incoming:
        return "it is not enabled for incoming email (run Test & Enable Mailbox)"
    return None
