from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from mailboxadmin.admin_tools import ServiceModelAdmin, ServiceModelForm, VersionedFormMixin
from mailboxes.models import OrganizationSettings
from mailboxes.services.organization import organization_settings_save


class OrganizationSettingsForm(VersionedFormMixin, ServiceModelForm):
    class Meta:
        model = OrganizationSettings
        fields = "__all__"


@admin.register(OrganizationSettings)
class OrganizationSettingsAdmin(ServiceModelAdmin):
    """The one record of organisation email settings: changed, never added or deleted."""

    form = OrganizationSettingsForm
    autocomplete_fields = ("default_server_profile",)
    actions = []

    def get_fieldsets(self, request, obj=None):
        extra = ("expected_version",) if obj is not None and self.has_change_permission(request, obj) else ()
        return (
            (
                "Defaults for new mailboxes",
                {"fields": ("default_server_profile", "default_incoming", "default_outgoing", "default_act")},
            ),
            (
                "Approval",
                {"fields": ("approval_required_for_users", "approval_required_for_queues", *extra)},
            ),
            ("Mail Processing", {"fields": ("disable_after_failures",)}),
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        org = OrganizationSettings.load()
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:mailboxes_organizationsettings_change", args=[org.pk])
        )

    def service_update(self, request, obj, form, *, expected_version):
        organization_settings_save(obj, expected_version=expected_version, actor=request.user)
