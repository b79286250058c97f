from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.urls import reverse

from mailboxadmin import encryption
from mailboxadmin.validators import (
    control_character_message,
    has_control_characters,
    normalize_name,
    refuse_control_characters,
    validate_storable_datetime,
)
from mailboxes.models.choices import (
    M8_MESSAGE,
    ActMethod,
    ApprovalStatus,
    IncomingMethod,
    OutgoingMethod,
    TestStatus,
    act_method_allowed,
    choices_check,
)

SSYNC = "server-side-sync"
OUTLOOK = "outlook"

M6_MESSAGE = "The Delete Emails after Processing option cannot be set to Yes for user mailboxes."
M11_MESSAGE = "Another mailbox already uses this email address."
M14_MESSAGE = "Incoming Email = Forward Mailbox needs an active forward mailbox that has a server profile"
M15_WARNING = (
    "This mailbox uses Server-Side Synchronization but has no server profile: "
    "it will not be processed until a server profile is set."
)

# The workloads a mailbox synchronises: (method field, status field, enabled flag, error).
WORKLOADS = {
    "incoming": ("incoming_method", "incoming_status", "enabled_incoming", "incoming_error"),
    "outgoing": ("outgoing_method", "outgoing_status", "enabled_outgoing", "outgoing_error"),
    "act": ("act_method", "act_status", "enabled_act", "act_error"),
}
CREDENTIAL_FIELDS = ("allow_credentials", "username", "password_ciphertext")


