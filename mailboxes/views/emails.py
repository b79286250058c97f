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

# Which query-string parameter filters by which column, and the record it names.
FILTERS = {
    "mailbox": ("mailbox_id", Mailbox, "Mailbox"),
    "user": ("regarding_user_id", User, "Regarding"),
    "queue": ("regarding_queue_id", Queue, "Regarding"),
    "forwarded": ("forward_mailbox_id", Mailbox, "Forwarded Through"),
}
SEARCHED = ("subject", "from_address", "to_addresses")


def record_id(value: str) -> int | None:
    """The id a filter parameter names, or None when it names none (not digits, or past
    the 64-bit range, which the database cannot compare with)."""
    if value.isascii() and value.isdigit() and int(value) < 2**63:  # "²".isdigit() is True
        return int(value)
    return None


def email_search(q: str) -> Q:
    """Emails whose Subject, From or To contain `q` (case-insensitive); a search shorter
    than three characters matches a whole Subject or From only.

    On PostgreSQL the trigram indexes of migration 0014 serve the `contains` search (each
    column's UPPER(…) LIKE '%…%'); the short, exact one is at most a few rows to test.
    """
    lookup = "icontains" if len(q) >= MIN_PREFIX_LENGTH else "iexact"
    fields = SEARCHED if lookup == "icontains" else SEARCHED[:2]
    condition = Q()
    for field in fields:
        condition |= Q(**{f"{field}__{lookup}": q})
    return condition


class EmailListView(KeysetListView):
    """/emails/: newest first, 50 a page, "Newer" and "Older" by keyset (never an OFFSET
    or a COUNT); each filter has an index that starts with its column and continues with
    (received_on, id), so a page of it is a range scan of that index."""

    template_name = "mailboxes/email_list.html"
    view_permission = "mailboxes.view_email"
    sorts = {"received": [SortKey("received_on"), SortKey("id")]}
    default_sort = "received"

    def current_sort(self) -> tuple[str, bool]:
        return "received", True  # newest first, always

    def sort_matches(self) -> bool:
        # Walking the newest-first index and testing each row finds a page of a common
        # word at once; the planner turns to the trigram indexes for rare ones itself.
        return False

    def active_filters(self) -> dict[str, int | None]:
        """The filters of this request: parameter → id (None for an id that names nothing)."""
        return {name: record_id(self.request.GET[name]) for name in FILTERS if self.request.GET.get(name, "")}

    def get_queryset(self):
        emails = Email.objects.select_related("mailbox", "regarding_user", "regarding_queue").defer(
            "to_addresses", "cc_addresses", "attachments", "message_id"
        )
        for name, pk in self.active_filters().items():
            emails = emails.filter(**{FILTERS[name][0]: pk}) if pk is not None else emails.none()
        q = self.request.GET.get("q", "").strip()
        if q:
            emails = emails.filter(email_search(q))
        return emails

    def filter_chips(self) -> list[dict]:
        """What each filter shows above the list, with a link that removes it: one query
        a filter (for the name of the mailbox, user or queue it names)."""
        chips = []
        for name, pk in self.active_filters().items():
            _, model, label = FILTERS[name]
            record = model.objects.filter(pk=pk).first() if pk is not None else None
            chips.append(
                {
                    "label": label,
                    "value": str(record) if record is not None else "(none)",
                    "remove_link": self.query_string(**{name: None}),
                }
            )
        return chips

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            filter_chips=self.filter_chips(),
            search_matches="contain",
        )
        links = {
            "email": pk_links("emails:detail"),
            "mailbox": lambda pk: self.query_string(mailbox=pk),
            "user": lambda pk: self.query_string(user=pk, queue=None),
            "queue": lambda pk: self.query_string(queue=pk, user=None),
        }
        for email in context["page"]:
            email.detail_link = links["email"](email.pk)
            email.mailbox_filter_link = links["mailbox"](email.mailbox_id)
            if email.regarding_user_id is not None:
                email.regarding = email.regarding_user
                email.regarding_filter_link = links["user"](email.regarding_user_id)
            elif email.regarding_queue_id is not None:
                email.regarding = email.regarding_queue
                email.regarding_filter_link = links["queue"](email.regarding_queue_id)
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
