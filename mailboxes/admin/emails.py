from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from mailboxadmin.admin_tools import CappedCountPaginator
from mailboxes.models import Email


@admin.register(Email)
class EmailAdmin(admin.ModelAdmin):
    """Emails are written by mail processing only: here they are read, never added,
    changed or deleted.

    Scale (millions of rows on PostgreSQL): the list reads one page with its mailbox,
    user and queue joined in, in the order of the `email_newest` index; a filter or a
    date-hierarchy step is counted up to 10,000 rows only (CappedCountPaginator), the
    unfiltered list by the planner's estimate; the date hierarchy lists the years between
    the first and the last email (two index look-ups), each year's months and each
    month's days, without the DISTINCT over every row that Django's would run (see
    templates/admin/mailboxes/email/change_list.html). Filtering by mailbox, user or
    queue is by URL (?mailbox__id__exact=ID, as /emails/ links), each served by its index.
    """

    list_display = ("received_on", "subject", "from_address", "mailbox", "regarding", "size", "flags")
    list_display_links = ("received_on", "subject")
    list_filter = ("headers_only", "malformed")
    list_select_related = ("mailbox", "regarding_user", "regarding_queue")
    list_per_page = 50
    search_fields = ("subject", "from_address", "to_addresses")
    search_help_text = "Finds emails whose Subject, From or To contains the text."
    date_hierarchy = "received_on"
    ordering = ("-received_on", "-id")
    sortable_by = ()
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = []
    readonly_fields = (
        *("message_id", "subject", "from_address", "to_addresses", "cc_addresses", "sent_on"),
        *("received_on", "size", "mailbox", "regarding", "forward_mailbox", "recorded_on"),
        *("headers_only", "malformed", "attachments", "raw_message"),
    )

    def get_fieldsets(self, request, obj=None):
        # The raw message (attachments and all) only for those who may download it.
        may_download = request.user.has_perm("mailboxes.download_raw_email")
        return (
            (None, {"fields": self.readonly_fields[:6]}),
            ("Received", {"fields": self.readonly_fields[6:12]}),
            (
                "Processing",
                {
                    "fields": (
                        "headers_only",
                        "malformed",
                        "attachments",
                        *(("raw_message",) if may_download else ()),
                    )
                },
            ),
        )

    @admin.display(description="Regarding")
    def regarding(self, email):
        return email.regarding_user or email.regarding_queue or "—"

    @admin.display(description="Flags")
    def flags(self, email):
        flags = [
            label
            for flag, label in (
                (email.headers_only, "Headers only"),
                (email.malformed, "Could not be parsed"),
            )
            if flag
        ]
        return ", ".join(flags) or "—"

    @admin.display(description="Raw Message")
    def raw_message(self, email):
        return format_html(
            '<a href="{}">Download Raw Message</a> · <a href="{}">The email with its text</a>',
            reverse("emails:raw", args=[email.pk]),
            email.get_absolute_url(),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
