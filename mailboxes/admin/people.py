"""Users and queues: each save goes through its service, which keeps the mailbox in step."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm, UsernameField
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from mailboxadmin import history
from mailboxadmin.admin_tools import (
    SelectionGuard,
    ServiceModelAdmin,
    ServiceModelForm,
    VersionedFormMixin,
    delete_selected,
)
from mailboxes.models import Queue, User
from mailboxes.services.queues import queue_delete, queue_insert, queue_save
from mailboxes.services.roles import may_administer_roles, may_change_account
from mailboxes.services.users import user_delete, user_insert, user_save

# The fields of the user pages only a System Administrator sees; left out of the form,
# a value posted for them is ignored.
_ROLE_ONLY = {
    "password",
    "usable_password",
    "password1",
    "password2",
    "is_staff",
    "is_superuser",
    "groups",
    "user_permissions",
}


class UserAddForm(ServiceModelForm, AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "full_name", "email")


class UserAddWithoutPasswordForm(ServiceModelForm):
    """The add form of anyone who may not set other people's passwords: no password
    fields (the creation form declares them, so leaving them out of the fieldsets alone
    would still read a posted password), and an account that cannot sign in until a
    System Administrator sets its password, as on the user pages."""

    class Meta:
        model = User
        fields = ("username", "full_name", "email")
        field_classes = {"username": UsernameField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.set_unusable_password()


class UserEditForm(VersionedFormMixin, ServiceModelForm, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(ServiceModelAdmin, DjangoUserAdmin):
    """Django's user admin fitted to our User (a full name instead of first and last);
    creating a user creates its mailbox, and changing the address or the active flag
    carries over to it (M12, M16).

    Roles cannot rise (SPEC 9): without the roles permission, the pages have no password,
    superuser, staff, group or permission fields (so a posted value is ignored), a new
    account gets an unusable password, the password form is refused, and a System
    Administrator's account is read-only.
    """

    form = UserEditForm
    add_form = UserAddForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("full_name", "email")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "full_name", "email", "usable_password", "password1", "password2"),
            },
        ),
    )
    list_display = ("username", "full_name", "email", "is_active", "is_staff", "mailbox_state")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    list_select_related = ("mailbox",)
    search_fields = ("username", "full_name", "email")
    search_help_text = "Finds users whose user name, full name or email address contains the text."
    ordering = ("username",)
    sortable_by = ("username",)
    actions = [delete_selected]
    delete_confirmation_template = "admin/service_delete_confirmation.html"
    delete_selected_confirmation_template = "admin/service_delete_selected_confirmation.html"

    @admin.display(description="Mailbox")
    def mailbox_state(self, user):
        mailbox = getattr(user, "mailbox", None)
        if mailbox is None:
            return "—"
        return f"{mailbox.get_state_display()}, {mailbox.get_approval_status_display()}"

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not may_administer_roles(request.user):
            fieldsets = tuple(
                (name, {**options, "fields": tuple(f for f in options["fields"] if f not in _ROLE_ONLY)})
                for name, options in fieldsets
            )
        if obj is None or not self.has_change_permission(request, obj):
            return fieldsets
        (name, options), *rest = fieldsets
        return ((name, {**options, "fields": (*options["fields"], "expected_version")}), *rest)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None and not may_administer_roles(request.user):
            kwargs["form"] = UserAddWithoutPasswordForm
        return super().get_form(request, obj, **kwargs)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_change_account(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_change_account(request.user, obj))

    def user_change_password(self, request, id, form_url=""):
        # Anyone's password, one's own included: one's own is changed on Django's
        # password-change page, which asks for the old one.
        if not may_administer_roles(request.user):
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def get_readonly_fields(self, request, obj=None):
        return ("last_login", "date_joined") if obj is not None else ()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Group and permission changes are not columns, so user_save does not see them.
        memberships = [name for name in ("groups", "user_permissions") if name in form.changed_data]
        if change and memberships:
            history.log_change(request.user, form.instance, memberships)

    def service_insert(self, request, obj, form):
        user_insert(obj, actor=request.user)

    def service_update(self, request, obj, form, *, expected_version):
        user_save(obj, expected_version=expected_version, actor=request.user)

    def service_delete(self, request, obj):
        user_delete(user=obj, actor=request.user)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(SelectionGuard, DjangoGroupAdmin):
    """Groups are roles: only a System Administrator sees or changes them (SPEC 9)."""

    def has_module_permission(self, request):
        return may_administer_roles(request.user)

    def has_view_permission(self, request, obj=None):
        return may_administer_roles(request.user)

    def has_add_permission(self, request):
        return may_administer_roles(request.user)

    def has_change_permission(self, request, obj=None):
        return may_administer_roles(request.user)

    def has_delete_permission(self, request, obj=None):
        return may_administer_roles(request.user)


class QueueForm(VersionedFormMixin, ServiceModelForm):
    class Meta:
        model = Queue
        fields = "__all__"


@admin.register(Queue)
class QueueAdmin(ServiceModelAdmin):
    """Queues: creating one creates its mailbox; its address, owner and active flag
    carry over to the mailbox (M12, M16)."""

    form = QueueForm
    list_display = ("name", "queue_type", "email", "owner", "is_active", "convert_incoming")
    list_filter = ("queue_type", "is_active", "convert_incoming")
    list_select_related = ("owner",)
    search_fields = ("name", "email")
    search_help_text = "Finds queues whose name or incoming email address contains the text."
    ordering = ("name",)
    raw_id_fields = ("owner",)
    actions = [delete_selected]
    delete_confirmation_template = "admin/service_delete_confirmation.html"
    delete_selected_confirmation_template = "admin/service_delete_selected_confirmation.html"

    def get_fieldsets(self, request, obj=None):
        general = ["name", "queue_type", "email", "owner", "description", "convert_incoming", "is_active"]
        if obj is not None and self.has_change_permission(request, obj):
            general.append("expected_version")
        return ((None, {"fields": general}),)

    def service_insert(self, request, obj, form):
        queue_insert(obj, actor=request.user)

    def service_update(self, request, obj, form, *, expected_version):
        queue_save(obj, expected_version=expected_version, actor=request.user)

    def service_delete(self, request, obj):
        queue_delete(queue=obj, actor=request.user)
