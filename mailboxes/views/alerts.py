"""/alerts/: every alert, about a mailbox or a whole server profile, newest first."""

from mailboxadmin.links import pk_links
from mailboxadmin.paginator import SortKey
from mailboxadmin.views import KeysetListView
from mailboxes.models import Mailbox, MailboxAlert
from mailboxes.views.filters import RecordFiltersMixin
from serverprofiles.models import EmailServerProfile

FILTERS = {
    "mailbox": ("mailbox_id", Mailbox, "Mailbox"),
    "profile": ("profile_id", EmailServerProfile, "Server Profile"),
}

LIST_COLUMNS = ("severity", "workload", "message", "created_on", "mailbox__name", "profile__name")
SEVERITY_VIEWS = [("", "All Severities"), *MailboxAlert.Severity.choices]


class AlertListView(RecordFiltersMixin, KeysetListView):
    """Alerts across mailboxes and profiles: whoever may see a mailbox (and so its alerts
    on its form) sees them all here. Keyset pages on (created_on, id); the severity,
    mailbox and profile filters each have an index that starts with their column and
    continues with created_on (migration 0014 adds severity's)."""

    template_name = "mailboxes/alert_list.html"
    view_permission = "mailboxes.view_mailbox"
    sorts = {"created": [SortKey("created_on"), SortKey("id")]}
    default_sort = "created"
    record_filters = FILTERS
    exclusive = ("mailbox", "profile")

    def current_sort(self) -> tuple[str, bool]:
        return "created", True  # newest first, always

    def severity(self) -> str:
        severity = self.request.GET.get("severity", "")
        return severity if severity in MailboxAlert.Severity.values else ""

    def get_queryset(self):
        alerts = MailboxAlert.objects.select_related("mailbox", "profile").only(*LIST_COLUMNS)
        if self.severity():
            alerts = alerts.filter(severity=self.severity())
        return self.filter_records(alerts)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        shown = self.severity()
        context.update(
            severities=[
                {"label": label, "link": self.query_string(severity=value or None), "current": value == shown}
                for value, label in SEVERITY_VIEWS
            ],
            filter_chips=self.filter_chips(),
            can_view_profiles=self.request.user.has_perm("serverprofiles.view_emailserverprofile"),
        )
        links = {"mailbox": pk_links("mailboxes:edit"), "profile": pk_links("serverprofiles:edit")}
        filter_links = {name: self.filter_link(name) for name in FILTERS}
        for alert in context["page"]:
            if alert.mailbox_id is not None:
                alert.mailbox_link = links["mailbox"](alert.mailbox_id)
                alert.mailbox_filter_link = filter_links["mailbox"](alert.mailbox_id)
            if alert.profile_id is not None:
                alert.profile_link = links["profile"](alert.profile_id)
                alert.profile_filter_link = filter_links["profile"](alert.profile_id)
        return context
