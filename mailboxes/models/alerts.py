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
    """Something an administrator should know about a mailbox (a failed test, say), or
    about a server profile as a whole (then `mailbox` is empty)."""

    Severity = AlertSeverity
    Workload = AlertWorkload

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, null=True, blank=True, related_name="alerts"
    )
    profile = models.ForeignKey(
        "serverprofiles.EmailServerProfile",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alerts",
    )
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
            models.CheckConstraint(
                condition=models.Q(mailbox__isnull=False) | models.Q(profile__isnull=False),
                name="alert_about_mailbox_or_profile",
            ),
        ]
        indexes = [
            models.Index(fields=["mailbox", "-created_on"], name="alert_mailbox_recent"),
            models.Index(fields=["profile", "-created_on"], name="alert_profile_recent"),
            models.Index(fields=["severity", "-created_on"], name="alert_severity_recent"),
        ]

    def __str__(self):
        return f"{self.get_severity_display()}: {self.message}"
