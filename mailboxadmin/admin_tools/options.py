"""A ModelAdmin whose every write goes through the services."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import actions as django_actions
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from mailboxadmin.admin_tools.pagination import EstimatedCountPaginator
from mailboxadmin.exceptions import StaleEditError
from mailboxadmin.outcomes import BulkOutcome, reasons


@admin.action(permissions=["delete"], description="Delete selected %(verbose_name_plural)s")
def delete_selected(modeladmin, request, queryset):
    """Django's confirmation page, then each deletion through the service: records a
    rule protects are left in place and listed with the reason."""
    if not request.POST.get("post"):
        return django_actions.delete_selected(modeladmin, request, queryset)
    outcome = BulkOutcome(model=modeladmin.model)
    for obj in queryset:
        try:
            with transaction.atomic():
                modeladmin.delete_model(request, obj)
        except ValidationError as error:
            outcome.refuse(str(obj), error)
        else:
            outcome.updated += 1
    modeladmin.message_user(request, outcome.summary("deleted"), outcome_level(outcome))
    return None


def outcome_level(outcome) -> int:
    """The message level of a bulk outcome: success, partly refused, or all refused."""
    if not outcome.refused:
        return messages.SUCCESS
    return messages.WARNING if outcome.updated else messages.ERROR


def column_holds(column, value) -> bool:
    """Whether `value` fits `column`: a query comparing the column with a value it cannot
    hold ("abc", "²", 2**80 on SQLite) fails instead of matching nothing."""
    try:
        column.clean(value, None)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


class TolerantAutocompleteSelect(AutocompleteSelect):
    """Django's autocomplete, re-showing a refused form whose value is no id at all.

    Django looks the submitted value up to show it again, and a value its column cannot
    hold ("abc", 2**80) fails in that query: a crash instead of the form's own
    "Select a valid choice". Such a value names no record, so nothing is shown.
    """

    def optgroups(self, name, value, attr=None):
        target = self.field.remote_field
        column = target.model._meta.get_field(target.field_name)
        fitting = [item for item in value if column_holds(column, item)]
        return super().optgroups(name, fitting, attr)


class TolerantModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Django's, refusing a value its column cannot hold (2**80 on SQLite fails in the
    query Django checks the values with) as it refuses any other unknown value."""

    def _check_values(self, value):
        model = self.queryset.model
        column = model._meta.get_field(self.to_field_name) if self.to_field_name else model._meta.pk
        for item in value:
            if not column_holds(column, item):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": item}
                )
        return super()._check_values(value)


class SelectionGuard:
    """For a ModelAdmin: an action whose posted selection holds a value that is no id is
    refused with a message, not a server error."""

    def response_action(self, request, queryset):
        # Django selects the rows with pk__in=<the posted values>, a query that fails on a
        # value the key cannot hold. The changelist posts ids only: such a value comes
        # from a damaged form, so the action is refused before it runs.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(column_holds(self.opts.pk, value) for value in selected):
            self.message_user(
                request,
                f"Nothing was changed: the selection holds a value that is not the id of any "
                f"{self.opts.verbose_name}. Reload the page and select the rows again.",
                messages.ERROR,
            )
            return None
        return super().response_action(request, queryset)


class ServiceModelAdmin(SelectionGuard, admin.ModelAdmin):
    """Saves and deletes through the services, which validate, lock, check the version
    the editor read and write the history entry.

    Subclasses implement `service_insert`, `service_update` and `service_delete`. A
    ValidationError a service raises after the form passed (a rule only the service
    checks, a race) is shown on the re-displayed form; StaleEditError sends the editor
    back to the current values with a message. The admin's own history entries are
    switched off where a service writes one, so nothing is logged twice.

    Scale: an estimated count on unfiltered lists, no second COUNT(*) for "(N total)",
    and no facet counts.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    actions = [delete_selected]

    def service_insert(self, request, obj, form) -> None:
        raise NotImplementedError

    def service_update(self, request, obj, form, *, expected_version) -> None:
        raise NotImplementedError

    def service_delete(self, request, obj) -> None:
        raise NotImplementedError

    def action_checkbox(self, obj):
        # The same input Django renders, without a trip through the widget templates for
        # each row. Kept for the admin changelist budget (≤ 60 ms at 1,000,000 mailboxes,
        # 49.6 ms in the last full bench): Django's own rendering adds about 7 ms to a
        # 100-row page (p50 38.6 → 43.7 ms, fastest run 26.7 → 34.2 ms, at 100,000
        # mailboxes on PostgreSQL), which would leave that page a few ms from its line.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="Select this object for an action - {}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            obj,
        )

    # Form fields that refuse a mangled value instead of failing on it --------------

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", TolerantModelMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            using = kwargs.get("using")
            kwargs["widget"] = TolerantAutocompleteSelect(db_field, self.admin_site, using=using)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # Writes -----------------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        if change:
            self.service_update(
                request, obj, form, expected_version=form.cleaned_data.get("expected_version")
            )
        else:
            self.service_insert(request, obj, form)
        request.saved_through_service = True

    def delete_model(self, request, obj):
        self.service_delete(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.service_delete(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        refused = getattr(request, "refused_by_service", None)
        if refused is not None:
            form = type(form.__name__, (form,), {"refused_by_service": refused})
        return form

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except StaleEditError as stale:
            self.message_user(request, str(stale), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        except ValidationError as refused:
            if getattr(request, "refused_by_service", None) is not None:
                raise
            # The first attempt was rolled back; validate the same submission again,
            # this time with the service's errors, so they show on the form.
            request.refused_by_service = refused
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as refused:
            self.message_user(request, reasons(refused, self.model), messages.ERROR)
            return HttpResponseRedirect(
                reverse(
                    f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
                    args=[object_id],
                )
            )

    def get_deleted_objects(self, objs, request):
        """The delete confirmation page: the refusals the services would give, found by
        asking them in a transaction that is always rolled back; without refusals,
        Django's list of what goes with the records.

        Related rows the service deletes with a record (a user's mailbox) need no
        separate delete permission: the permission to delete the record is checked.
        """
        refusals = []
        # Fresh instances: a deletion, even one rolled back, clears the instance's pk.
        fresh = self.model._default_manager.filter(pk__in=[obj.pk for obj in objs])
        with transaction.atomic():
            for obj in fresh:
                try:
                    with transaction.atomic():
                        self.service_delete(request, obj)
                except ValidationError as error:
                    refusals.extend(self.deletion_refusals(obj, error))
            transaction.set_rollback(True)
        if refusals:
            return [], {}, set(), refusals
        deletable, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deletable, model_count, set(), protected

    def deletion_refusals(self, obj, error: ValidationError) -> list[str]:
        """The lines the confirmation page lists for a record a service refuses to delete."""
        return [f"{self.opts.verbose_name.capitalize()} “{obj}”: {reasons(error, self.model)}"]

    # History: the services write it -------------------------------------------------

    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        if getattr(request, "saved_through_service", False):
            return None
        return super().log_change(request, obj, message)

    def log_deletion(self, request, obj, object_repr):
        return None

    def log_deletions(self, request, queryset):
        return None
