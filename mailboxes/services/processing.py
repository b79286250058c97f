"""What mail processing's scheduler writes on mailboxes (SPEC section 8): an error alert
for a permanent failure, and disabling a mailbox for incoming email after the
organisation's Disable Mailbox After Failures consecutive failures. Test & Enable
(services/testing.py) enables it again."""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mailboxes.models import Mailbox, MailboxAlert, TestStatus

logger = logging.getLogger(__name__)


def processing_failed_alert(mailbox_id: int, cause: str) -> None:
    """A pass over the mailbox failed for a reason that retrying will not fix
    (authentication, the mailbox gone): an error alert saying so."""
    MailboxAlert.objects.create(
        mailbox_id=mailbox_id,
        severity=MailboxAlert.Severity.ERROR,
        workload=MailboxAlert.Workload.INCOMING,
        message=f"Mail processing failed: {cause}",
    )


def disabled_message(failures: int, cause: str) -> str:
    return (
        f"Mail processing failed {failures} times in a row (the last time: {cause}), so the mailbox "
        "is disabled for incoming email and no longer processed. Fix the cause, then run "
        "Test & Enable Mailbox to enable it again."
    )


@transaction.atomic
def mailbox_disable_incoming(mailbox_id: int, *, failures: int, cause: str) -> bool:
    """Disable the mailbox for incoming email (Incoming Email Status Failure, with the
    cause), as a failed Test & Enable would, with an error alert. A new version: an edit
    form opened before is stale. False if it was not enabled (or is gone)."""
    message = disabled_message(failures, cause)
    changed = Mailbox.objects.filter(pk=mailbox_id, enabled_incoming=True).update(
        enabled_incoming=False,
        incoming_status=TestStatus.FAILURE,
        incoming_error=message,
        version=F("version") + 1,
        modified_on=timezone.now(),
    )
    if changed:
        MailboxAlert.objects.create(
            mailbox_id=mailbox_id,
            severity=MailboxAlert.Severity.ERROR,
            workload=MailboxAlert.Workload.INCOMING,
            message=message,
        )
        logger.warning("Mailbox %s disabled for incoming email after %s failures", mailbox_id, failures)
    return bool(changed)
