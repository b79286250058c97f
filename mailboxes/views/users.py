"""User pages: list, new user (which creates its mailbox), and the user form."""

from functools import cached_property

from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, JsonResponse
from django.views import View

from mailboxadmin.paginator import SortKey, keyset_page
from mailboxadmin.views import (
    MAX_SEARCH_LENGTH,
    KeysetListView,
    ServiceCreateView,
    ServiceUpdateView,
    StaffPermissionMixin,
    search_filter,
)
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


class UserAutocompleteView(StaffPermissionMixin, View):
    """The owner picker's suggestions: users whose user name, full name or email address
    starts with q (equals it below three characters), 20 at a time by user name.

    JSON: {"results": [{"username", "full_name", "email", "active"}], "next": URL or null}.
    Who may read the user list may ask (Read-only included); it shows nothing more.
    """

    view_permission = "mailboxes.view_user"
    per_page = 20

    def get(self, request):
        q = request.GET.get("q", "").strip()
        if "\x00" in q or len(q) > MAX_SEARCH_LENGTH:
            return HttpResponseBadRequest("This search cannot match any user.", content_type="text/plain")
        users = User.objects.only("username", "full_name", "email", "is_active")
        if q:
            # The UPPER(column) prefix indexes of migration 0004 find the matches; the
            # page sorts only those (sort_matches), so a million users cost the same.
            users = users.filter(search_filter(q, ["username", "full_name", "email"]))
        page = keyset_page(
            users,
            [SortKey("username")],
            after=request.GET.get("after", ""),
            per_page=self.per_page,
            sort_matches=bool(q),
        )
        next_url = None
        if page.has_next and page.next_cursor:
            params = request.GET.copy()
            params["after"] = page.next_cursor
            next_url = f"{request.path}?{params.urlencode()}"
        results = [
            {"username": u.username, "full_name": u.full_name, "email": u.email, "active": u.is_active}
            for u in page
        ]
        return JsonResponse({"results": results, "next": next_url})


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
