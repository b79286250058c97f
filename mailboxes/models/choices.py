from django.db import models


class IncomingMethod(models.TextChoices):
    NONE = "none", "None"
    OUTLOOK = "outlook", "Outlook"
    SERVER_SIDE_SYNC = "server-side-sync", "Server-Side Synchronization or Email Router"
    FORWARD_MAILBOX = "forward-mailbox", "Forward Mailbox"


class OutgoingMethod(models.TextChoices):
    NONE = "none", "None"
    OUTLOOK = "outlook", "Outlook"
    SERVER_SIDE_SYNC = "server-side-sync", "Server-Side Synchronization or Email Router"


class ActMethod(models.TextChoices):
    NONE = "none", "None"
    OUTLOOK = "outlook", "Outlook"
    SERVER_SIDE_SYNC = "server-side-sync", "Server-Side Synchronization"


class TestStatus(models.TextChoices):
    __test__ = False  # not a pytest test class, whatever its name

    NOT_RUN = "not-run", "Not Run"
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class ApprovalStatus(models.TextChoices):
    EMPTY = "empty", "Empty"
    APPROVED = "approved", "Approved"
    PENDING = "pending", "Pending Approval"
    REJECTED = "rejected", "Rejected"


def choices_check(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=models.Q(**{f"{field}__in": choices.values}), name=name)
