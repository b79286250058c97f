"""A bulk action on more mailboxes than a request can change in time, run in the background."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse


class BulkAction(models.TextChoices):
    SET_SERVER_PROFILE = "set-server-profile", "Set Server Profile"
    SET_DELIVERY_METHODS = "set-delivery-methods", "Set Delivery Methods"
    APPLY_DEFAULT_SETTINGS = "apply-default-settings", "Apply Default Email Settings"
    APPROVE = "approve", "Approve Email"
    REJECT = "reject", "Reject Email"
    ACTIVATE = "activate", "Activate"
    DEACTIVATE = "deactivate", "Deactivate"


class BulkJobStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"


class BulkJob(models.Model):
    """The selection, the progress and the per-record result of one background bulk action."""

    Action = BulkAction
    Status = BulkJobStatus

    action = models.CharField("Action", max_length=30, choices=Action.choices)
    # What the action sets (a profile's id, delivery methods), as the task receives it.
    parameters = models.JSONField("Parameters", default=dict, blank=True)
    mailbox_ids = models.JSONField("Selected mailboxes", default=list)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField("Status", max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    total = models.PositiveIntegerField("Total")
    done = models.PositiveIntegerField("Done", default=0)
    updated = models.PositiveIntegerField("Changed", default=0)
    unchanged = models.PositiveIntegerField("Unchanged", default=0)
    # [{"record": address, "reasons": why}, ...]
    refused = models.JSONField("Refused", default=list, blank=True)
    created_on = models.DateTimeField("Scheduled On", auto_now_add=True)
    finished_on = models.DateTimeField("Finished On", null=True, blank=True)

    class Meta:
        verbose_name = "bulk action"
        constraints = [
            models.CheckConstraint(condition=Q(action__in=BulkAction.values), name="bulk_job_action_valid"),
            models.CheckConstraint(
                condition=Q(status__in=BulkJobStatus.values), name="bulk_job_status_valid"
            ),
            models.CheckConstraint(condition=Q(done__lte=F("total")), name="bulk_job_done_within_total"),
        ]

    def __str__(self):
        return f"{self.get_action_display()} on {self.total} mailboxes"

    def get_absolute_url(self):
        return reverse("mailboxes:bulk_job", args=[self.pk])

    @property
    def finished(self) -> bool:
        return self.status == self.Status.FINISHED
