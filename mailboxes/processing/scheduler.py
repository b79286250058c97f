from django.db.models.functions import Now

from mailboxes.models import Mailbox, MailboxSync


def make_due_now(mailbox: Mailbox) -> None:
    """Process Now: the mailbox is due at once; the next pass of a background worker takes it."""
    MailboxSync.objects.update_or_create(mailbox=mailbox, defaults={"next_poll_on": Now()})
