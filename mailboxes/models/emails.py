"""Mail processing's records (SPEC section 8): the emails, and where each mailbox's
fetching stands.

An Email is recorded once per mailbox and message: `digest` is the SHA-256 of the
normalised Message-ID, or of the raw message when it has none, and (mailbox, digest) is
unique — the database refuses a second copy whatever a worker, a retry or a rescan does.
"""

import secrets

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.urls import reverse


def email_storage():
    """Where raw messages are kept: the "emails" storage of settings.STORAGES (files under
    var/emails by default; an S3-compatible store by settings alone)."""
    return storages["emails"]


def raw_message_path(email: "Email", filename: str) -> str:
    """A name of its own for each saved message: a storage that overwrites a name already
    taken (django-storages' S3 by default) must never replace a recorded message with a
    duplicate on its way to being refused (emails_commit tells them apart by name)."""
    return f"{email.mailbox_id}/{email.digest[:2]}/{email.digest}-{secrets.token_hex(6)}.eml"


class Email(models.Model):
    """One message, as the CRM's email activity: received by a mailbox and regarding its
    user or queue (through a forward mailbox, if it came that way)."""

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", verbose_name="Mailbox", on_delete=models.CASCADE, related_name="emails"
    )
    regarding_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="Regarding (user)",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    regarding_queue = models.ForeignKey(
        "mailboxes.Queue",
        verbose_name="Regarding (queue)",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    forward_mailbox = models.ForeignKey(
        "mailboxes.Mailbox",
        verbose_name="Forwarded Through",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="forwarded_emails",
    )
    digest = models.CharField(max_length=64, editable=False)
    message_id = models.CharField("Message-ID", max_length=998, blank=True)
    subject = models.CharField("Subject", max_length=998, blank=True)
    from_address = models.CharField("From", max_length=998, blank=True)
    to_addresses = models.TextField("To", blank=True)
    cc_addresses = models.TextField("Cc", blank=True)
    sent_on = models.DateTimeField("Date", null=True, blank=True)
    received_on = models.DateTimeField("Received On")
    size = models.PositiveBigIntegerField("Size")
    headers_only = models.BooleanField(
        "Headers Only",
        default=False,
        help_text="The message was over the size limit: only its headers were kept.",
    )
    malformed = models.BooleanField(
        "Could Not Be Parsed",
        default=False,
        help_text="The raw message is kept whole; its fields may be empty.",
    )
    attachments = models.JSONField("Attachments", default=list, blank=True)
    raw = models.FileField("Raw Message", storage=email_storage, upload_to=raw_message_path, max_length=255)
    recorded_on = models.DateTimeField("Recorded On", auto_now_add=True)

    class Meta:
        ordering = ["-received_on", "-id"]
        default_permissions = ("view",)  # written by mail processing only
        permissions = [("download_raw_email", "Download raw email messages")]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "digest"], name="email_once_per_mailbox"),
            models.CheckConstraint(
                condition=Q(regarding_user__isnull=True) | Q(regarding_queue__isnull=True),
                name="email_regarding_one",
            ),
        ]
        indexes = [
            models.Index(fields=["-received_on", "-id"], name="email_newest"),
            models.Index(fields=["mailbox", "-received_on", "-id"], name="email_mailbox_newest"),
            models.Index(fields=["regarding_user", "-received_on", "-id"], name="email_user_newest"),
            models.Index(fields=["regarding_queue", "-received_on", "-id"], name="email_queue_newest"),
            models.Index(fields=["forward_mailbox", "-received_on", "-id"], name="email_forward_newest"),
        ]

    def __str__(self):
        return self.subject or "(no subject)"

    def get_absolute_url(self):
        return reverse("emails:detail", args=[self.pk])


class MailboxSync(models.Model):
    """Where one mailbox's mail processing stands: its lease, its polling, its failures."""

    mailbox = models.OneToOneField(
        "mailboxes.Mailbox", on_delete=models.CASCADE, primary_key=True, related_name="sync"
    )
    # The worker processing it now (empty when none), until the lease expires — by the
    # database's clock, the one every host shares.
    lease_holder = models.CharField(max_length=100, blank=True, default="")
    lease_expires_on = models.DateTimeField(null=True, blank=True)
    next_poll_on = models.DateTimeField("Next Poll", null=True, blank=True)
    last_attempt_on = models.DateTimeField(null=True, blank=True)
    last_sync_on = models.DateTimeField("Last Sync", null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField("Last Error", blank=True, default="")

    class Meta:
        default_permissions = ()  # written by processing only; shown with the mailbox
        indexes = [models.Index(fields=["next_poll_on"], name="mailbox_sync_due")]
        constraints = [
            models.CheckConstraint(
                condition=Q(lease_holder="", lease_expires_on__isnull=True)
                | (~Q(lease_holder="") & Q(lease_expires_on__isnull=False)),
                name="mailbox_sync_held_with_lease",
            ),
        ]

    def __str__(self):
        return f"Sync of mailbox {self.mailbox_id}"


class FolderSync(models.Model):
    """IMAP: how far a mailbox's folder has been read, valid while its UIDVALIDITY holds."""

    mailbox = models.ForeignKey("mailboxes.Mailbox", on_delete=models.CASCADE, related_name="folder_syncs")
    folder = models.CharField(max_length=255)
    uidvalidity = models.PositiveBigIntegerField()
    last_uid = models.PositiveBigIntegerField(default=0)

    class Meta:
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["mailbox", "folder"], name="folder_sync_unique")]

    def __str__(self):
        return f"{self.mailbox_id} {self.folder}: {self.uidvalidity}/{self.last_uid}"


class SeenMessage(models.Model):
    """POP3: a message (by UIDL) already handled and left on the server, never fetched again."""

    mailbox = models.ForeignKey("mailboxes.Mailbox", on_delete=models.CASCADE, related_name="seen_messages")
    uidl = models.CharField(max_length=70)

    class Meta:
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["mailbox", "uidl"], name="seen_message_unique")]

    def __str__(self):
        return f"{self.mailbox_id} {self.uidl}"
