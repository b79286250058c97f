from django.contrib import admin

from mailboxadmin.admin_tools import EstimatedCountPaginator
from mailboxes.models import MailboxAlert


@admin.register(MailboxAlert)
class MailboxAlertAdmin(admin.ModelAdmin):
    """Alerts are written by Test & Enable and processing; here they are only read."""

    list_display = ("created_on", "severity", "workload", "mailbox", "message")
    list_filter = ("severity", "workload")
    list_select_related = ("mailbox",)
    search_fields = ("mailbox__email", "message")
    search_help_text = "Finds alerts whose mailbox address or message contains the text."
    ordering = ("-created_on", "-id")
    sortable_by = ("created_on",)
    raw_id_fields = ("mailbox",)
    readonly_fields = ("created_on", "severity", "workload", "mailbox", "message")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = []

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
