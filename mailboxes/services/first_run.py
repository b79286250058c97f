"""Getting started: the steps from an empty installation to tested mailboxes, and giving
a new default profile to the mailboxes that have none."""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Exists
from django.urls import reverse

from mailboxadmin.outcomes import BulkOutcome
from mailboxes.models import Mailbox, OrganizationSettings, Queue, TestStatus, User
from mailboxes.services.bulk import mailboxes_set_server_profile
from serverprofiles.models import EmailServerProfile

TESTED = [TestStatus.SUCCESS, TestStatus.FAILURE]
# The most mailboxes one click gives a profile to (a request's worth of work).
APPLY_LIMIT = 1000


@dataclass(frozen=True)
class SetupStep:
    title: str
    what_to_do: str
    link: str
    done: bool


def setup_steps(user) -> list[SetupStep]:
    """The first-run guide's steps, or [] once every one is done. One query; each EXISTS
    is answered by an index (the status ones by mailbox_*_status)."""
    row = (
        OrganizationSettings.objects.filter(pk=1)
        .annotate(
            has_profile=Exists(EmailServerProfile.objects.all()),
            has_queue=Exists(Queue.objects.all()),
            has_other_user=Exists(User.objects.exclude(pk=user.pk)),
            tested_incoming=Exists(Mailbox.objects.filter(incoming_status__in=TESTED)),
            tested_outgoing=Exists(Mailbox.objects.filter(outgoing_status__in=TESTED)),
        )
        .values(
            "default_server_profile_id",
            "has_profile",
            "has_queue",
            "has_other_user",
            "tested_incoming",
            "tested_outgoing",
        )
        .first()
    ) or {}
    steps = [
        SetupStep(
            "Create a server profile",
            "where your mail servers are and how to sign in to them.",
            reverse("serverprofiles:new"),
            bool(row.get("has_profile")),
        ),
        SetupStep(
            "Set the defaults in Email Settings",
            "the server profile and delivery methods new mailboxes get.",
            reverse("settings:email"),
            row.get("default_server_profile_id") is not None,
        ),
        SetupStep(
            "Add users and queues",
            "each gets its mailbox, with the default settings.",
            reverse("users:new"),
            bool(row.get("has_queue") or row.get("has_other_user")),
        ),
        SetupStep(
            "Test & Enable",
            "select mailboxes below and choose Test & Enable Mailbox: it tries their servers "
            "and enables what works.",
            "",
            bool(row.get("tested_incoming") or row.get("tested_outgoing")),
        ),
    ]
    return [] if all(step.done for step in steps) else steps


def mailboxes_without_profile():
    return Mailbox.objects.filter(server_profile__isnull=True)


def profile_apply_to_mailboxes_without_one(
    profile: EmailServerProfile, *, actor=None, limit: int = APPLY_LIMIT
) -> tuple[BulkOutcome, bool]:
    """Give `profile` to up to `limit` mailboxes that have no server profile, through the
    bulk service (every rule checked, per-record refusals). Returns the outcome and
    whether mailboxes without a profile remain."""
    if actor is not None and not actor.has_perm("mailboxes.change_mailbox"):
        raise PermissionDenied
    ids = list(mailboxes_without_profile().order_by("pk").values_list("pk", flat=True)[:limit])
    outcome = mailboxes_set_server_profile(ids, server_profile=profile, actor=actor)
    return outcome, mailboxes_without_profile().exclude(pk__in=ids).exists()