class MailboxState(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"


class MailboxKind(models.TextChoices):
    USER = "user", "User mailbox"
    QUEUE = "queue", "Queue mailbox"
    FORWARD = "forward", "Forward mailbox"


class AllowedMethods(NamedTuple):
    values: tuple[str, ...]
    message: str  # the refusal of any other value


# M3, M4, M9 and M10: the delivery methods a forward or queue mailbox may use (a user
# mailbox may use every one). clean() refuses any other; the forms offer only these.
KIND_METHODS: dict[str, dict[str, AllowedMethods]] = {
    MailboxKind.FORWARD: {
        "incoming_method": AllowedMethods(
            (IncomingMethod.NONE, IncomingMethod.SERVER_SIDE_SYNC),
            "A forward mailbox's Incoming Email must be None or Server-Side Synchronization or Email Router.",
        ),
        "outgoing_method": AllowedMethods(
            (OutgoingMethod.NONE,), "A forward mailbox's Outgoing Email must be None."
        ),
        "act_method": AllowedMethods(
            (ActMethod.NONE,), "A forward mailbox's Appointments, Contacts, and Tasks must be None."
        ),
    },
    MailboxKind.QUEUE: {
        "incoming_method": AllowedMethods(
            (IncomingMethod.NONE, IncomingMethod.SERVER_SIDE_SYNC, IncomingMethod.FORWARD_MAILBOX),
            "A queue mailbox's Incoming Email must be None, Server-Side Synchronization "
            "or Email Router, or Forward Mailbox.",
        ),
        "outgoing_method": AllowedMethods(
            (OutgoingMethod.NONE, OutgoingMethod.SERVER_SIDE_SYNC),
            "A queue mailbox's Outgoing Email must be None or Server-Side Synchronization or Email Router.",
        ),
        "act_method": AllowedMethods(
            (ActMethod.NONE,), "A queue mailbox's Appointments, Contacts, and Tasks must be None."
        ),
    },
}


def allowed_methods(kind: str, field: str) -> tuple[str, ...] | None:
    """The values `field` (a delivery method) may take on a mailbox of `kind`; None: any."""
    rule = KIND_METHODS.get(kind, {}).get(field)
    return rule.values if rule else None


FORWARD_TARGET_MISSING = "Incoming Email is Forward Mailbox, but no forward mailbox is active"
# The name under which with_forward_targets() tells each row whether a usable forward
# mailbox exists (the same for every user and queue mailbox).
FORWARD_TARGETS_ANNOTATION = "usable_forward_target_exists"


class MailboxQuerySet(models.QuerySet):
    def forward(self):
        return self.filter(kind=Mailbox.Kind.FORWARD)

    def active(self):
        return self.filter(state=Mailbox.State.ACTIVE)

    def with_email(self, address: str):
        """Mailboxes with this address, case-insensitively: LOWER(email) = LOWER(address),
        the expression of the unique index, so the index answers (email__iexact compiles
        to UPPER() on PostgreSQL and would scan the table)."""
        return self.alias(email_lower=Lower("email")).filter(email_lower=Lower(Value(address)))

    def usable_forward_targets(self):
        """M14: forward mailboxes that user and queue mailboxes can forward to."""
        return self.forward().active().filter(server_profile__isnull=False)

    def with_forward_targets(self):
        """Each row knows whether a usable forward mailbox exists (M14), for the warning
        of mailboxes that receive through one: an uncorrelated EXISTS, which PostgreSQL
        and SQLite evaluate once per query, not once per row."""
        targets = Mailbox.objects.usable_forward_targets()
        return self.annotate(**{FORWARD_TARGETS_ANNOTATION: models.Exists(targets)})


class Mailbox(models.Model):
    """Where one user's, one queue's, or a forward box's email is synchronised."""

    Kind = MailboxKind
    State = MailboxState

    # General
    kind = models.CharField(max_length=10, choices=Kind.choices, editable=False)
    name = models.CharField("Name", max_length=200, help_text="The name shown in lists of mailboxes.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="Owner",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_mailboxes",
        help_text="The user responsible for this mailbox. A queue mailbox follows its queue's owner.",
    )
    email = models.EmailField(
        "Email address",
        max_length=254,
        help_text="The address whose email this mailbox synchronises. Unique across all mailboxes.",
    )
    delete_after_processing = models.BooleanField(
        "Delete Emails After Processing",
        default=False,
        help_text="Delete each message from the server once it has been processed "
        "(forward and queue mailboxes only).",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        editable=False,
        related_name="mailbox",
    )
    queue = models.OneToOneField(
        "mailboxes.Queue",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        editable=False,
        related_name="mailbox",
    )
    state = models.CharField("Status", max_length=10, choices=State.choices, default=State.ACTIVE)

    # Credentials
    allow_credentials = models.BooleanField(
        "Allow to Use Credentials for Email Processing",
        default=False,
        help_text="Connect with this mailbox's own user name and password. Possible only when "
        'the server profile authenticates with "Credentials Specified by a User or Queue".',
    )
    username = models.CharField(
        "User Name", max_length=320, blank=True, help_text="The user name the mail server knows."
    )
    password_ciphertext = models.TextField(blank=True, default="", editable=False)

    # Synchronization Method
    server_profile = models.ForeignKey(
        "serverprofiles.EmailServerProfile",
        verbose_name="Server Profile",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mailboxes",
        help_text="The email server profile this mailbox connects through.",
        # The (server_profile, name) index serves every lookup by profile.
        db_index=False,
    )
    incoming_method = models.CharField(
        "Incoming Email",
        max_length=20,
        choices=IncomingMethod.choices,
        default=IncomingMethod.NONE,
        help_text="How this mailbox receives email.",
    )
    outgoing_method = models.CharField(
        "Outgoing Email",
        max_length=20,
        choices=OutgoingMethod.choices,
        default=OutgoingMethod.NONE,
        help_text="How this mailbox sends email.",
    )
    act_method = models.CharField(
        "Appointments, Contacts, and Tasks",
        max_length=20,
        choices=ActMethod.choices,
        default=ActMethod.NONE,
        help_text="How appointments, contacts and tasks are synchronised.",
    )
    process_email_after = models.DateTimeField(
        "Process Email Received After",
        null=True,
        blank=True,
        validators=[validate_storable_datetime],
        help_text="Only email received after this moment is processed; overrides the "
        "server profile's Process Email From.",
    )

    # Approval and Configuration Test Results
    approval_status = models.CharField(
        "Email Address Status",
        max_length=10,
        choices=ApprovalStatus.choices,
        default=ApprovalStatus.EMPTY,
        editable=False,
    )
    incoming_status = models.CharField(
        "Incoming Email Status",
        max_length=10,
        choices=TestStatus.choices,
        default=TestStatus.NOT_RUN,
        editable=False,
    )
    outgoing_status = models.CharField(
        "Outgoing Email Status",
        max_length=10,
        choices=TestStatus.choices,
        default=TestStatus.NOT_RUN,
        editable=False,
    )
    act_status = models.CharField(
        "Appointments, Contacts, and Tasks Status",
        max_length=10,
        choices=TestStatus.choices,
        default=TestStatus.NOT_RUN,
        editable=False,
    )
    incoming_error = models.TextField(blank=True, default="", editable=False)
    outgoing_error = models.TextField(blank=True, default="", editable=False)
    act_error = models.TextField(blank=True, default="", editable=False)
    test_completed_on = models.DateTimeField(
        "Mailbox Test Completed On", null=True, blank=True, editable=False
    )
    test_scheduled_on = models.DateTimeField(null=True, blank=True, editable=False)
    enabled_incoming = models.BooleanField("Enabled for Incoming Email", default=False, editable=False)
    enabled_outgoing = models.BooleanField("Enabled for Outgoing Email", default=False, editable=False)
    enabled_act = models.BooleanField(
        "Enabled for Appointments, Contacts, and Tasks", default=False, editable=False
    )

    version = models.PositiveIntegerField(default=1, editable=False)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    objects = MailboxQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "mailboxes"
        ordering = ["name", "id"]
        permissions = [
            ("approve_email", "Approve Email Addresses for Users or Queues"),
            ("test_mailbox", "Test & Enable Mailboxes"),
        ]
        constraints = [
            choices_check("kind", MailboxKind, "mailbox_kind_valid"),
            choices_check("state", MailboxState, "mailbox_state_valid"),
            choices_check("incoming_method", IncomingMethod, "mailbox_incoming_valid"),
            choices_check("outgoing_method", OutgoingMethod, "mailbox_outgoing_valid"),
            choices_check("act_method", ActMethod, "mailbox_act_valid"),
            choices_check("approval_status", ApprovalStatus, "mailbox_approval_valid"),
            choices_check("incoming_status", TestStatus, "mailbox_incoming_status_valid"),
            choices_check("outgoing_status", TestStatus, "mailbox_outgoing_status_valid"),
            choices_check("act_status", TestStatus, "mailbox_act_status_valid"),
            # M11
            models.UniqueConstraint(
                Lower("email"),
                name="mailbox_email_unique_ci",
                violation_error_message=M11_MESSAGE,
            ),
            # M1/M2: regarding matches the kind.
            models.CheckConstraint(
                condition=(Q(kind="user") & Q(user__isnull=False) & Q(queue__isnull=True))
                | (Q(kind="queue") & Q(queue__isnull=False) & Q(user__isnull=True))
                | (Q(kind="forward") & Q(user__isnull=True) & Q(queue__isnull=True)),
                name="mailbox_regarding_matches_kind",
            ),
            # M3, M4, M5
            models.CheckConstraint(
                condition=~Q(kind="forward")
                | (
                    Q(outgoing_method="none")
                    & Q(incoming_method__in=["none", SSYNC])
                    & Q(act_method="none")
                    & Q(server_profile__isnull=False)
                    & Q(approval_status="empty")
                ),
                name="mailbox_forward_methods",
            ),
            # M6
            models.CheckConstraint(
                condition=~Q(kind="user") | Q(delete_after_processing=False),
                name="mailbox_user_keeps_emails",
            ),
            # M9
            models.CheckConstraint(
                condition=~Q(kind="queue")
                | (
                    Q(incoming_method__in=["none", SSYNC, "forward-mailbox"])
                    & Q(outgoing_method__in=["none", SSYNC])
                    & Q(act_method="none")
                ),
                name="mailbox_queue_methods",
            ),
            # M10
            models.CheckConstraint(
                condition=Q(kind="user")
                | (~Q(incoming_method=OUTLOOK) & ~Q(outgoing_method=OUTLOOK) & ~Q(act_method=OUTLOOK)),
                name="mailbox_outlook_only_for_users",
            ),
            # M7 (the part a row can check)
            models.CheckConstraint(
                condition=Q(allow_credentials=False) | (~Q(username="") & ~Q(password_ciphertext="")),
                name="mailbox_credentials_complete",
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "name"], name="mailbox_kind_name"),
            models.Index(fields=["state", "name"], name="mailbox_state_name"),
            models.Index(fields=["approval_status", "name"], name="mailbox_approval_name"),
            models.Index(fields=["server_profile", "name"], name="mailbox_profile_name"),
            models.Index(fields=["incoming_method"], name="mailbox_incoming_method"),
            models.Index(fields=["outgoing_method"], name="mailbox_outgoing_method"),
            models.Index(fields=["act_method"], name="mailbox_act_method"),
            models.Index(fields=["incoming_status"], name="mailbox_incoming_status"),
            models.Index(fields=["outgoing_status"], name="mailbox_outgoing_status"),
            models.Index(fields=["act_status"], name="mailbox_act_status"),
            models.Index(fields=["name", "id"], name="mailbox_name_id"),
            # The mailboxes mail processing may read (processing/eligibility.py, which
            # adds the approval rule: it depends on the organisation's settings). Each
            # claim of due mailboxes (processing/scheduler.py) looks them up: without
            # this index a scan of the whole table, 0.3 to 0.8 s of database time a claim
            # at 1,000,000 mailboxes (three processes: a parallel scan), with it 6 ms
            # (EXPLAIN ANALYZE, 1,101 of them enabled). In the processing bench at that
            # size the claims had taken half the machine's CPU.
            models.Index(
                fields=["id"],
                condition=Q(
                    state="active",
                    enabled_incoming=True,
                    incoming_method="server-side-sync",
                    server_profile__isnull=False,
                ),
                name="mailbox_processable",
            ),
            # The usable forward mailboxes (M14), whose EXISTS every mailbox list page
            # asks (with_forward_targets). Without it the planner weighed a scan of the
            # table, expecting a forward mailbox within the first few dozen rows (2 % of
            # them in the bench), against mailbox_kind_name at costs 2 % apart (3.68 vs
            # 3.62): after one ANALYZE of a freshly seeded million it chose the scan,
            # which read 980,001 rows before the first forward mailbox (they were added
            # last), 230 to 330 ms on every list page (`make bench`, 2026-12-06). With it
            # the EXISTS reads one index entry whatever the statistics say.
            models.Index(
                fields=["id"],
                condition=Q(kind="forward", state="active", server_profile__isnull=False),
                name="mailbox_usable_forward",
            ),
        ]

    def __str__(self):
        return f"{self.name} <{self.email}>"

    def __repr__(self):
        return f"<Mailbox {self.pk}: {self.email!r} ({self.kind})>"

    def save(self, *args, **kwargs):
        self.bind_typed_password()
        super().save(*args, **kwargs)
        self._typed_password = ""

    def get_absolute_url(self):
        return reverse("mailboxes:edit", args=[self.pk])

    # Derived facts ---------------------------------------------------------------

    @property
    def is_forward(self) -> bool:
        return self.kind == self.Kind.FORWARD

    @property
    def is_active(self) -> bool:
        return self.state == self.State.ACTIVE

    @property
    def regarding(self):
        return (
            self.user if self.kind == self.Kind.USER else self.queue if self.kind == self.Kind.QUEUE else None
        )

    @property
    def has_password(self) -> bool:
        return bool(self.password_ciphertext)

    @property
    def processing_warning(self) -> str:
        """M15: the warning for a mailbox that will not be processed as configured."""
        if (
            self.kind != self.Kind.FORWARD
            and self.server_profile_id is None
            and SSYNC
            in (
                self.incoming_method,
                self.outgoing_method,
                self.act_method,
            )
        ):
            return M15_WARNING
        return ""

    # A password typed since the mailbox was loaded: bound to the servers of the profile
    # the mailbox has when it is validated and saved (SPEC 9), not when it is typed,
    # since a form puts the typed password on the mailbox before its other fields.
    _typed_password = ""

    def set_password(self, raw: str) -> None:
        refuse_control_characters(raw, field="password", label="The password")
        self._typed_password = raw
        self._bind_password(raw)

    def _bind_password(self, raw: str) -> None:
        from serverprofiles.bindings import mailbox_password_destinations

        profile = self.server_profile if self.server_profile_id else None
        destinations = mailbox_password_destinations(profile)
        self.password_ciphertext = encryption.bind(raw, destinations, current=self.password_ciphertext)

    def bind_typed_password(self) -> None:
        """Bind a password typed since loading to the servers of the profile the mailbox
        has now (a password cleared meanwhile stays cleared)."""
        if self._typed_password and self.password_ciphertext:
            self._bind_password(self._typed_password)

    def rebind_password(self) -> bool:
        """Bind the stored password to the servers of the mailbox's profile now (a System
        Administrator's explicit re-bind). True when there was one to bind."""
        if not self.password_ciphertext:
            return False
        self._bind_password(self.get_password())
        return True

    def get_bound_password(self) -> encryption.BoundSecret:
        """The stored password and the servers it was entered for."""
        record = f"mailbox {self.email} (id {self.pk})"
        return encryption.decrypt_bound(self.password_ciphertext, record=record)

    def get_password(self) -> str:
        return self.get_bound_password().secret

    @property
    def password_binding_warning(self) -> str:
        """SPEC 9: the stored password was entered for other servers than its profile's
        (the mailbox was moved, or the profile's location changed): it must be typed again."""
        from serverprofiles.bindings import mailbox_password_destinations

        if not (self.allow_credentials and self.password_ciphertext and self.server_profile_id):
            return ""
        try:
            bound = self.get_bound_password()
        except encryption.CredentialDecryptionError as exc:
            return str(exc)
        elsewhere = [d for d in mailbox_password_destinations(self.server_profile) if not bound.allows(d)]
        if not elsewhere:
            return ""
        return (
            "The stored password was entered for another server than "
            f"{' and '.join(str(d) for d in elsewhere)}: enter it again to use it there."
        )

    # Validation ------------------------------------------------------------------

    # M11, M14 and M16 read other rows. A bulk change (mailboxes/services/bulk.py) sets
    # this to an object answering them from facts fetched once for a whole chunk of rows,
    # so that validating one row costs no query; left None, they are queried.
    rule_facts = None

    def email_is_taken(self) -> bool:
        """M11: another mailbox already uses this address (case-insensitively)."""
        if self.rule_facts is not None:
            return self.rule_facts.email_is_taken(self)
        return Mailbox.objects.with_email(self.email).exclude(pk=self.pk).exists()

    def forward_target_exists(self) -> bool:
        """M14: an active forward mailbox with a server profile, other than this one."""
        if self.rule_facts is not None:
            return self.rule_facts.forward_target_exists(self)
        known = getattr(self, FORWARD_TARGETS_ANNOTATION, None)
        if known is not None and not self.is_forward:  # a list's rows: asked once for all
            return known
        return Mailbox.objects.usable_forward_targets().exclude(pk=self.pk).exists()

    def forward_target_remedy(self) -> str:
        """M14 refused: what would give this mailbox a forward mailbox (asked only then)."""
        inactive = (
            Mailbox.objects.forward()
            .filter(state=Mailbox.State.INACTIVE, server_profile__isnull=False)
            .exclude(pk=self.pk)
            .order_by("name", "id")
            .only("name", "email")
            .first()
        )
        if inactive is not None:
            return f"activate the forward mailbox {inactive} (or create one with New Forward Mailbox)"
        return "create one with New Forward Mailbox first"

    @property
    def forward_target_missing(self) -> bool:
        """M14 after the fact: this mailbox receives through a forward mailbox, and none is
        usable now (the only one was deactivated, say)."""
        if self.incoming_method != IncomingMethod.FORWARD_MAILBOX or self.is_forward or self.pk is None:
            return False
        return not self.forward_target_exists()

    @property
    def forward_target_warning(self) -> str:
        if not self.forward_target_missing:
            return ""
        remedy = self.forward_target_remedy()
        return f"{FORWARD_TARGET_MISSING}: this mailbox receives no email until one is. To fix it, {remedy}."

    def regarding_is_inactive(self) -> bool:
        """M16: the user or queue this mailbox is regarding is inactive."""
        name = "user" if self.kind == self.Kind.USER else "queue"
        if self.rule_facts is not None and not self._meta.get_field(name).is_cached(self):
            return self.rule_facts.regarding_is_inactive(self)
        regarding = getattr(self, name)
        return regarding is not None and not regarding.is_active

    def clean(self):
        self.name = normalize_name(self.name)
        if not self.allow_credentials:
            # M7: turning credentials off removes them.
            self.username = ""
            self.password_ciphertext = ""
        self.bind_typed_password()
        errors: dict[str, list[str]] = {}

        def add(field, message):
            errors.setdefault(field, []).append(message)

        if has_control_characters(self.username):
            add("username", control_character_message("The user name"))

        profile = self.server_profile if self.server_profile_id else None
        is_user, is_queue, is_forward = (self.kind == k for k in self.Kind)

        if self.kind not in _KINDS:
            add("__all__", "A mailbox is a user, queue or forward mailbox.")
        if (is_user and not (self.user_id and not self.queue_id)) or (
            is_queue and not (self.queue_id and not self.user_id)
        ):
            add("__all__", f"A {self.kind} mailbox is regarding exactly one {self.kind}.")
        if is_forward:
            if self.user_id or self.queue_id:  # M2
                add("__all__", "A forward mailbox has no Regarding.")
            if self.approval_status != ApprovalStatus.EMPTY:  # M13a
                add(
                    "__all__",
                    "Approval does not apply to forward mailboxes: Email Address Status stays Empty.",
                )
            if profile is None:  # M5
                add("server_profile", "A forward mailbox must have a server profile.")
        if self.delete_after_processing and is_user:  # M6
            add("delete_after_processing", M6_MESSAGE)
        # M7
        if self.allow_credentials:
            if profile is None or not profile.uses_user_credentials:
                add(
                    "allow_credentials",
                    "Allow to Use Credentials for Email Processing can be Yes only when the "
                    'server profile uses "Credentials Specified by a User or Queue".',
                )
            else:
                if not self.username:
                    add("username", "Enter the user name, or set Allow to Use Credentials to No.")
                if not self.password_ciphertext:
                    add("password", "Enter the password, or set Allow to Use Credentials to No.")
        # M8
        if not act_method_allowed(self.act_method, profile):
            add("act_method", M8_MESSAGE)
        for field, allowed in KIND_METHODS.get(self.kind, {}).items():  # M3, M4, M9, M10
            if getattr(self, field) not in allowed.values:
                add(field, allowed.message)
        # M11 (also a unique index; checked here to name the field)
        if self.email and self.email_is_taken():
            add("email", M11_MESSAGE)
        # M14
        if self.incoming_method == IncomingMethod.FORWARD_MAILBOX and not is_forward:
            if not self.forward_target_exists():
                add("incoming_method", f"{M14_MESSAGE}; {self.forward_target_remedy()}.")
        # M16: a user's or queue's mailbox is active only while its user or queue is.
        if self.is_active and (is_user or is_queue) and self.regarding_is_inactive():
            add("state", f"The mailbox cannot be active while its {self.kind} is inactive.")
        if errors:
            raise ValidationError(errors)

    def validate_constraints(self, exclude=None):
        # Every constraint in Meta mirrors a rule that clean() or a field's own validation
        # has already checked, with its message on the right field. Django would check
        # each one again with a query of its own (about 20 per save); the constraints stay
        # as the database's backstop instead.
        return


_KINDS = frozenset(Mailbox.Kind.values)  # clean() runs for every row of a bulk change
