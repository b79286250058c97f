"""Bulk actions on mailboxes. Each calls the same services as the browser UI, so every
rule holds; a mailbox that would break one is left unchanged and listed with the reason.
A selection of more than BACKGROUND_THRESHOLD mailboxes runs in the background."""

from django.contrib import admin
from django.contrib.admin import helpers
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from mailboxadmin.admin_tools import outcome_level
from mailboxadmin.outcomes import BulkOutcome
from mailboxes.forms import SetDeliveryMethodsForm, SetServerProfileForm
from mailboxes.models import BulkJob
from mailboxes.services.bulk import mailboxes_each
from mailboxes.services.bulk_jobs import mailboxes_bulk_action
from mailboxes.services.mailboxes import mailbox_rebind_password
from mailboxes.services.testing import schedule_mailbox_tests


def selected_ids(queryset) -> list[int]:
    return list(queryset.order_by().values_list("pk", flat=True))


def each_mailbox(queryset, apply) -> BulkOutcome:
    """Call `apply(mailbox)` (a service) for each selected mailbox, one transaction each."""
    return mailboxes_each(selected_ids(queryset), apply)


def report(modeladmin, request, outcome: BulkOutcome, verb: str = "updated") -> None:
    modeladmin.message_user(request, outcome.summary(verb), outcome_level(outcome))


def run_bulk_action(modeladmin, request, queryset, action: str, verb: str, parameters=None):
    """Run `action` on the selection, or schedule it when it is large: then the page that
    follows its progress and shows its result."""
    result = mailboxes_bulk_action(
        action=action, mailbox_ids=selected_ids(queryset), parameters=parameters, actor=request.user
    )
    if isinstance(result, BulkJob):
        modeladmin.message_user(
            request,
            f"{result.get_action_display()} on {result.total} mailboxes is scheduled to run in the "
            "background.",
        )
        return HttpResponseRedirect(result.get_absolute_url())
    report(modeladmin, request, result, verb)
    return None


@admin.action(permissions=["change"], description="Apply Default Email Settings")
def apply_default_settings(modeladmin, request, queryset):
    return run_bulk_action(modeladmin, request, queryset, BulkJob.Action.APPLY_DEFAULT_SETTINGS, "updated")


@admin.action(permissions=["change"], description="Activate")
def activate(modeladmin, request, queryset):
    return run_bulk_action(modeladmin, request, queryset, BulkJob.Action.ACTIVATE, "activated")


@admin.action(permissions=["change"], description="Deactivate")
def deactivate(modeladmin, request, queryset):
    return run_bulk_action(modeladmin, request, queryset, BulkJob.Action.DEACTIVATE, "deactivated")


@admin.action(permissions=["approve_email"], description="Approve Email")
def approve_email(modeladmin, request, queryset):
    return run_bulk_action(modeladmin, request, queryset, BulkJob.Action.APPROVE, "approved")


@admin.action(permissions=["approve_email"], description="Reject Email")
def reject_email(modeladmin, request, queryset):
    return run_bulk_action(modeladmin, request, queryset, BulkJob.Action.REJECT, "rejected")


@admin.action(
    permissions=["administer_credentials"], description="Re-bind stored passwords to the current server"
)
def rebind_passwords(modeladmin, request, queryset):
    """SPEC 9: a System Administrator vouches that the mailboxes' current servers are the
    ones their stored passwords were entered for."""
    outcome = each_mailbox(
        queryset, lambda mailbox: mailbox_rebind_password(mailbox=mailbox, actor=request.user)
    )
    report(modeladmin, request, outcome, "re-bound")


@admin.action(permissions=["test_mailbox"], description="Test & Enable Mailbox")
def test_and_enable(modeladmin, request, queryset):
    ids = selected_ids(queryset)
    schedule_mailbox_tests(ids, actor=request.user)
    modeladmin.message_user(
        request,
        f"Test & Enable scheduled for {len(ids)} mailbox{'es' if len(ids) != 1 else ''}; "
        "the results show on each mailbox when its test has run.",
    )


@admin.action(permissions=["change"], description="Set Server Profile…")
def set_server_profile(modeladmin, request, queryset):
    form = SetServerProfileForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        profile = form.cleaned_data["server_profile"]
        parameters = {"server_profile": profile.pk if profile is not None else None}
        return run_bulk_action(
            modeladmin, request, queryset, BulkJob.Action.SET_SERVER_PROFILE, "updated", parameters
        )
    return change_multiple_page(
        modeladmin, request, queryset, form, action="set_server_profile", title="Set Server Profile"
    )


@admin.action(permissions=["change"], description="Set Delivery Methods…")
def set_delivery_methods(modeladmin, request, queryset):
    form = SetDeliveryMethodsForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        return run_bulk_action(
            modeladmin, request, queryset, BulkJob.Action.SET_DELIVERY_METHODS, "updated", form.methods()
        )
    return change_multiple_page(
        modeladmin, request, queryset, form, action="set_delivery_methods", title="Set Delivery Methods"
    )


def change_multiple_page(modeladmin, request, queryset, form, *, action: str, title: str):
    """The intermediate page of a "Change Multiple Records" action: the choices, and the
    selection carried along (the ticked ids, or "all that match" with the list's filters
    kept in the URL)."""
    opts = modeladmin.opts
    select_across = request.POST.get("select_across") == "1"
    count = queryset.count()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "form": form,
        "media": modeladmin.media + form.media,
        "count": count,
        "noun": opts.verbose_name if count == 1 else opts.verbose_name_plural,
        "action": action,
        "select_across": select_across,
        # Django acts only when some rows are ticked, even for "all that match".
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "changelist_url": reverse(
            f"{modeladmin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
        ),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/mailboxes/mailbox/change_multiple.html", context)
