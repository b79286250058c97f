"""What every page shares: who may see it, who may change it, and how an edit is saved."""

from django.contrib import messages
from django.contrib.auth.mixins import AccessMixin
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import CreateView, TemplateView, UpdateView

from mailboxadmin.exceptions import StaleEditError
from mailboxadmin.forms import RateLimitedAuthenticationForm
from mailboxadmin.paginator import SortKey, keyset_page


class RateLimitedLoginView(LoginView):
    form_class = RateLimitedAuthenticationForm


class StaffPermissionMixin(AccessMixin):
    """Login, an active staff account, and a model permission for every request.

    `view_permission` guards reading (GET, HEAD); `change_permission` guards every other
    method. A user who may read but not change sees the page read-only and gets 403 on
    any POST.
    """

    view_permission: str = ""
    change_permission: str = ""

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return self.handle_no_permission()
        if not (user.is_active and user.is_staff):
            raise PermissionDenied
        reading = request.method in ("GET", "HEAD")
        needed = self.view_permission if reading else self.change_permission
        if not needed or not user.has_perm(needed):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    @property
    def can_change(self) -> bool:
        return bool(self.change_permission) and self.request.user.has_perm(self.change_permission)


def safe_next_url(request, default: str) -> str:
    """The `next` URL of a POST when it stays on this site, else `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


class ServiceFormMixin:
    """Save through a service; Save stays on the form, Save & Close returns to the list.

    Subclasses implement `save(form)` (call the service, return the saved object) and set
    `list_url_name` and `saved_message`. A ValidationError from the service goes back on
    the form, next to its field, and nothing is saved.
    """

    list_url_name = ""
    saved_message = "{object} was saved."
    template_name = ""

    def save(self, form):
        raise NotImplementedError

    def form_valid(self, form):
        try:
            self.object = self.save(form)
        except ValidationError as error:
            form.add_error(None, error)
            return self.form_invalid(form)
        messages.success(self.request, self.saved_message.format(object=self.object))
        return HttpResponseRedirect(self.get_success_url())

    def get_success_url(self):
        if "save_close" in self.request.POST:
            return reverse(self.list_url_name)
        return self.object.get_absolute_url()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_change"] = self.can_change
        context["list_url"] = reverse(self.list_url_name)
        return context


class ServiceCreateView(StaffPermissionMixin, ServiceFormMixin, CreateView):
    """A form that creates a record: the add permission is needed to see it at all."""

    add_permission = ""

    @property
    def view_permission(self):
        return self.add_permission

    @property
    def change_permission(self):
        return self.add_permission


class ServiceUpdateView(StaffPermissionMixin, ServiceFormMixin, UpdateView):
    """An edit form with stale-edit protection, read-only for users who may only view.

    When the record changed since the form was opened, the save is refused: the page says
    so and shows the record's current values (with its new version), and nothing is
    overwritten.
    """

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        if not self.can_change:
            form.make_read_only()
        return form

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except StaleEditError as error:
            messages.error(self.request, str(error))
            self.object = self.get_object()
            fresh = self.get_form_class()(**self.get_fresh_form_kwargs())
            return self.render_to_response(self.get_context_data(form=fresh), status=409)

    def get_fresh_form_kwargs(self) -> dict:
        """Form arguments for an unbound form on the current row (after a refused save)."""
        kwargs = self.get_form_kwargs()
        kwargs.pop("data", None)
        kwargs.pop("files", None)
        kwargs["instance"] = self.object
        return kwargs


# Shorter searches match whole names or addresses only: a one- or two-letter prefix
# matches so many of a million rows that finding and sorting them all is slow.
MIN_PREFIX_LENGTH = 3
# The longest value a search looks at (a server location); a longer search finds nothing.
MAX_SEARCH_LENGTH = 2048


def search_filter(q: str, fields: list[str]) -> Q:
    """Rows whose `fields` start with `q` (case-insensitive), or equal it when `q` is short.

    Both are served on PostgreSQL by the UPPER(column) text_pattern_ops indexes of
    migration mailboxes 0004_ui_list_indexes.
    """
    lookup = "istartswith" if len(q) >= MIN_PREFIX_LENGTH else "iexact"
    condition = Q()
    for field in fields:
        condition |= Q(**{f"{field}__{lookup}": q})
    return condition


class KeysetListView(StaffPermissionMixin, TemplateView):
    """A list page that stays fast on a million rows: keyset pages, never a COUNT(*).

    Subclasses give `get_queryset()` (filtered, with what the rows show selected in the
    same query) and `sorts`: the sortable columns, each a list of SortKey whose last key
    is unique. The query string carries q (search), sort, and a page cursor.
    """

    per_page = 50
    sorts: dict[str, list[SortKey]] = {}
    default_sort = "name"

    def get(self, request, *args, **kwargs):
        # Said plainly instead of failing in the database: PostgreSQL refuses text with a
        # NUL (which no stored value has: the forms refuse them), SQLite a LIKE pattern
        # past 50,000 bytes.
        if any("\x00" in value for _, values in request.GET.lists() for value in values):
            return HttpResponseBadRequest(
                "This address holds a NUL character (%00), which no search or page can contain. "
                "Remove it and try again.",
                content_type="text/plain; charset=utf-8",
            )
        if len(request.GET.get("q", "")) > MAX_SEARCH_LENGTH:
            return HttpResponseBadRequest(
                f"The search is longer than anything it could find ({MAX_SEARCH_LENGTH} characters). "
                "Shorten it and try again.",
                content_type="text/plain; charset=utf-8",
            )
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        raise NotImplementedError

    def sort_matches(self) -> bool:
        """Find a search's matches first and sort just those (see keyset_page)."""
        return bool(self.request.GET.get("q", "").strip())

    def current_sort(self) -> tuple[str, bool]:
        requested = self.request.GET.get("sort", "")
        descending = requested.startswith("-")
        column = requested.lstrip("-")
        if column not in self.sorts:
            return self.default_sort, False
        return column, descending

    def query_string(self, **changes) -> str:
        """This page's query string with `changes` applied; a page cursor is always dropped
        unless given, and a None value removes a parameter."""
        params = self.request.GET.copy()
        for name in ("after", "before"):
            params.pop(name, None)
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
        encoded = params.urlencode()
        return f"?{encoded}" if encoded else "?"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        column, descending = self.current_sort()
        page = keyset_page(
            self.get_queryset(),
            self.sorts[column],
            descending=descending,
            after=self.request.GET.get("after", ""),
            before=self.request.GET.get("before", ""),
            per_page=self.per_page,
            sort_matches=self.sort_matches(),
        )
        context.update(
            page=page,
            q=self.request.GET.get("q", "").strip(),
            sort_column=column,
            sort_descending=descending,
            sort_links={
                name: self.query_string(sort=f"-{name}" if name == column and not descending else name)
                for name in self.sorts
            },
            first_link=self.query_string() if page.has_previous else "",
            previous_link=self.query_string(before=page.previous_cursor)
            if page.has_previous and page.previous_cursor
            else "",
            next_link=self.query_string(after=page.next_cursor) if page.has_next and page.next_cursor else "",
            clear_search_link=self.query_string(q=None),
            short_search=0 < len(self.request.GET.get("q", "").strip()) < MIN_PREFIX_LENGTH,
            can_change=self.can_change,
        )
        return context
