"""The page of a bulk action running in the background: its progress, then its result."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import render
from django.views import View
from django.views.generic import TemplateView

from mailboxes.services.bulk_jobs import bulk_job_for


class BulkJobMixin:
    """A bulk action's job, for the user who scheduled it and System Administrators.

    A job that is someone else's and one deleted after BULK_JOB_RETENTION_DAYS get the
    same answer, Not Found naming the retention: which job numbers exist is not told.
    """

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        self.job = bulk_job_for(kwargs["pk"], request.user) if request.user.is_active else None
        if self.job is None:
            return render(
                request,
                "mailboxes/bulk_job_gone.html",
                {"retention_days": settings.BULK_JOB_RETENTION_DAYS},
                status=404,
            )
        return super().dispatch(request, *args, **kwargs)


class BulkJobView(BulkJobMixin, TemplateView):
    """Progress (the page refreshes itself while it runs), then changed and refused records."""

    template_name = "mailboxes/bulk_job.html"
    http_method_names = ["get", "head"]

    def get_context_data(self, **kwargs):
        return super().get_context_data(job=self.job, **kwargs)


class BulkJobStatusView(BulkJobMixin, View):
    """The job's progress as JSON, for the page's script to poll."""

    http_method_names = ["get", "head"]

    def get(self, request, *args, **kwargs):
        job = self.job
        return JsonResponse(
            {
                "status": job.get_status_display(),
                "finished": job.finished,
                "done": job.done,
                "total": job.total,
            },
            headers={"Cache-Control": "no-store"},
        )
