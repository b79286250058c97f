from django.db import models


class AlertWorkload(models.TextChoices):
    GENERAL = "general", "General"
    INCOMING = "incoming", "Incoming Email"
    OUTGOING = "outgoing", "Outgoing Email"
    ACT = "act", "Appointments, Contacts, and Tasks"


class AlertSeverity(models.TextChoices):
    ERROR = "error", "Error"
    WARNING = "warning", "Warning"
    INFORMATION = "information", "Information"


class MailboxAlert(models.Model):
    """Something an administrator should know about a mailbox (a failed test, say)."""

    Severity = AlertSeverity
    Workload = AlertWorkload

    mailbox = models.ForeignKey("mailboxes.Mailbox", on_delete=models.CASCADE, related_name="alerts")
    severity = models.CharField(max_length=12, choices=Severity.choices)
    workload = models.CharField(max_length=10, choices=Workload.choices, default=Workload.GENERAL)
    message = models.TextField()
    created_on = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(severity__in=AlertSeverity.values), name="alert_severity_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(workload__in=AlertWorkload.values), name="alert_workload_valid"
            ),
        ]
        indexes = [models.Index(fields=["mailbox", "-created_on"], name="alert_mailbox_recent")]

    def __str__(self):
        return f"{self.get_severity_display()}: {self.message}"
