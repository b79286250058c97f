"""Mailbox commands: the buttons of the mailbox form's command bar and of the list's
selected rows (and of the users' and queues' pages, for their mailboxes).

Each command is one service call per mailbox, guarded by its own permission. A refusal
(a ValidationError from the service) is reported per mailbox and never stops the others.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from mailboxadmin.views import StaffPermissionMixin, safe_next_url
from mailboxes.models import Mailbox
from mailboxes.services.forwarding import mailboxes_stranded_by_deactivating
from mailboxes.services.mailboxes import (
    mailbox_apply_default_settings,
    mailbox_set_approval,
    mailbox_set_state,
)
from mailboxes.services.testing import schedule_mailbox_tests
from mailboxes.views.filters import record_id

# The most rows one command acts on: a page of the list, with room to spare.
MAX_SELECTED = 500


@dataclass(frozen=True)
class MailboxCommand:
    name: str  # the value the button posts
    label: str  # the button's text (SPEC section 5)
    permission: str
    run: Callable | None  # run(mailbox, actor): calls a service; raises ValidationError to refuse
    done: str  # what happened, for the message: "{count} mailboxes approved."
    # Offered on the form of this mailbox? (The list offers every command.)
    offered_for: Callable[[Mailbox], bool] = lambda mailbox: True
    # run_many(mailboxes, actor): one service call for all the selected mailboxes, for
    # commands that must see them together (Test & Enable keeps one cap per profile).
    run_many: Callable | None = None


def _not_forward(mailbox: Mailbox) -> bool:
    return not mailbox.is_forward


MAILBOX_COMMANDS: dict[str, MailboxCommand] = {
    command.name: command
    for command in [
        MailboxCommand(
            "test-enable",
            "Test & Enable Mailbox",
            "mailboxes.test_mailbox",
            run=None,
            run_many=lambda mailboxes, actor: schedule_mailbox_tests([m.pk for m in mailboxes], actor=actor),
            done="Test & Enable scheduled for {count}: the results appear on each mailbox when they are in.",
            offered_for=lambda mailbox: mailbox.is_active,
        ),
        MailboxCommand(
            "approve",
            "Approve Email",
            "mailboxes.approve_email",
            run=lambda mailbox, actor: mailbox_set_approval(mailbox=mailbox, approved=True, actor=actor),
            done="Email address approved for {count}.",
            offered_for=_not_forward,
        ),
        MailboxCommand(
            "reject",
            "Reject Email",
            "mailboxes.approve_email",
            run=lambda mailbox, actor: mailbox_set_approval(mailbox=mailbox, approved=False, actor=actor),
            done="Email address rejected for {count}.",
            offered_for=_not_forward,
        ),
        MailboxCommand(
            "apply-defaults",
            "Apply Default Email Settings",
            "mailboxes.change_mailbox",
            run=lambda mailbox, actor: mailbox_apply_default_settings(mailbox=mailbox, actor=actor),
            done="Default email settings applied to {count}.",
        ),
        MailboxCommand(
            "deactivate",
            "Deactivate",
            "mailboxes.change_mailbox",
            run=lambda mailbox, actor: mailbox_set_state(mailbox=mailbox, active=False, actor=actor),
            done="{count} deactivated.",
            offered_for=lambda mailbox: mailbox.is_active,
        ),
        MailboxCommand(
            "activate",
            "Activate",
            "mailboxes.change_mailbox",
            run=lambda mailbox, actor: mailbox_set_state(mailbox=mailbox, active=True, actor=actor),
            done="{count} activated.",
            offered_for=lambda mailbox: not mailbox.is_active,
        ),
    ]
}

# How many of the mailboxes a deactivation would strand its confirmation page lists.
STRANDED_LISTED = 20

# The commands the users' and queues' pages offer for their mailboxes.
REGARDING_COMMANDS = ("approve", "reject")


def commands_for(user, *, mailbox: Mailbox | None = None, names=None) -> list[MailboxCommand]:
    """The commands `user` may run, for the list (no mailbox) or for one mailbox's form."""
    offered = []
    for command in MAILBOX_COMMANDS.values():
        if names is not None and command.name not in names:
            continue
        if not user.has_perm(command.permission):
            continue
        if mailbox is not None and not command.offered_for(mailbox):
            continue
        offered.append(command)
    return offered


def _count(n: int) -> str:
    return f"{n} mailbox" if n == 1 else f"{n} mailboxes"


def _messages_of(error: ValidationError) -> str:
    return " ".join(error.messages)


class MailboxCommandView(StaffPermissionMixin, View):
    """POST command=<name>, selected=<mailbox id>..., next=<where to go back to>."""

    view_permission = "mailboxes.view_mailbox"  # GET is refused below: 405
    change_permission = "mailboxes.view_mailbox"  # and the command's own permission, below
    http_method_names = ["post"]

    def post(self, request):
        command = MAILBOX_COMMANDS.get(request.POST.get("command", ""))
        back = safe_next_url(request, reverse("mailboxes:list"))
        if command is None:
            messages.error(request, "Unknown command.")
            return HttpResponseRedirect(back)
        if not request.user.has_perm(command.permission):
            raise PermissionDenied
        if request.POST.get("select_across") == "1":
            # "Select all that match" serves Set Server Profile… and Set Delivery Methods…;
            # acting on the ticked rows instead would surprise whoever chose it.
            messages.error(
                request,
                f"{command.label} acts on the ticked rows only: clear the selection of all the "
                "mailboxes that match, tick the rows, and try again.",
            )
            return HttpResponseRedirect(back)
        ids = [pk for pk in map(record_id, request.POST.getlist("selected")) if pk is not None]
        if not ids:
            messages.warning(request, f"{command.label}: select one or more mailboxes first.")
            return HttpResponseRedirect(back)
        if len(ids) > MAX_SELECTED:
            messages.error(request, f"{command.label}: select at most {MAX_SELECTED} mailboxes at a time.")
            return HttpResponseRedirect(back)

        if command.name == "deactivate" and request.POST.get("confirmed") != "yes":
            stranded = mailboxes_stranded_by_deactivating(ids)
            listed = list(stranded[:STRANDED_LISTED])
            if listed:
                return self.confirm_deactivation(request, ids, back, stranded, listed)
        mailboxes = Mailbox.objects.select_related("user", "queue", "server_profile").filter(pk__in=ids)
        if command.run_many is not None:
            mailboxes = list(mailboxes)
            try:
                command.run_many(mailboxes, request.user)
            except ValidationError as error:
                messages.error(request, f"{command.label} refused: {_messages_of(error)}")
            else:
                messages.success(request, command.done.format(count=_count(len(mailboxes))))
            return HttpResponseRedirect(back)
        done = 0
        for mailbox in mailboxes:
            try:
                command.run(mailbox, request.user)
            except ValidationError as error:
                messages.error(request, f"{command.label} refused for {mailbox.email}: {_messages_of(error)}")
            else:
                done += 1
        if done:
            messages.success(request, command.done.format(count=_count(done)))
        return HttpResponseRedirect(back)

    def confirm_deactivation(self, request, ids, back, stranded, listed):
        """Deactivating the last usable forward mailboxes: first say whose email stops."""
        context = {
            "forward_mailboxes": list(Mailbox.objects.forward().filter(pk__in=ids).order_by("name")),
            "stranded": listed,
            "total": len(listed) if len(listed) < STRANDED_LISTED else stranded.count(),
            "selected": ids,
            "next": back,
        }
        return render(request, "mailboxes/mailbox_deactivate.html", context)
