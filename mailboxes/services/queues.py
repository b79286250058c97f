"""Services for queues: creating one creates its mailbox in the same transaction."""

from django.core.exceptions import ValidationError
from django.db import transaction

from mailboxadmin import history
from mailboxadmin.exceptions import StaleEditError
from mailboxes.models import Mailbox, OrganizationSettings, Queue
from mailboxes.services.mailboxes import mailbox_build, mailbox_save
from mailboxes.services.users import regarding_errors


@transaction.atomic
def queue_create(*, name: str, email: str, owner, actor=None, via: str = "", **fields) -> Queue:
    """Create a queue and its mailbox, with the organisation's default email settings."""
    return queue_insert(Queue(name=name, email=email, owner=owner, **fields), actor=actor, via=via)


@transaction.atomic
def queue_insert(queue: Queue, *, actor=None, via: str = "") -> Queue:
    """Save a new queue built by a form, and create its mailbox."""
    queue.full_clean()
    queue.save()
    mailbox = mailbox_build(kind=Mailbox.Kind.QUEUE, regarding=queue, org=OrganizationSettings.load())
    try:
        mailbox.full_clean()
    except ValidationError as exc:
        raise regarding_errors(exc) from None
    mailbox.save()
    history.log_addition(actor, queue, via=via)
    return queue


@transaction.atomic
def queue_save(queue: Queue, *, expected_version: int | None = None, actor=None, via: str = "") -> Queue:
    """Save changes to a queue; its mailbox follows its address, owner and state."""
    current = Queue.objects.select_for_update().get(pk=queue.pk)
    if expected_version is not None and current.version != expected_version:
        raise StaleEditError(current)
    queue.full_clean()
    changed = history.changed_fields(current, queue)
    if not changed:
        return queue
    queue.version = current.version + 1
    queue.save()
    if {"email", "owner", "is_active"} & set(changed):
        mailbox = Mailbox.objects.select_related("server_profile").get(queue=queue)
        mailbox.queue = queue
        mailbox.email = queue.email
        mailbox.state = Mailbox.State.ACTIVE if queue.is_active else Mailbox.State.INACTIVE
        try:
            mailbox_save(mailbox, actor=actor, via=via)
        except ValidationError as exc:
            raise regarding_errors(exc) from None
    history.log_change(actor, queue, changed, via=via)
    return queue


@transaction.atomic
def queue_delete(*, queue: Queue, actor=None) -> None:
    """Delete a queue and its mailbox (M1)."""
    history.log_deletion(actor, queue)
    queue.delete()
