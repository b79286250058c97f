from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from mailboxadmin.validators import validate_time_zone
from mailboxes.models.choices import (
    M8_MESSAGE,
    ActMethod,
    IncomingMethod,
    OutgoingMethod,
    act_method_allowed,
    choices_check,
)


class OrganizationSettings(models.Model):
    """The organisation's email settings: one record, id 1."""

    default_server_profile = models.ForeignKey(
        "serverprofiles.EmailServerProfile",
        verbose_name="Server Profile",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The server profile new mailboxes get.",
    )
    default_incoming = models.CharField(
        "Incoming Email",
        max_length=20,
        choices=IncomingMethod.choices,
        default=IncomingMethod.SERVER_SIDE_SYNC,
        help_text="How new mailboxes receive email.",
    )
    default_outgoing = models.CharField(
        "Outgoing Email",
        max_length=20,
        choices=OutgoingMethod.choices,
        default=OutgoingMethod.SERVER_SIDE_SYNC,
        help_text="How new mailboxes send email.",
    )
    default_act = models.CharField(
        "Appointments, Contacts, and Tasks",
        max_length=20,
        choices=ActMethod.choices,
        default=ActMethod.NONE,
        help_text="How new mailboxes synchronise appointments, contacts and tasks.",
    )
    approval_required_for_users = models.BooleanField(
        "Process email only for approved users",
        default=True,
        help_text="User mailboxes are processed only once their email address is approved.",
    )
    approval_required_for_queues = models.BooleanField(
        "Process email only for approved queues",
        default=True,
        help_text="Queue mailboxes are processed only once their email address is approved.",
    )
    time_zone = models.CharField(
        "Time Zone",
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="The time zone the pages show times in (an IANA name, such as Europe/Paris).",
    )
    disable_after_failures = models.PositiveIntegerField(
        "Disable Mailbox After Failures",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Consecutive failures of mail processing after which a mailbox is disabled for "
        "incoming email (1–1000); Test & Enable enables it again.",
    )
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        verbose_name = "organisation email settings"
        verbose_name_plural = "organisation email settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="organization_settings_singleton"),
            choices_check("default_incoming", IncomingMethod, "settings_default_incoming_valid"),
            choices_check("default_outgoing", OutgoingMethod, "settings_default_outgoing_valid"),
            choices_check("default_act", ActMethod, "settings_default_act_valid"),
            models.CheckConstraint(
                condition=Q(disable_after_failures__gte=1, disable_after_failures__lte=1000),
                name="settings_disable_after_failures_range",
            ),
        ]

    def __str__(self):
        return "Organisation email settings"

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> "OrganizationSettings":
        settings, _ = cls.objects.select_related("default_server_profile").get_or_create(pk=1)
        return settings

    def clean(self):
        profile = self.default_server_profile
        if not act_method_allowed(self.default_act, profile):  # M8
            raise ValidationError({"default_act": M8_MESSAGE})

    def approval_required_for(self, kind: str) -> bool:
        from mailboxes.models.mailboxes import Mailbox

        return {
            Mailbox.Kind.USER: self.approval_required_for_users,
            Mailbox.Kind.QUEUE: self.approval_required_for_queues,
        }.get(kind, False)
