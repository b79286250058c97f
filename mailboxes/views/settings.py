"""The organisation's email settings: defaults for new mailboxes and the approval switches."""

from django.urls import reverse

from mailboxadmin.views import ServiceUpdateView
from mailboxes.forms import OrganizationSettingsForm
from mailboxes.models import OrganizationSettings
from mailboxes.services.organization import organization_settings_save


class EmailSettingsView(ServiceUpdateView):
    form_class = OrganizationSettingsForm
    template_name = "mailboxes/settings_form.html"
    view_permission = "mailboxes.view_organizationsettings"
    change_permission = "mailboxes.change_organizationsettings"
    list_url_name = "mailboxes:list"
    saved_message = "The email settings were saved."

    def get_object(self, queryset=None):
        return OrganizationSettings.load()

    def save(self, form):
        return organization_settings_save(
            form.instance, expected_version=form.cleaned_data["version"], actor=self.request.user
        )

    def get_success_url(self):
        if "save_close" in self.request.POST:
            return reverse(self.list_url_name)
        return reverse("settings:email")
