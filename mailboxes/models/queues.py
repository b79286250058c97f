from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from mailboxadmin.validators import normalize_name
from mailboxes.models.choices import choices_check


class ConvertIncoming(models.TextChoices):
    ALL = "all", "All email messages"
    RESPONSES = "responses", "Email messages in response to email"
    KNOWN_SENDERS = "known-senders", "Email messages from leads, contacts and accounts"
    EMAIL_ENABLED = "email-enabled", "Email messages from records that are email enabled"
    NONE = "none", "No email messages"


class QueueType(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class Queue(models.Model):
    """A shared inbox such as support@."""

    Type = QueueType
    ConvertIncoming = ConvertIncoming

    name = models.CharField("Name", max_length=200)
    queue_type = models.CharField("Type", max_length=10, choices=Type.choices, default=Type.PUBLIC)
    email = models.EmailField(
        "Incoming Email", max_length=254, help_text="The address of this queue's mailbox."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="Owner",
        on_delete=models.PROTECT,
        related_name="owned_queues",
    )
    description = models.TextField("Description", blank=True, max_length=2000)
    convert_incoming = models.CharField(
        "Convert Incoming Email To Activities",
        max_length=20,
        choices=ConvertIncoming.choices,
        default=ConvertIncoming.RESPONSES,
    )
    is_active = models.BooleanField("Active", default=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            choices_check("queue_type", QueueType, "queue_type_valid"),
            choices_check("convert_incoming", ConvertIncoming, "queue_convert_incoming_valid"),
        ]
        indexes = [models.Index(Lower("email"), name="queue_email_lower")]

    def __str__(self):
        return self.name

    def clean(self):
        self.name = normalize_name(self.name)

    def get_absolute_url(self):
        return reverse("queues:edit", args=[self.pk])
