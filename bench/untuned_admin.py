"""An untuned admin for mailboxes, which `make bench` compares the tuned one against;
mounted at /untuned-admin/ by bench/urls.py only."""

from django.contrib import admin

from mailboxes.admin.mailboxes import MailboxAdmin
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

    list_display = tuple("email" if c == "email_address" else c for c in MailboxAdmin.list_display)
    list_filter = MailboxAdmin.list_filter
    search_fields = MailboxAdmin.search_fields
    list_per_page = MailboxAdmin.list_per_page  # the same page, for a fair comparison

    @admin.display(description="Regarding")
    def regarding(self, mailbox):
        return mailbox.regarding or "—"
