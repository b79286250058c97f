"""The mailbox form's Mail Processing section, and its Process Now command."""

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View

from mailboxadmin.views import StaffPermissionMixin
from mailboxes.models import Mailbox, MailboxSync, OrganizationSettings
from mailboxes.processing.eligibility import not_processed_reason
from mailboxes.processing.scheduler import make_due_now
from mailboxes.services.testing import TEST_PERMISSION, can_test_mailboxes

# Counting a mailbox's emails stops here: the form shows "more than 10,000" rather than
# counting millions on every visit.
COUNTED_UP_TO = 10_000


@dataclass
class MailProcessing:
    """What the mailbox form shows of a mailbox's mail processing."""

    sync: MailboxSync | None
    emails_label: str  # "Emails Recorded", or "Emails Forwarded" for a forward mailbox
    emails_count: str
    emails_link: str
    not_processed_reason: str | None
    can_process_now: bool


def capped_count(emails) -> str:
    counted = emails[: COUNTED_UP_TO + 1].count()
    return f"more than {COUNTED_UP_TO:,}" if counted > COUNTED_UP_TO else f"{counted:,}"


def mail_processing(mailbox: Mailbox, user) -> MailProcessing:
    """Three queries: the sync row, the email count, the organisation's settings."""
    # A forward mailbox's mail is recorded in the mailboxes it is forwarded for.
    if mailbox.is_forward:
        label, parameter, emails = "Emails Forwarded", "forwarded", mailbox.forwarded_emails.all()
    else:
        label, parameter, emails = "Emails Recorded", "mailbox", mailbox.emails.all()
    reason = not_processed_reason(mailbox, OrganizationSettings.load())
    return MailProcessing(
        sync=MailboxSync.objects.filter(mailbox=mailbox).first(),
        emails_label=label,
        emails_count=capped_count(emails),
        emails_link=f"{reverse('emails:list')}?{parameter}={mailbox.pk}",
        not_processed_reason=reason,
        can_process_now=reason is None and can_test_mailboxes(user),
    )


class ProcessNowView(StaffPermissionMixin, View):
    """POST: the mailbox is due now; a background worker processes it within a minute.

    Allowed to whoever may run Test & Enable, which connects to the same servers."""

    view_permission = "mailboxes.view_mailbox"  # GET is refused: 405
    change_permission = TEST_PERMISSION
    http_method_names = ["post"]

    def post(self, request, pk):
        mailbox = get_object_or_404(Mailbox.objects.select_related("user", "queue"), pk=pk)
        reason = not_processed_reason(mailbox)
        if reason is not None:
            messages.error(request, f"“{mailbox.name}” is not processed: {reason}.")
        else:
            make_due_now(mailbox)
            messages.success(
                request,
                f"“{mailbox.name}” will be processed within a minute by the background worker; "
                "its new emails then appear under Emails.",
            )
        return HttpResponseRedirect(mailbox.get_absolute_url())
