"""Email server profile pages: list, new, edit, delete (refused while mailboxes use it)."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View
from django.views.generic import DetailView, TemplateView

from mailboxadmin.paginator import SortKey
from mailboxadmin.views import KeysetListView, ServiceCreateView, ServiceUpdateView, StaffPermissionMixin
from mailboxes.models import OrganizationSettings
from mailboxes.services.first_run import mailboxes_without_profile, profile_apply_to_mailboxes_without_one
from mailboxes.services.testing import (
    can_test_mailboxes,
    check_can_test_mailboxes,
    profile_schedule_tests,
)
from serverprofiles.connection_tests import profile_connection_test_for, profile_connection_test_start
from serverprofiles.forms import EmailServerProfileForm, NewEmailServerProfileForm
from serverprofiles.models import ConnectionTestStatus, EmailServerProfile, ProfileConnectionTest
from serverprofiles.services import (
    ProfileInUseError,
    can_administer_credentials,
    profile_create,
    profile_delete,
    profile_save,
)

GIVE_LABEL = "Give It to Mailboxes Without a Profile"

UNENCRYPTED_WARNING = (
    "Allow credentials over unencrypted connections is on: where a server offers no TLS, "
    "passwords are sent to it in plain text, readable by anyone on the network path."
)


@dataclass(frozen=True)
class ProfileCommand:
    name: str  # the value the button posts
    label: str  # the button's text
    permission: str
    run: Callable  # run(profile, actor) -> str: the message to show; ValidationError refuses
    # Offered on this profile's form? (The command itself works on any profile.)
    offered_for: Callable[[EmailServerProfile], bool] = lambda profile: True


def _schedule_profile_tests(profile, actor) -> str:
    profile_schedule_tests(profile, actor=actor)
    return (
        f"Test & Enable scheduled for the active mailboxes of “{profile.name}”: "
        "the results appear on each mailbox when they are in."
    )


def _give_to_mailboxes_without_one(profile, actor) -> str:
    outcome, more = profile_apply_to_mailboxes_without_one(profile, actor=actor)
    text = f"Server profile “{profile.name}” given to the mailboxes that had none: {outcome.summary()}"
    if more:
        text += " More mailboxes have no server profile: run the command again for the next ones."
    return text


def _is_default_and_needed(profile) -> bool:
    return profile.is_default and mailboxes_without_profile().exists()


# The profile form's command bar shows these after Save / Save & Close. (Test Connection
# is a button of the form itself: it tests the values on the form, before they are saved.)
PROFILE_COMMANDS: dict[str, ProfileCommand] = {
    command.name: command
    for command in [
        ProfileCommand(
            "test-mailboxes", "Test & Enable Mailboxes", "mailboxes.test_mailbox", _schedule_profile_tests
        ),
        ProfileCommand(
            "give-to-mailboxes-without-profile",
            GIVE_LABEL,
            "mailboxes.change_mailbox",
            _give_to_mailboxes_without_one,
            offered_for=_is_default_and_needed,
        ),
    ]
}


def connection_test_lines(test: ProfileConnectionTest) -> list[dict]:
    """What a finished Test Connection found, a line per direction, as the page shows it."""
    if test.status != ConnectionTestStatus.FINISHED:
        return []
    if not test.result:
        return [{"ok": False, "text": "Test Connection stopped before it finished. Test again."}]
    return [
        {"ok": outcome["ok"], "text": f"Test Connection, {direction}: {outcome['message']}"}
        for direction, outcome in test.result.items()
    ]


def profile_commands_for(user, profile) -> list[ProfileCommand]:
    return [
        command
        for command in PROFILE_COMMANDS.values()
        if user.has_perm(command.permission) and command.offered_for(profile)
    ]


class ProfileListView(KeysetListView):
    template_name = "serverprofiles/profile_list.html"
    view_permission = "serverprofiles.view_emailserverprofile"
    change_permission = "serverprofiles.change_emailserverprofile"
    sorts = {"name": [SortKey("name")]}  # unique

    def get_queryset(self):
        profiles = EmailServerProfile.objects.select_related("owner")
        q = self.request.GET.get("q", "").strip()
        if q:
            profiles = profiles.filter(
                Q(name__istartswith=q) | Q(incoming_server__icontains=q) | Q(outgoing_server__icontains=q)
            )
        return profiles

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # One query for the default, instead of profile.is_default on every row.
        settings = OrganizationSettings.objects.filter(pk=1)
        context["default_profile_id"] = settings.values_list("default_server_profile_id", flat=True).first()
        context["can_add"] = self.request.user.has_perm("serverprofiles.add_emailserverprofile")
        return context


class ProfileFormMixin:
    """What the new and edit forms share, including Test Connection of the unsaved values."""

    list_url_name = "serverprofiles:list"

    def form_valid(self, form):
        if "test_connection" in self.request.POST:
            return self.test_connection(form)
        response = super().form_valid(form)
        if isinstance(response, HttpResponseRedirect) and self.became_default(form):
            self.offer_to_mailboxes_without_profile()
        return response

    def became_default(self, form) -> bool:
        return bool(
            not form.fields["make_default"].disabled
            and form.cleaned_data.get("make_default")
            and not form.initial.get("make_default")
        )

    def offer_to_mailboxes_without_profile(self) -> None:
        """A new default profile: offer it to the mailboxes that have none (issue 16)."""
        if not self.request.user.has_perm("mailboxes.change_mailbox"):
            return
        if mailboxes_without_profile().exists():
            messages.info(
                self.request,
                f"“{self.object.name}” is now the default for new mailboxes. Mailboxes created "
                f"before have no server profile: {GIVE_LABEL}, on this profile's page, gives it to them.",
            )

    def test_connection(self, form):
        """Test the values on the form (a blank password means the stored one) in the
        background; save nothing. The form comes back as it was, with the test's progress."""
        check_can_test_mailboxes(self.request.user)
        try:
            test = profile_connection_test_start(form.instance, actor=self.request.user)
        except ValidationError as error:
            form.add_error(None, error)
            return self.form_invalid(form)
        messages.info(
            self.request,
            "Test Connection tries the values on this form without saving them: "
            "when they work, Save keeps them (type a new password again first).",
        )
        context = self.get_context_data(
            form=form, connection_test=test, connection_test_lines=connection_test_lines(test)
        )
        return self.render_to_response(context)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_test_connection"] = self.can_change and can_test_mailboxes(self.request.user)
        context["unencrypted_warning"] = UNENCRYPTED_WARNING
        return context

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["can_set_default"] = self.request.user.has_perm("mailboxes.change_organizationsettings")
        kwargs["can_allow_unencrypted"] = can_administer_credentials(self.request.user)
        return kwargs


