"""Finished bulk actions are kept BULK_JOB_RETENTION_DAYS (default 30): each newly
scheduled one deletes, in one DELETE, the finished ones older than that, with their
per-record results; jobs still waiting or running stay, whatever their age."""

import runpy
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailboxes.models import BulkJob
from mailboxes.services.bulk_jobs import bulk_job_schedule

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def old_job(*, status=BulkJob.Status.FINISHED, finished_days_ago=None) -> BulkJob:
    finished_on = timezone.now() - finished_days_ago * DAY if finished_days_ago is not None else None
    return BulkJob.objects.create(
        action=BulkJob.Action.ACTIVATE,
        mailbox_ids=[1, 2],
        total=2,
        done=2 if status == BulkJob.Status.FINISHED else 0,
        status=status,
        finished_on=finished_on,
        refused=[{"record": "ann@example.test", "reasons": "A reason."}],
    )


def schedule(mailbox, actor) -> BulkJob:
    return bulk_job_schedule(
        action=BulkJob.Action.ACTIVATE, mailbox_ids=[mailbox.pk], parameters={}, actor=actor
    )


def test_a_new_job_deletes_finished_jobs_past_the_retention(make_user, sysadmin):
    expired = old_job(finished_days_ago=31)
    kept = old_job(finished_days_ago=29)
    running = old_job(status=BulkJob.Status.RUNNING)
    waiting = old_job(status=BulkJob.Status.SCHEDULED)
    BulkJob.objects.filter(pk__in=[running.pk, waiting.pk]).update(created_on=timezone.now() - 90 * DAY)

    new = schedule(make_user().mailbox, sysadmin)

    assert set(BulkJob.objects.values_list("pk", flat=True)) == {kept.pk, running.pk, waiting.pk, new.pk}
    assert not BulkJob.objects.filter(pk=expired.pk).exists()


def test_the_expired_jobs_go_in_one_delete(make_user, sysadmin):
    for days in (40, 50, 60):
        old_job(finished_days_ago=days)
    mailbox = make_user().mailbox
    with CaptureQueriesContext(connection) as queries:
        schedule(mailbox, sysadmin)
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 1 and "mailboxes_bulkjob" in deletes[0]
    assert BulkJob.objects.count() == 1


def test_the_retention_is_a_setting(settings, make_user, sysadmin):
    settings.BULK_JOB_RETENTION_DAYS = 7
    expired, kept = old_job(finished_days_ago=8), old_job(finished_days_ago=6)
    schedule(make_user().mailbox, sysadmin)
    assert not BulkJob.objects.filter(pk=expired.pk).exists()
    assert BulkJob.objects.filter(pk=kept.pk).exists()


def test_a_deleted_jobs_page_is_gone_for_its_requester(client_for, sysadmin, make_user):
    job = old_job(finished_days_ago=31)
    BulkJob.objects.filter(pk=job.pk).update(requested_by=sysadmin)
    client = client_for(sysadmin)
    assert client.get(job.get_absolute_url()).status_code == 200
    schedule(make_user().mailbox, actor=sysadmin)
    response = client.get(job.get_absolute_url())
    assert response.status_code == 404
    assert "kept for 30 days after it finishes" in response.content.decode()
    assert client.get(f"/mailboxes/bulk-actions/{job.pk}/status/").status_code == 404


SETTINGS_FILE = Path(__file__).resolve().parents[2] / "mailboxadmin" / "settings.py"


def test_the_retention_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("BULK_JOB_RETENTION_DAYS", "90")
    assert runpy.run_path(str(SETTINGS_FILE))["BULK_JOB_RETENTION_DAYS"] == 90
    monkeypatch.delenv("BULK_JOB_RETENTION_DAYS")
    assert runpy.run_path(str(SETTINGS_FILE))["BULK_JOB_RETENTION_DAYS"] == 30


@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_retention_under_a_day_stops_the_start(monkeypatch, value):
    monkeypatch.setenv("BULK_JOB_RETENTION_DAYS", value)
    with pytest.raises(
        ImproperlyConfigured, match=r"^BULK_JOB_RETENTION_DAYS: -?\d+ is not a number of days"
    ):
        runpy.run_path(str(SETTINGS_FILE))
