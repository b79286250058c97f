"""Which mailboxes depend on the forward mailboxes (M14)."""

from collections.abc import Iterable

from django.db.models import QuerySet

from mailboxes.models import IncomingMethod, Mailbox


def mailboxes_stranded_by_deactivating(mailbox_ids: Iterable[int]) -> QuerySet[Mailbox]:
    """The active user and queue mailboxes that receive through a forward mailbox (M14)
    and would have none left if the mailboxes `mailbox_ids` were deactivated; none when
    another usable forward mailbox remains."""
    ids = [int(pk) for pk in mailbox_ids]
    targets = Mailbox.objects.usable_forward_targets()
    if not targets.filter(pk__in=ids).exists() or targets.exclude(pk__in=ids).exists():
        return Mailbox.objects.none()
    return (
        Mailbox.objects.active()
        .filter(incoming_method=IncomingMethod.FORWARD_MAILBOX)
        .exclude(kind=Mailbox.Kind.FORWARD)
        .exclude(pk__in=ids)
        .order_by("name", "id")
    )
