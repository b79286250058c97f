from django import forms
from django.contrib import admin
from django.db.models import Exists, OuterRef

from mailboxadmin.admin_tools import (
    ServiceModelAdmin,
    ServiceModelForm,
    VersionedFormMixin,
    WriteOnlyPasswordsMixin,
    clear_password_field,
    delete_selected,
    key_file_field,
    password_field,
)
from mailboxes.models import Mailbox, OrganizationSettings
from mailboxes.services.organization import may_change_organization_settings
from mailboxes.services.testing import schedule_mailbox_tests
from serverprofiles.forms import SECRET_HELP, SECRET_NOUNS
from serverprofiles.models import EmailServerProfile
from serverprofiles.services import (
    ProfileInUseError,
    can_administer_credentials,
    profile_create,
    profile_delete,
    profile_save,
    profiles_rebind_passwords,
)


class ServerProfileForm(WriteOnlyPasswordsMixin, VersionedFormMixin, ServiceModelForm):
    make_default = forms.BooleanField(
        label="Set as default profile for new mailboxes",
        required=False,
        help_text="At most one profile is the default; choosing this one replaces the current default.",
    )
    incoming_password = password_field("Password (incoming)")
    clear_incoming_password = clear_password_field("Clear password (incoming)")
    outgoing_password = password_field("Password (outgoing)")
    clear_outgoing_password = clear_password_field("Clear password (outgoing)")
    oauth_client_secret = password_field("Client Secret")
    clear_oauth_client_secret = clear_password_field("Clear client secret")
    oauth_service_account_key = key_file_field("Service Account Key")
    clear_oauth_service_account_key = clear_password_field("Clear service account key")
    write_only_nouns = SECRET_NOUNS
    write_only_help = SECRET_HELP
    write_only_passwords = {
        "oauth_client_secret": (
            "set_oauth_client_secret",
            "oauth_client_secret_ciphertext",
            "has_oauth_client_secret",
        ),
        "oauth_service_account_key": (
            "set_oauth_service_account_key",
            "oauth_service_account_key_ciphertext",
            "has_oauth_service_account_key",
        ),
        "incoming_password": (
            "set_incoming_password",
            "incoming_password_ciphertext",
            "has_incoming_password",
        ),
        "outgoing_password": (
            "set_outgoing_password",
            "outgoing_password_ciphertext",
            "has_outgoing_password",
        ),
    }

    # The default profile is an organisation email setting (P7): the admin sets this for
    # those who may not change the settings, and the checkbox then keeps its value.
    default_locked = False

    class Meta:
        model = EmailServerProfile
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["make_default"].initial = self.instance.is_default
        if self.default_locked:
            self.fields["make_default"].disabled = True
            self.fields["make_default"].help_text = (
                "The default profile is an organisation email setting; only those who may change "
                "the email settings choose it."
            )


@admin.action(permissions=["test_mailbox"], description="Test & Enable Mailboxes")
def test_and_enable_mailboxes(modeladmin, request, queryset):
    """Test & Enable every mailbox of the selected profiles."""
    ids = list(Mailbox.objects.filter(server_profile__in=queryset.values("pk")).values_list("pk", flat=True))
    schedule_mailbox_tests(ids, actor=request.user)
    modeladmin.message_user(
        request,
        f"Test & Enable scheduled for the {len(ids)} mailbox{'es' if len(ids) != 1 else ''} of the "
        "selected profiles; the results show on each mailbox when its test has run.",
    )


@admin.action(
    permissions=["administer_credentials"],
    description="Re-bind stored passwords and OAuth secrets to the current servers",
)
def rebind_passwords(modeladmin, request, queryset):
    """SPEC 9: a System Administrator vouches that the profiles' current servers are the
    ones their stored passwords (and the Token URL the one their OAuth secret) were entered
    for."""
    count = profiles_rebind_passwords(queryset.values_list("pk", flat=True), actor=request.user)
    modeladmin.message_user(
        request,
        f"Stored passwords and OAuth secrets of {count} profile{'s' if count != 1 else ''} re-bound to "
        "their current servers.",
    )


