from mailboxes.models.alerts import MailboxAlert
from mailboxes.models.choices import (
    ActMethod,
    ApprovalStatus,
    IncomingMethod,
    OutgoingMethod,
    TestStatus,
)
from mailboxes.models.emails import Email, FolderSync, MailboxSync, SeenMessage
from mailboxes.models.jobs import BulkJob
from mailboxes.models.mailboxes import Mailbox
from mailboxes.models.organization import OrganizationSettings
from mailboxes.models.queues import Queue
from mailboxes.models.search import MailboxSearchText
from mailboxes.models.users import User

__all__ = [
    "ActMethod",
    "ApprovalStatus",
    "BulkJob",
    "Email",
    "FolderSync",
    "IncomingMethod",
    "Mailbox",
    "MailboxAlert",
    "MailboxSearchText",
    "MailboxSync",
    "OrganizationSettings",
    "OutgoingMethod",
    "Queue",
    "SeenMessage",
    "TestStatus",
    "User",
]
