"""User pages: list, new user (which creates its mailbox), and the user form."""

from functools import cached_property

from django.core.exceptions import PermissionDenied

from mailboxadmin.paginator import SortKey
from mailboxadmin.views import KeysetListView, ServiceCreateView, ServiceUpdateView, search_filter
from mailboxes.forms import NewUserForm, UserForm
from mailboxes.models import User
from mailboxes.services.roles import may_change_account
from mailboxes.services.users import user_insert, user_save
from mailboxes.views.commands import REGARDING_COMMANDS, commands_for
from mailboxes.views.conflicts import EmailConflictMixin


class UserListView(KeysetListView):
    template_name = "mailboxes/user_list.html"
    view_permission = "mailboxes.view_user"
    change_permission = "mailboxes.change_user"
    sorts = {
        "username": [SortKey("username")],  # unique
        "full_name": [SortKey("full_name"), SortKey("id")],
    }
    default_sort = "username"

    def get_queryset(self):
        users = User.objects.select_related("mailbox")
        q = self.request.GET.get("q", "").strip()
        if q:
            users = users.filter(search_filter(q, ["username", "full_name", "email"]))
        return users

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["commands"] = commands_for(self.request.user, names=REGARDING_COMMANDS)
        context["can_add"] = self.request.user.has_perm("mailboxes.add_user")
        return context


class RegardingFormMixin(EmailConflictMixin):
    """A user's or queue's form: it links to its mailbox and offers Approve/Reject for it."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        mailbox = getattr(self.object, "mailbox", None) if self.object and self.object.pk else None
        context["regarding_mailbox"] = mailbox
        context["commands"] = (
            commands_for(self.request.user, mailbox=mailbox, names=REGARDING_COMMANDS) if mailbox else []
        )
        return context


class NewUserView(EmailConflictMixin, ServiceCreateView):
    form_class = NewUserForm
    template_name = "mailboxes/user_form.html"
    add_permission = "mailboxes.add_user"
    list_url_name = "users:list"
    saved_message = "The user “{object.username}” and their mailbox were created."

    def save(self, form):
        user = form.instance
        user.set_unusable_password()
        return user_insert(user, actor=self.request.user)


class UserEditView(RegardingFormMixin, ServiceUpdateView):
    model = User
    # Not "user" (Django's default for this model): that is the signed-in user, whom the
    # top bar names and whose permissions decide the navigation.
    context_object_name = "account"
    form_class = UserForm
    template_name = "mailboxes/user_form.html"
    view_permission = "mailboxes.view_user"
    change_permission = "mailboxes.change_user"
    list_url_name = "users:list"
    saved_message = "The user “{object.username}” was saved."

    def get_queryset(self):
        return User.objects.select_related("mailbox")

    @cached_property
    def account_protected(self) -> bool:
        """A System Administrator's account, which this user may not change (SPEC 9)."""
        return not may_change_account(self.request.user, self.object)

    @property
    def can_change(self) -> bool:
        return super().can_change and not self.account_protected

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        if self.account_protected:
            raise PermissionDenied
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["account_protected"] = self.account_protected
        return context

    def save(self, form):
        version = form.cleaned_data["version"]
        return user_save(form.instance, expected_version=version, actor=self.request.user)
