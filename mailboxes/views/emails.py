"""Recorded email (SPEC section 8): the list, one email, and its raw message.

An email's HTML is never rendered: the page shows its text part, or the text of its HTML
part with the markup taken out, escaped like any other text.
"""

from django.contrib import messages
from django.db.models import Q
from django.http import FileResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.views import View
from django.views.generic import DetailView

from mailboxadmin.links import pk_links
from mailboxadmin.paginator import SortKey
from mailboxadmin.views import MIN_PREFIX_LENGTH, KeysetListView, StaffPermissionMixin
from mailboxes.models import Email, Mailbox, Queue, User
from mailboxes.services.email_content import MISSING_RAW_MESSAGE, read_email_content
from mailboxes.views.filters import RecordFiltersMixin

# Which query-string parameter filters by which column, and the record it names.
FILTERS = {
    "mailbox": ("mailbox_id", Mailbox, "Mailbox"),
    "user": ("regarding_user_id", User, "Regarding"),
    "queue": ("regarding_queue_id", Queue, "Regarding"),
    "forwarded": ("forward_mailbox_id", Mailbox, "Forwarded Through"),
}
SEARCHED = ("subject", "from_address", "to_addresses")
LIST_COLUMNS = (
    *("received_on", "from_address", "subject", "size", "headers_only", "malformed"),
    *("mailbox__name", "regarding_user__username", "regarding_user__full_name", "regarding_queue__name"),
)


def email_search(q: str) -> Q:
    """Emails whose Subject, From or To contain `q` (case-insensitive).

    On PostgreSQL the trigram indexes of migration 0014 serve it (each column's
    UPPER(…) LIKE '%…%'); a text shorter than three characters has no trigram to look up,
    and would be tested against every email: it finds nothing (the page says why).
    """
    if len(q) < MIN_PREFIX_LENGTH:
        return Q(pk__in=[])
    condition = Q()
    for field in SEARCHED:
        condition |= Q(**{f"{field}__icontains": q})
    return condition


class EmailListView(RecordFiltersMixin, KeysetListView):
    """/emails/: newest first, 50 a page, "Newer" and "Older" by keyset (never an OFFSET
    or a COUNT); each filter has an index that starts with its column and continues with
    (received_on, id), so a page of it is a range scan of that index."""

    template_name = "mailboxes/email_list.html"
    view_permission = "mailboxes.view_email"
    sorts = {"received": [SortKey("received_on"), SortKey("id")]}
    default_sort = "received"
    record_filters = FILTERS
    exclusive = ("user", "queue")

    def current_sort(self) -> tuple[str, bool]:
        return "received", True  # newest first, always

    def sort_matches(self) -> bool:
        # Walking the newest-first index and testing each row finds a page of a common
        # word at once; the planner turns to the trigram indexes for rare ones itself.
        return False

    def get_queryset(self):
        # Only the columns the rows show: building the three models of each row with all
        # their fields took a fifth of this page's time.
        emails = Email.objects.select_related("mailbox", "regarding_user", "regarding_queue").only(
            *LIST_COLUMNS
        )
        emails = self.filter_records(emails)
        q = self.request.GET.get("q", "").strip()
        if q:
            emails = emails.filter(email_search(q))
        return emails

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            filter_chips=self.filter_chips(),
            short_search_hint=f"Type {MIN_PREFIX_LENGTH} or more characters to search Subject, From and To.",
        )
        detail_link = pk_links("emails:detail")
        filter_links = {name: self.filter_link(name) for name in ("mailbox", "user", "queue")}
        for email in context["page"]:
            email.detail_link = detail_link(email.pk)
            email.mailbox_filter_link = filter_links["mailbox"](email.mailbox_id)
            if email.regarding_user_id is not None:
                email.regarding = email.regarding_user
                email.regarding_filter_link = filter_links["user"](email.regarding_user_id)
            elif email.regarding_queue_id is not None:
                email.regarding = email.regarding_queue
                email.regarding_filter_link = filter_links["queue"](email.regarding_queue_id)
        return context


class EmailDetailView(StaffPermissionMixin, DetailView):
    """/emails/<id>/: the headers, the text, the attachments listed (never opened)."""

    template_name = "mailboxes/email_detail.html"
    view_permission = "mailboxes.view_email"
    context_object_name = "email"
    queryset = Email.objects.select_related("mailbox", "regarding_user", "regarding_queue", "forward_mailbox")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        email = self.object
        context["content"] = read_email_content(email)
        context["regarding"] = email.regarding_user or email.regarding_queue
        context["can_download"] = self.request.user.has_perm("mailboxes.download_raw_email")
        return context


class EmailRawView(StaffPermissionMixin, View):
    """The raw message as received (attachments and all): System Administrators only."""

    view_permission = "mailboxes.download_raw_email"
    http_method_names = ["get", "head"]

    def get(self, request, pk):
        email = get_object_or_404(Email.objects.only("pk", "raw"), pk=pk)
        try:
            raw = email.raw.open("rb") if email.raw else None
        except OSError:
            raw = None
        if raw is None:
            messages.error(request, MISSING_RAW_MESSAGE)
            return HttpResponseRedirect(email.get_absolute_url())
        return FileResponse(
            raw, as_attachment=True, filename=f"email-{email.pk}.eml", content_type="message/rfc822"
        )
