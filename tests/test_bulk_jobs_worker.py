"""A large bulk action leaves the request at once and runs in the worker: the page says it
is scheduled, with its progress and the script that follows it, and the worker
(django-tasks-db's `db_worker --batch`) then writes the changes and the result."""

import pytest
from django.core.management import call_command

from mailboxes.models import BulkJob, Mailbox
from mailboxes.services import bulk_jobs

# The worker runs outside any test transaction, as a worker process does.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def database_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def test_a_large_deactivation_is_left_to_the_worker(client, sysadmin, make_user, database_tasks, monkeypatch):
    monkeypatch.setattr(bulk_jobs, "BACKGROUND_THRESHOLD", 2)
    mailboxes = [make_user(f"worker{n}").mailbox for n in range(3)]
    client.force_login(sysadmin)

    response = client.post(
        "/admin/mailboxes/mailbox/",
        {"action": "deactivate", "index": "0", "_selected_action": [str(m.pk) for m in mailboxes]},
    )

    job = BulkJob.objects.get()
    assert response["Location"] == job.get_absolute_url()
    assert Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes], state="active").count() == 3
    page = client.get(job.get_absolute_url()).content.decode()
    assert 'Scheduled: <span class="bulk-job__progress">0 / 3</span> done.' in page
    assert "mailboxadmin/bulk_job.js" in page

    call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0", verbosity=0)

    job.refresh_from_db()
    assert (job.status, job.done, job.updated, job.refused) == ("finished", 3, 3, [])
    assert not Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes], state="active").exists()
    page = client.get(job.get_absolute_url()).content.decode()
    assert "3 changed, 0 refused." in page
    assert "bulk_job.js" not in page
