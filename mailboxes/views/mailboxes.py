"""Mailbox pages: the list, New Forward Mailbox, and the mailbox form."""

from urllib.parse import urlencode

from django.db.models.functions import Lower
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.views import View

from mailboxadmin.links import pk_links
from mailboxadmin.paginator import SortKey
from mailboxadmin.views import (
    KeysetListView,
    ServiceCreateView,
    ServiceUpdateView,
    StaffPermissionMixin,
)
from mailboxes.forms import ForwardMailboxForm, MailboxForm
from mailboxes.models import Mailbox, OrganizationSettings
from mailboxes.models.mailboxes import FORWARD_TARGET_MISSING
from mailboxes.services.first_run import setup_steps
from mailboxes.services.mailboxes import default_settings_for, forward_mailbox_insert, mailbox_save
from mailboxes.views.commands import commands_for
from mailboxes.views.conflicts import EmailConflictMixin
from mailboxes.views.list_filters import SAVED_VIEWS, MailboxListFilters
from mailboxes.views.processing import mail_processing


class MailboxListView(KeysetListView):
    template_name = "mailboxes/mailbox_list.html"
    view_permission = "mailboxes.view_mailbox"
    change_permission = "mailboxes.change_mailbox"
    sorts = {
        "name": [SortKey("name"), SortKey("id")],
        # Unique (M11), so the address alone orders the rows; the unique index on
        # LOWER(email) serves both the order and the cursor.
        "email": [SortKey("email_lower", Lower("email"))],
    }

    def filters(self) -> MailboxListFilters:
        return MailboxListFilters.from_params(self.request.GET)

    def get_queryset(self):
        mailboxes = Mailbox.objects.select_related("user", "queue", "server_profile").with_forward_targets()
        return self.filters().apply(mailboxes)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filters = self.filters()
        current = filters.view
        context.update(
            saved_views=[
                {"key": key, "label": label, "link": self.query_string(view=key), "current": key == current}
                for key, (label, _) in SAVED_VIEWS.items()
            ],
            current_view=filters.label,
            view=current,
            matching=filters.as_params(),
            matching_query=urlencode(filters.as_params()),
            forward_target_missing=FORWARD_TARGET_MISSING,
            commands=commands_for(self.request.user),
            can_add=self.request.user.has_perm("mailboxes.add_mailbox"),
            search_matches="contain",
            # For those who can act on it: Read-only users cannot take these steps.
            setup_steps=setup_steps(self.request.user) if self.can_change else [],
        )
        # Each row's links, from one reverse() per kind of link rather than two per row:
        # reversing per row took a sixth of this page's time (budget ≤ 30 ms).
        links = {name: pk_links(f"{name}:edit") for name in ("mailboxes", "users", "queues")}
        for mailbox in context["page"]:
            mailbox.edit_link = links["mailboxes"](mailbox.pk)
            if mailbox.user_id is not None:
                mailbox.regarding_link = links["users"](mailbox.user_id)
            elif mailbox.queue_id is not None:
                mailbox.regarding_link = links["queues"](mailbox.queue_id)
        return context


class MailboxMatchingCountView(StaffPermissionMixin, View):
    """How many mailboxes the list's filters match, for "Select all N mailboxes that
    match". The list's script asks only once every row of a page is ticked: the list
    itself never counts (a COUNT of a million rows would be most of its time)."""

    view_permission = "mailboxes.view_mailbox"
    http_method_names = ["get", "head"]

    def get(self, request):
        filters = MailboxListFilters.from_params(request.GET)
        if not filters.searchable:
            return HttpResponseBadRequest("This search can match no mailbox.", content_type="text/plain")
        count = filters.apply(Mailbox.objects.all()).count()
        return JsonResponse({"count": count}, headers={"Cache-Control": "no-store"})


class MailboxFormContextMixin(EmailConflictMixin):
    list_url_name = "mailboxes:list"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["mailbox"] = mailbox = context["form"].instance
        warnings = (
            mailbox.processing_warning,
            mailbox.forward_target_warning,
            mailbox.password_binding_warning,
        )
        context["warning"] = " ".join(warning for warning in warnings if warning)
        return context


class NewForwardMailboxView(MailboxFormContextMixin, ServiceCreateView):
    """New Forward Mailbox (M1: the only kind of mailbox that is created on its own)."""

    form_class = ForwardMailboxForm
    template_name = "mailboxes/mailbox_form.html"
    add_permission = "mailboxes.add_mailbox"
    saved_message = "The forward mailbox “{object.name}” was created."

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        defaults = default_settings_for(Mailbox.Kind.FORWARD, OrganizationSettings.load())
        kwargs["instance"] = Mailbox(kind=Mailbox.Kind.FORWARD, owner=self.request.user, **defaults)
        return kwargs

    def save(self, form):
        return forward_mailbox_insert(form.instance, actor=self.request.user)


class MailboxEditView(MailboxFormContextMixin, ServiceUpdateView):
    form_class = MailboxForm
    template_name = "mailboxes/mailbox_form.html"
    view_permission = "mailboxes.view_mailbox"
    change_permission = "mailboxes.change_mailbox"
    saved_message = "The mailbox “{object.name}” was saved."

    def get_queryset(self):
        return Mailbox.objects.select_related("user", "queue", "server_profile", "owner")

    def save(self, form):
        return mailbox_save(
            form.instance, expected_version=form.cleaned_data["version"], actor=self.request.user
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        mailbox = self.object
        context["commands"] = commands_for(self.request.user, mailbox=mailbox)
        context["alerts"] = alerts = list(mailbox.alerts.all()[:10])
        context["latest_alert"] = alerts[0] if alerts else None
        context["test_errors"] = last_test_errors(mailbox)
        context["processing"] = mail_processing(mailbox, self.request.user)
        return context


def last_test_errors(mailbox: Mailbox) -> list[tuple[str, str]]:
    """The last test's errors, a line each. One error of several workloads (the address
    needs approval, say) is about the mailbox itself: once, as "General", the workload
    its alert has too."""
    errors = {}
    for label, error in (
        ("Incoming Email", mailbox.incoming_error),
        ("Outgoing Email", mailbox.outgoing_error),
        ("Appointments, Contacts, and Tasks", mailbox.act_error),
    ):
        if error:
            errors.setdefault(error, []).append(label)
    return [(labels[0] if len(labels) == 1 else "General", error) for error, labels in errors.items()]


STATUS_TEMPLATE = "mailboxes/includes/mailbox_status.html"
TEST_RESULT_FIELDS = ("incoming_status", "outgoing_status", "act_status", "test_completed_on")


class MailboxStatusView(StaffPermissionMixin, View):
    """The top of a mailbox's form as JSON, which its script asks for while a Test &
    Enable runs: the results appear without a reload."""

    view_permission = "mailboxes.view_mailbox"
    http_method_names = ["get", "head"]

    def get(self, request, pk):
        mailbox = get_object_or_404(Mailbox.objects.select_related("user", "queue", "owner"), pk=pk)
        # The form's read-only Configuration Test Results, as the form itself shows them.
        shown = MailboxForm(instance=mailbox).initial
        return JsonResponse(
            {
                "scheduled": mailbox.test_scheduled_on is not None,
                "version": mailbox.version,
                "html": render_to_string(
                    STATUS_TEMPLATE,
                    {"mailbox": mailbox, "latest_alert": mailbox.alerts.first()},
                    request=request,
                ),
                "fields": {name: shown[name] for name in TEST_RESULT_FIELDS},
            },
            headers={"Cache-Control": "no-store"},
        )
