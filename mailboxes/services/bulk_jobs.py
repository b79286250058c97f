"""Bulk actions on mailboxes, in the request or, for large selections, in the background.

A request has 30 s before gunicorn kills it; changing 100,000 mailboxes takes longer.
`mailboxes_bulk_action` runs a selection of up to `BACKGROUND_THRESHOLD` mailboxes at
once and schedules a larger one as a BulkJob, which a worker runs chunk by chunk,
recording its progress (done / total) and each refused record's reasons.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mailboxadmin.outcomes import BulkOutcome
from mailboxes.models import BulkJob, Mailbox, User
from mailboxes.services.bulk import (
    CHUNK_SIZE,
    mailboxes_each,
    mailboxes_set_delivery_methods,
    mailboxes_set_server_profile,
)
from mailboxes.services.mailboxes import (
    mailbox_apply_default_settings,
    mailbox_set_approval,
    mailbox_set_state,
)
from mailboxes.services.roles import may_administer_roles
from serverprofiles.models import EmailServerProfile

# Selections larger than this run in the background (a module constant: tests lower it).
BACKGROUND_THRESHOLD = 1000

PROFILE_GONE = (
    "The email server profile chosen for this action no longer exists (it was deleted after the "
    "action was scheduled). Choose a profile and run Set Server Profile again."
)


def _run(action: str, ids: list[int], parameters: dict, actor) -> BulkOutcome:
    """Apply `action` to the mailboxes `ids`, in this process."""
    Action = BulkJob.Action
    if action == Action.SET_SERVER_PROFILE:
        profile_id = parameters.get("server_profile")
        profile = EmailServerProfile.objects.filter(pk=profile_id).first() if profile_id is not None else None
        if profile_id is not None and profile is None:  # deleted since it was chosen (unused: P8 allows it)
            return _refuse_each(ids, ValidationError({"server_profile": PROFILE_GONE}))
        return mailboxes_set_server_profile(ids, server_profile=profile, actor=actor)
    if action == Action.SET_DELIVERY_METHODS:
        return mailboxes_set_delivery_methods(ids, **parameters, actor=actor)
    if action == Action.APPLY_DEFAULT_SETTINGS:
        return mailboxes_each(
            ids, lambda mailbox: mailbox_apply_default_settings(mailbox=mailbox, actor=actor)
        )
    if action in (Action.APPROVE, Action.REJECT):
        approved = action == Action.APPROVE
        return mailboxes_each(
            ids, lambda mailbox: mailbox_set_approval(mailbox=mailbox, approved=approved, actor=actor)
        )
    if action in (Action.ACTIVATE, Action.DEACTIVATE):
        active = action == Action.ACTIVATE
        return mailboxes_each(
            ids, lambda mailbox: mailbox_set_state(mailbox=mailbox, active=active, actor=actor)
        )
    raise ValueError(f"Unknown bulk action {action!r}.")


def _refuse_each(ids: list[int], error: ValidationError) -> BulkOutcome:
    """Each mailbox of `ids` (that still exists) refused for the same reason."""
    outcome = BulkOutcome(model=Mailbox)
    for email in Mailbox.objects.filter(pk__in=ids).order_by("pk").values_list("email", flat=True):
        outcome.refuse(email, error)
    return outcome


def mailboxes_bulk_action(
    *, action: str, mailbox_ids: list[int], parameters: dict | None = None, actor=None
) -> BulkOutcome | BulkJob:
    """Apply `action` to the selection now (its BulkOutcome), or, for more than
    BACKGROUND_THRESHOLD mailboxes, schedule it (the BulkJob to follow)."""
    ids = sorted(set(mailbox_ids))
    parameters = parameters or {}
    if len(ids) <= BACKGROUND_THRESHOLD:
        return _run(action, ids, parameters, actor)
    return bulk_job_schedule(action=action, mailbox_ids=ids, parameters=parameters, actor=actor)


def bulk_job_schedule(*, action: str, mailbox_ids: list[int], parameters: dict, actor) -> BulkJob:
    """Keep the selection in a BulkJob and hand it to a worker."""
    from mailboxes.tasks import run_bulk_job_task

    job = BulkJob(action=action, parameters=parameters, mailbox_ids=mailbox_ids, total=len(mailbox_ids))
    job.requested_by = actor if actor is not None and actor.pk is not None else None
    job.full_clean()
    with transaction.atomic():
        bulk_jobs_delete_expired()
        job.save()
        # With the database backend the task is written in this transaction: a worker
        # never sees the task without its row.
        run_bulk_job_task.enqueue(job.pk)
    job.refresh_from_db()
    return job


def bulk_jobs_delete_expired() -> int:
    """Delete the finished BulkJobs older than BULK_JOB_RETENTION_DAYS, in one DELETE; a
    job's per-record results are on its row and go with it. Called whenever a job is
    scheduled: rows accumulate only then, so the table stays as small as the retention
    keeps it without a command to run. Jobs still waiting or running stay, whatever
    their age."""
    cutoff = timezone.now() - timedelta(days=settings.BULK_JOB_RETENTION_DAYS)
    deleted, _ = BulkJob.objects.filter(status=BulkJob.Status.FINISHED, finished_on__lt=cutoff).delete()
    return deleted


def bulk_job_run(job_id: int) -> None:
    """Run a scheduled BulkJob a chunk (a transaction) at a time, recording progress after
    each; nothing if it is not waiting (run already, or deleted)."""
    if not BulkJob.objects.filter(pk=job_id, status=BulkJob.Status.SCHEDULED).update(
        status=BulkJob.Status.RUNNING
    ):
        return
    job = BulkJob.objects.get(pk=job_id)
    actor = User.objects.filter(pk=job.requested_by_id).first()
    ids = job.mailbox_ids
    try:
        for start in range(0, len(ids), CHUNK_SIZE):
            chunk = ids[start : start + CHUNK_SIZE]
            outcome = _run(job.action, chunk, job.parameters, actor)
            gone = len(chunk) - outcome.updated - outcome.unchanged - len(outcome.refused)
            job.refused.extend({"record": r.record, "reasons": r.reasons} for r in outcome.refused)
            BulkJob.objects.filter(pk=job_id).update(
                done=F("done") + len(chunk),
                updated=F("updated") + outcome.updated,
                unchanged=F("unchanged") + outcome.unchanged + gone,  # deleted meanwhile: nothing to do
                refused=job.refused,
            )
    finally:
        BulkJob.objects.filter(pk=job_id).update(status=BulkJob.Status.FINISHED, finished_on=timezone.now())


def bulk_job_for(job_id: int, user) -> BulkJob | None:
    """The BulkJob `job_id` if `user` asked for it or is a System Administrator, else None."""
    job = BulkJob.objects.filter(pk=job_id).first()
    if job is None:
        return None
    if job.requested_by_id == user.pk or may_administer_roles(user):
        return job
    return None
