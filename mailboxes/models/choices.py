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


# M8: the Appointments, Contacts, and Tasks methods that need a server carrying calendars
# and contacts, an Exchange type. clean() refuses them with any other server profile; the
# forms offer them only with such a profile (or none yet).
ACT_METHODS_NEEDING_CALENDARS = frozenset({ActMethod.SERVER_SIDE_SYNC})
M8_MESSAGE = (
    "Appointments, Contacts, and Tasks cannot use Server-Side Synchronization with a "
    "POP3/SMTP or IMAP/SMTP server profile: those servers carry no calendars or contacts."
)


def act_method_allowed(method: str, profile) -> bool:
    """M8: may a mailbox (or the organisation's defaults) with `profile` use `method`?"""
    return method not in ACT_METHODS_NEEDING_CALENDARS or profile is None or profile.is_exchange


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
