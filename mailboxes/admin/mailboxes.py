from django.contrib import admin
from django.db import connections
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import smart_split, unescape_string_literal
from django.utils.timezone import localtime

from mailboxadmin.admin_tools import ServiceModelAdmin, delete_selected
from mailboxes.admin import actions
from mailboxes.admin.forms import ForwardMailboxAddForm, MailboxChangeForm
from mailboxes.models import Mailbox, MailboxSearchText, OrganizationSettings
from mailboxes.models.choices import IncomingMethod
from mailboxes.services.mailboxes import forward_mailbox_delete, forward_mailbox_insert, mailbox_save
from serverprofiles.services import can_administer_credentials

RECENT_ALERTS = 10

_TEST_RESULTS = (
    "approval_status",
    "incoming_status",
    "incoming_error",
    "outgoing_status",
    "outgoing_error",
    "act_status",
    "act_error",
    "enabled_incoming",
    "enabled_outgoing",
    "enabled_act",
    "test_completed_on",
)


@admin.register(Mailbox)
class MailboxAdmin(ServiceModelAdmin):
    """Mailboxes, for fixes across many at once.

    Scale (1,000,000 rows on PostgreSQL): the list reads one page with its profile, user
    and queue joined in; the default order (name, id) and the name-only sorting follow
    the `mailbox_name_id` index (email sorts on the unique lower(email) index); every
    filter has an index; search is `UPPER(col) LIKE '%text%'` on name, email and user
    name, which on PostgreSQL reads the search table of migration 0007 through its trigram
    indexes (see get_search_results).
    """

    list_display = (
        "name",
        "email_address",
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
    list_select_related = ("server_profile", "user", "queue")
    # 50 rows a page, as the browser list and the CRM's grids show.
    list_per_page = 50
    search_fields = ("name", "email", "username")
    search_help_text = "Finds mailboxes whose name, email address or user name contains the text."
    ordering = ("name", "id")
    sortable_by = ("name", "email_address")
    raw_id_fields = ("owner",)
    autocomplete_fields = ("server_profile",)
    actions = [
        delete_selected,
        actions.apply_default_settings,
        actions.set_server_profile,
        actions.set_delivery_methods,
        actions.test_and_enable,
        actions.approve_email,
        actions.reject_email,
        actions.activate,
        actions.deactivate,
        actions.rebind_passwords,
    ]
    delete_confirmation_template = "admin/service_delete_confirmation.html"
    delete_selected_confirmation_template = "admin/service_delete_selected_confirmation.html"

    def get_search_results(self, request, queryset, search_term):
        """On PostgreSQL each word must be found in the name, address or user name that
        MailboxSearchText holds for the mailbox (the same matches as Django's search over
        search_fields, served by that table's trigram indexes); elsewhere Django's search."""
        if connections[queryset.db].vendor != "postgresql" or not search_term.strip():
            return super().get_search_results(request, queryset, search_term)
        for word in smart_split(search_term):
            if word[0] in "\"'" and word[-1] == word[0]:
                word = unescape_string_literal(word)
            contains = Q()
            for name in self.search_fields:
                contains |= Q(**{f"{name}__icontains": word})
            queryset = queryset.filter(pk__in=MailboxSearchText.objects.filter(contains).values("mailbox_id"))
        return queryset, False

    # Columns and read-only fields -----------------------------------------------------

    @admin.display(description="Email address", ordering=Lower("email"))
    def email_address(self, mailbox):
        return mailbox.email

    @admin.display(description="Regarding")
    def regarding(self, mailbox):
        return mailbox.regarding or "—"

    @admin.display(description="Is Forward Mailbox", boolean=True)
    def is_forward_mailbox(self, mailbox):
        return mailbox.is_forward

    @admin.display(description="Processing warning")
    def processing_warning(self, mailbox):
        return mailbox.processing_warning or "—"

    @admin.display(description="Password")
    def password_state(self, mailbox):
        return "A password is set." if mailbox.has_password else "No password is set."

    @admin.display(description=f"Alerts (the {RECENT_ALERTS} most recent)")
    def recent_alerts(self, mailbox):
        alerts = mailbox.alerts.all()[:RECENT_ALERTS]
        if not alerts:
            return "—"
        items = format_html_join(
            "",
            "<li>{} · {} · {}: {}</li>",
            (
                (
                    date_format(localtime(alert.created_on), "SHORT_DATETIME_FORMAT"),
                    alert.get_severity_display(),
                    alert.get_workload_display(),
                    alert.message,
                )
                for alert in alerts
            ),
        )
        every_alert = reverse(f"{self.admin_site.name}:mailboxes_mailboxalert_changelist")
        return format_html(
            '<ul>{}</ul><a href="{}?mailbox__id__exact={}">All alerts of this mailbox</a>',
            items,
            every_alert,
            mailbox.pk,
        )

    # The forms ---------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (
                ("General", {"fields": ("name", "owner", "email", "delete_after_processing")}),
                ("Credentials", {"fields": ("allow_credentials", "username", "password")}),
                (
                    "Synchronization Method",
                    {"fields": ("server_profile", "incoming_method", "process_email_after")},
                ),
            )
        if self.has_change_permission(request, obj):
            general_extra = ("expected_version",)
            password = ("password", "clear_password") if obj.has_password else ("password",)
        else:
            general_extra = ()
            password = ("password_state",)
        return (
            (
                "General",
                {
                    "fields": (
                        "name",
                        "owner",
                        "email",
                        "delete_after_processing",
                        "regarding",
                        "is_forward_mailbox",
                        "state",
                        *general_extra,
                    )
                },
            ),
            ("Credentials", {"fields": ("allow_credentials", "username", *password)}),
            (
                "Synchronization Method",
                {
                    "fields": (
                        "server_profile",
                        "incoming_method",
                        "outgoing_method",
                        "act_method",
                        "process_email_after",
                        "processing_warning",
                    )
                },
            ),
            ("Configuration Test Results", {"fields": _TEST_RESULTS}),
            ("Alerts", {"fields": ("recent_alerts",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fields = (
            "regarding",
            "is_forward_mailbox",
            "state",
            "processing_warning",
            "password_state",
            "recent_alerts",
            *_TEST_RESULTS,
        )
        if not obj.is_forward:
            fields += ("owner",)  # a user's mailbox is the user's; a queue's follows its owner
        return fields

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = MailboxChangeForm if obj is not None else ForwardMailboxAddForm
        return super().get_form(request, obj, **kwargs)

    def get_changeform_initial_data(self, request):
        org = OrganizationSettings.load()
        return {
            "server_profile": org.default_server_profile_id,
            "incoming_method": IncomingMethod.SERVER_SIDE_SYNC,
            **super().get_changeform_initial_data(request),
        }

    # Permissions -------------------------------------------------------------------

    def has_delete_permission(self, request, obj=None):
        # M1: user and queue mailboxes go only with their user or queue.
        if obj is not None and not obj.is_forward:
            return False
        return super().has_delete_permission(request, obj)

    def has_approve_email_permission(self, request):
        return request.user.has_perm("mailboxes.approve_email")

    def has_test_mailbox_permission(self, request):
        return request.user.has_perm("mailboxes.test_mailbox")

    def has_administer_credentials_permission(self, request):
        return can_administer_credentials(request.user)

    # Writes through the services ----------------------------------------------------

    def service_insert(self, request, obj, form):
        forward_mailbox_insert(obj, actor=request.user)

    def service_update(self, request, obj, form, *, expected_version):
        mailbox_save(obj, expected_version=expected_version, actor=request.user)

    def service_delete(self, request, obj):
        forward_mailbox_delete(mailbox=obj, actor=request.user)