@admin.register(EmailServerProfile)
class EmailServerProfileAdmin(ServiceModelAdmin):
    form = ServerProfileForm
    list_display = (
        "name",
        "server_type",
        "incoming_server",
        "incoming_port",
        "outgoing_server",
        "outgoing_port",
        "incoming_auth",
        "owner",
        "is_default",
    )
    list_filter = ("server_type", "incoming_auth", "incoming_ssl")
    list_select_related = ("owner",)
    search_fields = ("name", "incoming_server", "outgoing_server")
    search_help_text = "Finds profiles whose name or server location contains the text."
    ordering = ("name",)
    raw_id_fields = ("owner",)
    actions = [delete_selected, test_and_enable_mailboxes, rebind_passwords]
    delete_confirmation_template = "admin/service_delete_confirmation.html"
    delete_selected_confirmation_template = "admin/service_delete_selected_confirmation.html"

    def get_queryset(self, request):
        # P7's one place (the organisation settings) joined in, not asked once per row.
        default = OrganizationSettings.objects.filter(pk=1, default_server_profile=OuterRef("pk"))
        return super().get_queryset(request).annotate(is_default_profile=Exists(default))

    @admin.display(description="Default", boolean=True, ordering="is_default_profile")
    def is_default(self, profile):
        return profile.is_default_profile

    def get_fieldsets(self, request, obj=None):
        editable = obj is None or self.has_change_permission(request, obj)
        general = ["name", "description", "server_type", "owner"]
        incoming_password, outgoing_password = ["incoming_password"], ["outgoing_password"]
        oauth_secrets = ["oauth_client_secret", "oauth_service_account_key"]
        if not editable:
            incoming_password = outgoing_password = oauth_secrets = []
        elif obj is not None:
            general.append("expected_version")
            if obj.incoming_password_ciphertext:
                incoming_password.append("clear_incoming_password")
            if obj.outgoing_password_ciphertext:
                outgoing_password.append("clear_outgoing_password")
            if obj.oauth_client_secret_ciphertext:
                oauth_secrets.insert(1, "clear_oauth_client_secret")
            if obj.oauth_service_account_key_ciphertext:
                oauth_secrets.append("clear_oauth_service_account_key")
        if editable:
            general.append("make_default")
        return (
            ("General", {"fields": general}),
            (
                "Locations and ports",
                {
                    "fields": (
                        "auto_discover",
                        "incoming_server",
                        "incoming_port",
                        "incoming_ssl",
                        "outgoing_server",
                        "outgoing_port",
                        "outgoing_ssl",
                    )
                },
            ),
            (
                "Authentication",
                {
                    "fields": (
                        "incoming_auth",
                        "incoming_username",
                        *incoming_password,
                        "use_same_settings_for_outgoing",
                        "outgoing_auth",
                        "outgoing_username",
                        *outgoing_password,
                        "allow_unencrypted_credentials",
                    )
                },
            ),
            (
                "OAuth 2.0",
                {
                    "description": "With OAuth 2.0 (Modern Authentication), and Server to Server "
                    "Authentication on Exchange Online.",
                    "fields": (
                        "oauth_provider",
                        "oauth_tenant_id",
                        "oauth_token_url",
                        "oauth_client_id",
                        *oauth_secrets,
                        "oauth_scope",
                    ),
                },
            ),
            (
                "Advanced",
                {
                    "fields": (
                        "process_email_from",
                        "min_polling_interval",
                        "max_connections",
                        "move_failed_to_undeliverable",
                        "timeout_ms",
                    )
                },
            ),
        )

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if may_change_organization_settings(request.user):
            return form
        return type(form.__name__, (form,), {"default_locked": True})

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not can_administer_credentials(request.user):  # SPEC 9: System Administrators only
            readonly.append("allow_unencrypted_credentials")
        return readonly

    def has_administer_credentials_permission(self, request):
        return can_administer_credentials(request.user)

    def has_test_mailbox_permission(self, request):
        return request.user.has_perm("mailboxes.test_mailbox")

    def service_insert(self, request, obj, form):
        profile_create(obj, make_default=form.cleaned_data["make_default"], actor=request.user)

    def service_update(self, request, obj, form, *, expected_version):
        profile_save(
            obj,
            expected_version=expected_version,
            make_default=form.cleaned_data["make_default"],
            actor=request.user,
        )

    def service_delete(self, request, obj):
        profile_delete(profile=obj, actor=request.user)

    def deletion_refusals(self, obj, error):
        if not isinstance(error, ProfileInUseError):
            return super().deletion_refusals(obj, error)
        more = [f"and {error.total - len(error.emails)} more"] if error.total > len(error.emails) else []
        return [
            f"Email server profile “{obj}” is used by {error.total} "
            f"mailbox{'es' if error.total != 1 else ''}; give them another server profile first:",
            [*error.emails, *more],
        ]
