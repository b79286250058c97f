"""Background tasks (django-tasks): Test & Enable for many mailboxes (A6), Test Connection,
bulk actions on large selections."""

from django_tasks import task

from mailboxes.models import Mailbox, User
from mailboxes.services.bulk_jobs import bulk_job_run
from mailboxes.services.testing import run_mailbox_tests
from serverprofiles.connection_tests import profile_connection_test_run


def _actor(actor_id: int | None):
    return User.objects.filter(pk=actor_id).first() if actor_id is not None else None


def _summary(results) -> dict:
    return {
        "tested": sum(1 for r in results if r.tested),
        "failed": sum(1 for r in results if r.failed),
        "not_tested": sum(1 for r in results if not r.tested),
    }


@task()
def run_mailbox_tests_task(mailbox_ids: list[int], actor_id: int | None = None) -> dict:
    """Test & Enable the given mailboxes, within each profile's connection cap."""
    return _summary(run_mailbox_tests(mailbox_ids, actor=_actor(actor_id)))


@task()
def run_profile_tests_task(profile_id: int, actor_id: int | None = None) -> dict:
    """Test & Enable every active mailbox of a server profile."""
    ids = (
        Mailbox.objects.active()
        .filter(server_profile_id=profile_id)
        .order_by("pk")
        .values_list("pk", flat=True)
        .iterator(chunk_size=2000)
    )
    return _summary(run_mailbox_tests(ids, actor=_actor(actor_id)))


@task()
def run_profile_connection_test_task(test_id: int) -> dict | None:
    """Test Connection of a profile form's values (kept in a ProfileConnectionTest row)."""
    return profile_connection_test_run(test_id)


@task()
def run_bulk_job_task(job_id: int) -> None:
    """A bulk action on a large selection (a BulkJob row), chunk by chunk."""
    bulk_job_run(job_id)