class NewProfileView(ProfileFormMixin, ServiceCreateView):
    form_class = NewEmailServerProfileForm
    template_name = "serverprofiles/profile_form.html"
    add_permission = "serverprofiles.add_emailserverprofile"
    saved_message = "The email server profile “{object.name}” was created."

    def save(self, form):
        return profile_create(
            form.instance, make_default=form.cleaned_data["make_default"], actor=self.request.user
        )


class ProfileEditView(ProfileFormMixin, ServiceUpdateView):
    form_class = EmailServerProfileForm
    template_name = "serverprofiles/profile_form.html"
    view_permission = "serverprofiles.view_emailserverprofile"
    change_permission = "serverprofiles.change_emailserverprofile"
    saved_message = "The email server profile “{object.name}” was saved."

    def get_queryset(self):
        return EmailServerProfile.objects.select_related("owner")

    def save(self, form):
        return profile_save(
            form.instance,
            expected_version=form.cleaned_data["version"],
            make_default=form.cleaned_data["make_default"],
            actor=self.request.user,
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["commands"] = profile_commands_for(self.request.user, self.object)
        context["can_delete"] = self.request.user.has_perm("serverprofiles.delete_emailserverprofile")
        return context


class ProfileDeleteView(StaffPermissionMixin, DetailView):
    """GET asks to confirm; POST deletes, or says why not: (P8) the mailboxes that use
    the profile, or (P7) that it is the default and the user may not change the settings."""

    model = EmailServerProfile
    template_name = "serverprofiles/profile_delete.html"
    view_permission = "serverprofiles.delete_emailserverprofile"
    change_permission = "serverprofiles.delete_emailserverprofile"

    def post(self, request, *args, **kwargs):
        self.object = self.get_object()
        try:
            profile_delete(profile=self.object, actor=request.user)
        except ProfileInUseError as error:
            context = self.get_context_data(object=self.object, in_use=error)
            return self.render_to_response(context, status=409)
        except ValidationError as error:
            context = self.get_context_data(object=self.object, refused=error)
            return self.render_to_response(context, status=409)
        messages.success(request, f"The email server profile “{self.object.name}” was deleted.")
        return HttpResponseRedirect(reverse("serverprofiles:list"))


class ProfileCommandView(StaffPermissionMixin, DetailView):
    """POST command=<name>: one of PROFILE_COMMANDS, on this profile."""

    model = EmailServerProfile
    view_permission = "serverprofiles.view_emailserverprofile"  # GET is refused: 405
    change_permission = "serverprofiles.view_emailserverprofile"  # and the command's own, below
    http_method_names = ["post"]

    def post(self, request, pk):
        profile = get_object_or_404(EmailServerProfile, pk=pk)
        command = PROFILE_COMMANDS.get(request.POST.get("command", ""))
        if command is None:
            messages.error(request, "Unknown command.")
            return HttpResponseRedirect(profile.get_absolute_url())
        if not request.user.has_perm(command.permission):
            raise PermissionDenied
        try:
            outcome = command.run(profile, request.user)
        except ValidationError as error:
            messages.error(request, f"{command.label}: {' '.join(error.messages)}")
        else:
            messages.success(request, outcome or f"{command.label}: done.")
        return HttpResponseRedirect(profile.get_absolute_url())


class ConnectionTestMixin:
    """A Test Connection, for the user who asked for it (with the permission) alone."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied
        check_can_test_mailboxes(request.user)
        self.test = profile_connection_test_for(kwargs["pk"], request.user)
        if self.test is None:
            raise Http404("No such Test Connection.")
        return super().dispatch(request, *args, **kwargs)


class ConnectionTestView(ConnectionTestMixin, TemplateView):
    """The test's progress or result as a page: where "Reload" leads without JavaScript."""

    template_name = "serverprofiles/connection_test_page.html"
    http_method_names = ["get", "head"]

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            connection_test=self.test, connection_test_lines=connection_test_lines(self.test), **kwargs
        )


class ConnectionTestStatusView(ConnectionTestMixin, View):
    """The test's progress or result as JSON, for the page's script to poll."""

    http_method_names = ["get", "head"]

    def get(self, request, *args, **kwargs):
        test = self.test
        return JsonResponse(
            {
                "finished": test.status == ConnectionTestStatus.FINISHED,
                "status": test.get_status_display(),
                "results": connection_test_lines(test),
            },
            headers={"Cache-Control": "no-store"},
        )
