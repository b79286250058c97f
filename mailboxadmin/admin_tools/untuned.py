"""An untuned admin for mailboxes, mounted only for `make bench` to compare the tuned
one against (settings.BENCHMARK_UNTUNED_ADMIN; see mailboxadmin/urls.py)."""

from django.contrib import admin

from mailboxes.models import Mailbox


class UntunedAdminSite(admin.AdminSite):
    site_header = "Mailbox Admin (untuned, for comparison)"
    site_title = "Untuned admin"


untuned_site = UntunedAdminSite(name="untuned_admin")


@admin.register(Mailbox, site=untuned_site)
class UntunedMailboxAdmin(admin.ModelAdmin):
    """The same columns, filters and search as MailboxAdmin, with Django's defaults for
    everything else: a COUNT(*) per page plus one for "(N total)", a query per row for
    each nullable related column, sorting on any column, facet counts on request."""

    list_display = (
        "name",
        "email",
        "kind",
        "regarding",
        "server_profile",
        "incoming_method",
        "outgoing_method",
        "act_method",
        "incoming_status",
        "outgoing_status",
        "act_status",
        "approval_status",
        "state",
    )
    list_filter = (
        "kind",
        "state",
        "server_profile",
        "incoming_method",
        "outgoing_method",
        "act_method",
        "incoming_status",
        "outgoing_status",
        "act_status",
        "approval_status",
    )
    search_fields = ("name", "email", "username")

    @admin.display(description="Regarding")
    def regarding(self, mailbox):
        return mailbox.regarding or "—"
