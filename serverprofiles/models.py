from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from mailboxadmin import encryption
from mailboxadmin.validators import (
    control_character_message,
    has_control_characters,
    is_host_name,
    is_https_url,
    normalize_name,
    refuse_control_characters,
    validate_storable_datetime,
)
from serverprofiles.connectors.endpoints import MAX_TIMEOUT_MS


class ServerType(models.TextChoices):
    EXCHANGE = "exchange", "Exchange Server"
    EXCHANGE_HYBRID = "exchange-hybrid", "Exchange Server (Hybrid)"
    EXCHANGE_ONLINE = "exchange-online", "Exchange Online (Hybrid)"
    POP3_SMTP = "pop3-smtp", "Other (POP3/SMTP)"
    IMAP_SMTP = "imap-smtp", "IMAP/SMTP"


EXCHANGE_TYPES = (ServerType.EXCHANGE, ServerType.EXCHANGE_HYBRID, ServerType.EXCHANGE_ONLINE)


class AuthenticationMethod(models.TextChoices):
    USER_CREDENTIALS = "user-credentials", "Credentials Specified by a User or Queue"
    PROFILE_CREDENTIALS = "profile-credentials", "Credentials Specified in Email Server Profile"
    SERVER_TO_SERVER = "server-to-server", "Server to Server Authentication"
    WINDOWS = "windows", "Windows Integrated Authentication"
    ANONYMOUS = "anonymous", "Without Credentials (Anonymous)"
    OAUTH2 = "oauth2", "OAuth 2.0 (Modern Authentication)"


EXCHANGE_ONLY_AUTH = (AuthenticationMethod.SERVER_TO_SERVER, AuthenticationMethod.WINDOWS)


class OAuthProvider(models.TextChoices):
    MICROSOFT = "microsoft", "Microsoft 365"
    GOOGLE = "google", "Google Workspace"
    OTHER = "other", "Other"


# SPEC 7: each provider's token endpoint and scope unless the profile says otherwise.
MICROSOFT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
DEFAULT_SCOPES = {
    OAuthProvider.MICROSOFT: "https://outlook.office365.com/.default",
    OAuthProvider.GOOGLE: "https://mail.google.com/",
}
# Exchange Online is reached over IMAP and SMTP (SPEC 7): its default locations.
EXCHANGE_ONLINE_INCOMING = ("outlook.office365.com", 993, True)
EXCHANGE_ONLINE_OUTGOING = ("smtp.office365.com", 587, False)
OAUTH_FIELDS = (
    "oauth_provider",
    "oauth_tenant_id",
    "oauth_token_url",
    "oauth_client_id",
    "oauth_client_secret_ciphertext",
    "oauth_service_account_key_ciphertext",
    "oauth_scope",
)

# Fields whose change makes earlier test results meaningless (P9).
CONNECTION_FIELDS = (
    "server_type",
    "auto_discover",
    "incoming_server",
    "outgoing_server",
    "incoming_port",
    "outgoing_port",
    "incoming_ssl",
    "outgoing_ssl",
    "incoming_auth",
    "outgoing_auth",
    "use_same_settings_for_outgoing",
    "incoming_username",
    "incoming_password_ciphertext",
    "outgoing_username",
    "outgoing_password_ciphertext",
    "allow_unencrypted_credentials",
    *OAUTH_FIELDS,
)

DEFAULT_PORTS = {
    # (protocol, ssl) -> port
    ("imap", True): 993,
    ("imap", False): 143,
    ("pop3", True): 995,
    ("pop3", False): 110,
    ("smtp", True): 465,
    ("smtp", False): 587,
}


def _choices_check(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class EmailServerProfile(models.Model):
    name = models.CharField("Name", max_length=100, unique=True)
    description = models.TextField("Description", blank=True, max_length=2000)
    server_type = models.CharField(
        "Email Server Type",
        max_length=20,
        choices=ServerType.choices,
        help_text="The kind of mail server this profile connects to.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="Owner",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_server_profiles",
        help_text="Receives alerts about this profile.",
    )
    auto_discover = models.BooleanField(
        "Auto Discover Server Location",
        default=False,
        help_text="Exchange only: find the server location from each mailbox's address.",
    )
    incoming_server = models.CharField(
        "Incoming Server Location",
        max_length=2048,
        blank=True,
        help_text="Host name of the IMAP or POP3 server, or the https URL of the Exchange server.",
    )
    outgoing_server = models.CharField(
        "Outgoing Server Location",
        max_length=2048,
        blank=True,
        help_text="Host name of the SMTP server, or the https URL of the Exchange server.",
    )
    incoming_auth = models.CharField(
        "Authenticate Using (incoming)",
        max_length=24,
        choices=AuthenticationMethod.choices,
        default=AuthenticationMethod.USER_CREDENTIALS,
        help_text="Whose credentials open incoming connections.",
    )
    outgoing_auth = models.CharField(
        "Authenticate Using (outgoing)",
        max_length=24,
        choices=AuthenticationMethod.choices,
        default=AuthenticationMethod.USER_CREDENTIALS,
        help_text="Whose credentials open outgoing connections.",
    )
    use_same_settings_for_outgoing = models.BooleanField(
        "Use Same Settings for Outgoing Connections",
        default=True,
        help_text="Outgoing connections authenticate exactly as incoming ones do.",
    )
    incoming_username = models.CharField("User Name (incoming)", max_length=320, blank=True)
    incoming_password_ciphertext = models.TextField(blank=True, default="", editable=False)
    outgoing_username = models.CharField("User Name (outgoing)", max_length=320, blank=True)
    outgoing_password_ciphertext = models.TextField(blank=True, default="", editable=False)
    incoming_port = models.PositiveIntegerField(
        "Incoming Port",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Left empty, it is filled from the protocol and SSL (IMAP 993/143, POP3 995/110).",
    )
    outgoing_port = models.PositiveIntegerField(
        "Outgoing Port",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Left empty, it is filled from SSL (SMTP 465 with SSL, 587 without).",
    )
    incoming_ssl = models.BooleanField(
        "Use SSL for Incoming Connection",
        default=True,
        help_text="Yes: implicit TLS. No: STARTTLS where the server offers it.",
    )
    outgoing_ssl = models.BooleanField(
        "Use SSL for Outgoing Connection",
        default=True,
        help_text="Yes: implicit TLS. No: STARTTLS where the server offers it.",
    )
    process_email_from = models.DateTimeField(
        "Process Email From",
        null=True,
        blank=True,
        validators=[validate_storable_datetime],
        help_text="Mail received before this date and time is ignored.",
    )
    min_polling_interval = models.PositiveIntegerField(
        "Minimum Polling Interval in Minutes",
        default=0,
        validators=[MaxValueValidator(1440)],
        help_text="How often, at most, each mailbox is checked for new mail (0–1440).",
    )
    max_connections = models.PositiveIntegerField(
        "Maximum Concurrent Connections",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(300)],
        help_text="The most simultaneous connections to this server, tests included (1–300).",
    )
    move_failed_to_undeliverable = models.BooleanField(
        "Move Failed Emails to Undeliverable Folder",
        default=False,
        help_text="Exchange only: move messages that cannot be processed to an Undeliverable folder.",
    )
    timeout_ms = models.PositiveIntegerField(
        "Connection timeout (ms)",
        default=10000,
        validators=[
            MinValueValidator(1),
            MaxValueValidator(
                MAX_TIMEOUT_MS,
                message=f"Connection timeout (ms) is at most {MAX_TIMEOUT_MS} (one minute): a mail "
                "server that has not answered within a minute is not going to.",
            ),
        ],
        help_text=f"How long a connection may wait for the server (1–{MAX_TIMEOUT_MS} ms).",
    )
    allow_unencrypted_credentials = models.BooleanField(
        "Allow credentials over unencrypted connections",
        default=False,
        help_text="Send passwords even where the server offers no TLS (no SSL, no STARTTLS). "
        "Only System Administrators may turn this on.",
    )
    oauth_provider = models.CharField(
        "OAuth Provider",
        max_length=10,
        choices=OAuthProvider.choices,
        blank=True,
        default="",
        help_text="Who issues the access tokens this profile logs in with.",
    )
    oauth_tenant_id = models.CharField(
        "Tenant ID",
        max_length=100,
        blank=True,
        help_text="Microsoft 365: the directory (tenant) ID of your organisation in Microsoft Entra ID.",
    )
    oauth_token_url = models.CharField(
        "Token URL",
        max_length=2048,
        blank=True,
        help_text="The https URL of the token endpoint. Left empty: Microsoft 365's for the Tenant ID, "
        "or https://oauth2.googleapis.com/token for Google Workspace.",
    )
    oauth_client_id = models.CharField(
        "Client ID",
        max_length=255,
        blank=True,
        help_text="The application (client) ID registered with the provider.",
    )
    oauth_client_secret_ciphertext = models.TextField(blank=True, default="", editable=False)
    oauth_service_account_key_ciphertext = models.TextField(blank=True, default="", editable=False)
    oauth_scope = models.CharField(
        "Scope",
        max_length=1000,
        blank=True,
        help_text="Left empty: https://outlook.office365.com/.default (Microsoft 365), "
        "https://mail.google.com/ (Google Workspace).",
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_on = models.DateTimeField(auto_now_add=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "email server profile"
        ordering = ["name"]
        constraints = [
            _choices_check("server_type", ServerType, "profile_server_type_valid"),
            _choices_check("incoming_auth", AuthenticationMethod, "profile_incoming_auth_valid"),
            _choices_check("outgoing_auth", AuthenticationMethod, "profile_outgoing_auth_valid"),
            models.CheckConstraint(
                condition=Q(oauth_provider="") | Q(oauth_provider__in=OAuthProvider.values),
                name="profile_oauth_provider_valid",
            ),
            # P3: OAuth 2.0 only for POP3/SMTP and IMAP/SMTP
            models.CheckConstraint(
                condition=~Q(server_type__in=[t.value for t in EXCHANGE_TYPES])
                | (
                    ~Q(incoming_auth=AuthenticationMethod.OAUTH2)
                    & ~Q(outgoing_auth=AuthenticationMethod.OAUTH2)
                ),
                name="profile_oauth2_not_exchange",
            ),
            # P3
            models.CheckConstraint(
                condition=Q(server_type__in=[t.value for t in EXCHANGE_TYPES])
                | (~Q(incoming_auth__in=EXCHANGE_ONLY_AUTH) & ~Q(outgoing_auth__in=EXCHANGE_ONLY_AUTH)),
                name="profile_exchange_only_auth",
            ),
            models.CheckConstraint(
                condition=~Q(server_type=ServerType.EXCHANGE_ONLINE)
                | (
                    Q(incoming_auth=AuthenticationMethod.SERVER_TO_SERVER)
                    & Q(outgoing_auth=AuthenticationMethod.SERVER_TO_SERVER)
                ),
                name="profile_exchange_online_server_to_server",
            ),
            # P10 for the oauth2 choice (Exchange Online profiles saved before OAuth existed
            # have no client yet: clean() asks for it on their next edit)
            models.CheckConstraint(
                condition=(
                    ~Q(incoming_auth=AuthenticationMethod.OAUTH2)
                    & ~Q(outgoing_auth=AuthenticationMethod.OAUTH2)
                )
                | (
                    ~Q(oauth_provider="")
                    & ~Q(oauth_client_id="")
                    & (~Q(oauth_client_secret_ciphertext="") | ~Q(oauth_service_account_key_ciphertext=""))
                ),
                name="profile_oauth2_client_complete",
            ),
            # P4
            models.CheckConstraint(
                condition=~Q(incoming_auth=AuthenticationMethod.ANONYMOUS),
                name="profile_incoming_not_anonymous",
            ),
            # P5
            models.CheckConstraint(
                condition=Q(server_type__in=[t.value for t in EXCHANGE_TYPES])
                | (Q(auto_discover=False) & Q(move_failed_to_undeliverable=False)),
                name="profile_exchange_only_options",
            ),
            # P2
            models.CheckConstraint(
                condition=~Q(incoming_auth=AuthenticationMethod.PROFILE_CREDENTIALS)
                | (~Q(incoming_username="") & ~Q(incoming_password_ciphertext="")),
                name="profile_incoming_credentials_complete",
            ),
            # P6
            models.CheckConstraint(
                condition=Q(incoming_port__isnull=True) | Q(incoming_port__gte=1, incoming_port__lte=65535),
                name="profile_incoming_port_range",
            ),
            models.CheckConstraint(
                condition=Q(outgoing_port__isnull=True) | Q(outgoing_port__gte=1, outgoing_port__lte=65535),
                name="profile_outgoing_port_range",
            ),
            models.CheckConstraint(
                condition=Q(max_connections__gte=1, max_connections__lte=300),
                name="profile_max_connections_range",
            ),
            models.CheckConstraint(
                condition=Q(min_polling_interval__gte=0, min_polling_interval__lte=1440),
                name="profile_polling_interval_range",
            ),
            models.CheckConstraint(
                condition=Q(timeout_ms__gte=1, timeout_ms__lte=MAX_TIMEOUT_MS),
                name="profile_timeout_range",
            ),
        ]

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<EmailServerProfile {self.pk}: {self.name!r}>"

    def save(self, *args, **kwargs):
        self.normalize()
        self.bind_typed_passwords()
        super().save(*args, **kwargs)
        self._typed_passwords = {}
        self._typed_oauth_secrets = {}

    def get_absolute_url(self):
        return reverse("serverprofiles:edit", args=[self.pk])

    # Derived facts --------------------------------------------------------------

    @property
    def is_default(self) -> bool:
        """P7: the default lives in one place, the organisation's email settings."""
        from mailboxes.models import OrganizationSettings

        return OrganizationSettings.objects.filter(pk=1, default_server_profile_id=self.pk).exists()

    @property
    def is_exchange(self) -> bool:
        return self.server_type in EXCHANGE_TYPES

    @property
    def incoming_protocol(self) -> str:
        return {
            ServerType.IMAP_SMTP: "imap",
            ServerType.POP3_SMTP: "pop3",
            ServerType.EXCHANGE_ONLINE: "imap",  # SPEC 7: Exchange Online over IMAP with OAuth
        }.get(self.server_type, "exchange")

    @property
    def outgoing_protocol(self) -> str:
        return "exchange" if self.is_exchange and self.server_type != ServerType.EXCHANGE_ONLINE else "smtp"

    @property
    def locations_are_host_names(self) -> bool:
        """P5: host names for IMAP, POP3 and SMTP servers (Exchange Online included),
        https URLs for the other Exchange types."""
        return self.incoming_protocol != "exchange"

    @property
    def effective_outgoing_auth(self) -> str:
        return self.incoming_auth if self.use_same_settings_for_outgoing else self.outgoing_auth

    @property
    def uses_user_credentials(self) -> bool:
        """M7: mailboxes may carry their own credentials only with this profile."""
        return AuthenticationMethod.USER_CREDENTIALS in (self.incoming_auth, self.effective_outgoing_auth)

    def oauth_for(self, direction: str) -> bool:
        """Whether `direction` logs in with an OAuth 2.0 access token (SPEC 7): the oauth2
        choice, or Exchange Online's Server to Server Authentication."""
        auth = self.incoming_auth if direction == "incoming" else self.effective_outgoing_auth
        return auth == AuthenticationMethod.OAUTH2 or (
            auth == AuthenticationMethod.SERVER_TO_SERVER and self.server_type == ServerType.EXCHANGE_ONLINE
        )

    @property
    def uses_oauth(self) -> bool:
        return self.oauth_for("incoming") or self.oauth_for("outgoing")

    @property
    def oauth_token_endpoint(self) -> str:
        """The token URL tokens are asked for: the profile's own (for Microsoft, one of its
        national clouds, say), else Microsoft's for the tenant or Google's."""
        if url := self.oauth_token_url.strip():
            return url
        if self.oauth_provider == OAuthProvider.MICROSOFT and self.oauth_tenant_id.strip():
            return MICROSOFT_TOKEN_URL.format(tenant=self.oauth_tenant_id.strip())
        if self.oauth_provider == OAuthProvider.GOOGLE:
            return GOOGLE_TOKEN_URL
        return ""

    @property
    def oauth_effective_scope(self) -> str:
        return self.oauth_scope.strip() or DEFAULT_SCOPES.get(self.oauth_provider, "")

    @property
    def oauth_secret_column(self) -> str:
        """Google signs with a service account key; the others send a client secret."""
        if self.oauth_provider == OAuthProvider.GOOGLE:
            return "oauth_service_account_key_ciphertext"
        return "oauth_client_secret_ciphertext"

    def normalize(self) -> None:
        """Derived values: outgoing settings mirror incoming ones, empty ports are filled."""
        if self.server_type == ServerType.EXCHANGE_ONLINE:
            self.oauth_provider = OAuthProvider.MICROSOFT
            for direction, (host, port, ssl) in (
                ("incoming", EXCHANGE_ONLINE_INCOMING),
                ("outgoing", EXCHANGE_ONLINE_OUTGOING),
            ):
                if not (getattr(self, f"{direction}_server") or "").strip():
                    setattr(self, f"{direction}_server", host)
                    setattr(self, f"{direction}_port", port)
                    setattr(self, f"{direction}_ssl", ssl)
        if self.use_same_settings_for_outgoing:
            self.outgoing_auth = self.incoming_auth
            self.outgoing_username = ""
            self.outgoing_password_ciphertext = ""
        if self.incoming_auth != AuthenticationMethod.PROFILE_CREDENTIALS:
            self.incoming_username = ""
            self.incoming_password_ciphertext = ""
        if self.outgoing_auth != AuthenticationMethod.PROFILE_CREDENTIALS:
            self.outgoing_username = ""
            self.outgoing_password_ciphertext = ""
        if not self.uses_oauth:
            for name in OAUTH_FIELDS:
                setattr(self, name, "")
        else:
            if self.oauth_provider != OAuthProvider.MICROSOFT:
                self.oauth_tenant_id = ""
            other_secret = {
                "oauth_client_secret_ciphertext",
                "oauth_service_account_key_ciphertext",
            } - {self.oauth_secret_column}
            setattr(self, other_secret.pop(), "")
        self.fill_default_ports()

    def fill_default_ports(self) -> None:
        if not self.locations_are_host_names:
            return
        if self.incoming_port is None:
            self.incoming_port = DEFAULT_PORTS.get((self.incoming_protocol, self.incoming_ssl))
        if self.outgoing_port is None:
            self.outgoing_port = DEFAULT_PORTS[("smtp", self.outgoing_ssl)]

    # Credentials -----------------------------------------------------------------

    @property
    def has_incoming_password(self) -> bool:
        return bool(self.incoming_password_ciphertext)

    @property
    def has_outgoing_password(self) -> bool:
        if self.use_same_settings_for_outgoing:
            return self.has_incoming_password
        return bool(self.outgoing_password_ciphertext)

    # Passwords typed since the profile was loaded, by direction: bound to the servers
    # the profile has when it is validated and saved (SPEC 9), not when they are typed,
    # since a form puts the typed password on the profile before its other fields.
    _typed_passwords: dict[str, str] = {}

    def set_incoming_password(self, raw: str) -> None:
        self._set_password("incoming", raw)

    def set_outgoing_password(self, raw: str) -> None:
        self._set_password("outgoing", raw)

    def _set_password(self, direction: str, raw: str) -> None:
        label = "The password" if direction == "incoming" else "The outgoing password"
        refuse_control_characters(raw, field=f"{direction}_password", label=label)
        self._typed_passwords = {**self._typed_passwords, direction: raw}
        self._bind_password(direction, raw)

    def _bind_password(self, direction: str, raw: str) -> None:
        from serverprofiles.bindings import profile_password_destinations

        destinations = profile_password_destinations(self, direction)
        column = f"{direction}_password_ciphertext"
        setattr(self, column, encryption.bind(raw, destinations, current=getattr(self, column)))

    def bind_typed_passwords(self) -> None:
        """Bind each password (and OAuth secret) typed since loading to the servers (token
        URL) the profile has now (a secret cleared meanwhile stays cleared)."""
        for direction, raw in self._typed_passwords.items():
            if getattr(self, f"{direction}_password_ciphertext"):
                self._bind_password(direction, raw)
        for column, raw in self._typed_oauth_secrets.items():
            if getattr(self, column):
                self._bind_oauth_secret(column, raw)

    # OAuth secrets typed since loading, by column: bound to the token URL and servers the
    # profile has when it is validated and saved, as typed passwords are.
    _typed_oauth_secrets: dict[str, str] = {}

    def set_oauth_client_secret(self, raw: str) -> None:
        self._set_oauth_secret("oauth_client_secret_ciphertext", raw)

    def set_oauth_service_account_key(self, raw: str) -> None:
        self._set_oauth_secret("oauth_service_account_key_ciphertext", raw)

    def set_oauth_secret(self, raw: str) -> None:
        """The provider's secret: Google's service account key, else the client secret."""
        self._set_oauth_secret(self.oauth_secret_column, raw)

    def _set_oauth_secret(self, column: str, raw: str) -> None:
        self._typed_oauth_secrets = {**self._typed_oauth_secrets, column: raw}
        self._bind_oauth_secret(column, raw)

    def _bind_oauth_secret(self, column: str, raw: str) -> None:
        from serverprofiles.bindings import oauth_secret_destinations

        destinations = oauth_secret_destinations(self, self.oauth_token_endpoint)
        setattr(self, column, encryption.bind(raw, destinations, current=getattr(self, column)))

    @property
    def typed_service_account_key(self) -> str | None:
        return self._typed_oauth_secrets.get("oauth_service_account_key_ciphertext")

    @property
    def has_oauth_client_secret(self) -> bool:
        return bool(self.oauth_client_secret_ciphertext)

    @property
    def has_oauth_service_account_key(self) -> bool:
        return bool(self.oauth_service_account_key_ciphertext)

    @property
    def has_oauth_secret(self) -> bool:
        return bool(getattr(self, self.oauth_secret_column))

    def get_bound_oauth_secret(self) -> encryption.BoundSecret:
        """The stored client secret (or Google service account key) and the token URL and
        servers it was entered for."""
        return encryption.decrypt_bound(
            getattr(self, self.oauth_secret_column),
            record=f'email server profile "{self.name}" (OAuth secret)',
        )

    def rebind_passwords(self) -> list[str]:
        """Bind the stored passwords, and the OAuth client secret or key, to the servers and
        Token URL the profile has now (a System Administrator's explicit re-bind). Returns
        the columns re-bound (none when there was nothing to bind)."""
        rebound = []
        for direction in ("incoming", "outgoing"):
            if getattr(self, f"{direction}_password_ciphertext"):
                self._bind_password(direction, self.get_bound_password(direction).secret)
                rebound.append(f"{direction}_password_ciphertext")
        if self.uses_oauth and self.has_oauth_secret:
            self._bind_oauth_secret(self.oauth_secret_column, self.get_bound_oauth_secret().secret)
            rebound.append(self.oauth_secret_column)
        return rebound

    def get_bound_password(self, direction: str) -> encryption.BoundSecret:
        """The stored password for `direction` and the servers it was entered for."""
        if direction == "outgoing" and self.use_same_settings_for_outgoing:
            direction = "incoming"
        return encryption.decrypt_bound(
            getattr(self, f"{direction}_password_ciphertext"),
            record=f'email server profile "{self.name}" ({direction})',
        )

    def get_incoming_password(self) -> str:
        return self.get_bound_password("incoming").secret

    def get_outgoing_password(self) -> str:
        return self.get_bound_password("outgoing").secret

    def incoming_credentials(self) -> tuple[str, str]:
        return self.incoming_username, self.get_incoming_password()

    def outgoing_credentials(self) -> tuple[str, str]:
        if self.use_same_settings_for_outgoing:
            return self.incoming_credentials()
        return self.outgoing_username, self.get_outgoing_password()

    def bound_credentials(self, direction: str) -> tuple[str, encryption.BoundSecret]:
        """The profile's user name and bound password for `direction`."""
        if direction == "outgoing" and not self.use_same_settings_for_outgoing:
            return self.outgoing_username, self.get_bound_password("outgoing")
        return self.incoming_username, self.get_bound_password("incoming")

    # Validation ------------------------------------------------------------------

    def clean(self):
        self.name = normalize_name(self.name)
        self.normalize()
        self.bind_typed_passwords()
        errors: dict[str, list[str]] = {}

        def add(field, message):
            errors.setdefault(field, []).append(message)

        for field in ("incoming_username", "outgoing_username"):
            if has_control_characters(getattr(self, field)):
                add(field, control_character_message("The user name"))

        auths = [("incoming_auth", self.incoming_auth)]
        if not self.use_same_settings_for_outgoing:
            auths.append(("outgoing_auth", self.outgoing_auth))
        # P3
        for field, auth in auths:
            if auth in EXCHANGE_ONLY_AUTH and not self.is_exchange:
                add(field, f'"{AuthenticationMethod(auth).label}" is valid only for Exchange server types.')
            elif auth == AuthenticationMethod.OAUTH2 and self.is_exchange:
                add(
                    field,
                    '"OAuth 2.0 (Modern Authentication)" is valid only for Other (POP3/SMTP) and IMAP/SMTP '
                    'profiles; Exchange Online (Hybrid) uses it as "Server to Server Authentication".',
                )
            elif (
                self.server_type == ServerType.EXCHANGE_ONLINE
                and auth != AuthenticationMethod.SERVER_TO_SERVER
            ):
                add(field, 'Exchange Online (Hybrid) accepts only "Server to Server Authentication".')
        # P4
        if self.incoming_auth == AuthenticationMethod.ANONYMOUS:
            add("incoming_auth", '"Without Credentials (Anonymous)" is not valid for incoming connections.')
        # P2
        if self.incoming_auth == AuthenticationMethod.PROFILE_CREDENTIALS:
            if not self.incoming_username:
                add("incoming_username", "Enter the user name this profile authenticates with.")
            if not self.incoming_password_ciphertext:
                add("incoming_password", "Enter the password this profile authenticates with.")
        if (
            not self.use_same_settings_for_outgoing
            and self.outgoing_auth == AuthenticationMethod.PROFILE_CREDENTIALS
        ):
            if not self.outgoing_username:
                add("outgoing_username", "Enter the user name for outgoing connections.")
            if not self.outgoing_password_ciphertext:
                add("outgoing_password", "Enter the password for outgoing connections.")
        # P5
        if not self.is_exchange:
            if self.auto_discover:
                add("auto_discover", "Auto Discover Server Location applies only to Exchange server types.")
            if self.move_failed_to_undeliverable:
                add(
                    "move_failed_to_undeliverable",
                    "Move Failed Emails to Undeliverable Folder applies only to Exchange server types.",
                )
        if not self.auto_discover:
            for field in ("incoming_server", "outgoing_server"):
                value = getattr(self, field)
                label = self._meta.get_field(field).verbose_name
                if not value and self.is_exchange:
                    add(field, f"{label} is required unless the server location is discovered automatically.")
                elif not value:
                    add(field, f"{label} is required.")
                elif not self.locations_are_host_names and not is_https_url(value):
                    add(
                        field,
                        f"{label} must be an https URL for Exchange server types, e.g. https://mail.contoso.com/EWS/Exchange.asmx.",
                    )
                elif self.locations_are_host_names and not is_host_name(value):
                    add(
                        field,
                        f"{label} must be a host name (imap.contoso.com), without scheme, port or path.",
                    )
        if self.uses_oauth:
            self._clean_oauth(add)
        if errors:
            raise ValidationError(errors)

    def _clean_oauth(self, add) -> None:
        """P10: what an OAuth 2.0 profile needs to get a token."""
        from serverprofiles.oauth import service_account_key_problem, token_url_problem

        provider = self.oauth_provider
        if not provider:
            add("oauth_provider", "Choose the OAuth Provider that issues this profile's access tokens.")
            return
        if not self.oauth_client_id.strip():
            add("oauth_client_id", "Enter the Client ID of the application registered with the provider.")
        if provider == OAuthProvider.MICROSOFT:
            tenant = self.oauth_tenant_id.strip()
            if not tenant:
                add("oauth_tenant_id", "Enter the Tenant ID of your Microsoft 365 organisation.")
            elif not all(c.isascii() and (c.isalnum() or c in ".-") for c in tenant):
                add(
                    "oauth_tenant_id",
                    "Tenant ID is a directory ID (a GUID) or a domain name such as contoso.com.",
                )
        if provider == OAuthProvider.OTHER and not self.oauth_token_url.strip():
            add("oauth_token_url", "Enter the Token URL of the provider's token endpoint.")
        elif self.oauth_token_url.strip() and (problem := token_url_problem(self.oauth_token_url.strip())):
            add("oauth_token_url", problem)
        if provider == OAuthProvider.GOOGLE:
            if not self.oauth_service_account_key_ciphertext:
                add("oauth_service_account_key", "Enter the service account's JSON key.")
            elif self.typed_service_account_key and (
                problem := service_account_key_problem(self.typed_service_account_key)
            ):
                add("oauth_service_account_key", problem)
        elif not self.oauth_client_secret_ciphertext:
            add("oauth_client_secret", "Enter the client secret of the registered application.")
        if not self.oauth_effective_scope:
            add("oauth_scope", "Enter the scope to ask the token for.")

    def validate_constraints(self, exclude=None):
        # Every constraint in Meta mirrors a rule that clean() or a field validator has
        # already checked, with its message on the right field; Django would check each
        # one again with a query of its own. They stay as the database's backstop.
        return


class ConnectionSlot(models.Model):
    """One of a profile's Maximum Concurrent Connections, held by whoever connects.

    Every process on every host claims a slot here before it opens a connection to the
    profile's servers, so the cap holds across all of them (A6, section 9). A holder that
    dies keeps its slot only until the lease expires. See serverprofiles/connection_cap.py.
    """

    profile = models.ForeignKey(EmailServerProfile, on_delete=models.CASCADE, related_name="connection_slots")
    number = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=100, blank=True, default="")
    lease_expires_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()  # nobody edits slots: the cap's code claims and frees them
        constraints = [
            models.UniqueConstraint(fields=["profile", "number"], name="connection_slot_unique_number"),
            models.CheckConstraint(
                condition=Q(number__gte=1, number__lte=300), name="connection_slot_number_range"
            ),
            models.CheckConstraint(
                condition=Q(holder="", lease_expires_on__isnull=True)
                | (~Q(holder="") & Q(lease_expires_on__isnull=False)),
                name="connection_slot_held_with_lease",
            ),
        ]

    def __str__(self):
        return f"{self.profile_id} #{self.number}: {self.holder or 'free'}"


class ConnectionTestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a worker"
    RUNNING = "running", "Testing"
    FINISHED = "finished", "Finished"


class ProfileConnectionTest(models.Model):
    """A Test Connection of a profile form's values, run in the background.

    `values` holds the form's (possibly unsaved) field values; a password typed on the
    form is kept only encrypted, and only until the test has run. Only the user who asked
    may read the result.
    """

    profile = models.ForeignKey(
        EmailServerProfile, on_delete=models.CASCADE, null=True, blank=True, related_name="connection_tests"
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(
        max_length=10, choices=ConnectionTestStatus.choices, default=ConnectionTestStatus.PENDING
    )
    values = models.JSONField(default=dict)
    incoming_password_ciphertext = models.TextField(blank=True, default="")
    outgoing_password_ciphertext = models.TextField(blank=True, default="")
    oauth_client_secret_ciphertext = models.TextField(blank=True, default="")
    oauth_service_account_key_ciphertext = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    created_on = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_on = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()  # read through Test Connection's own permission check
        constraints = [
            _choices_check("status", ConnectionTestStatus, "connection_test_status_valid"),
            # A finished test keeps no password, not even encrypted.
            models.CheckConstraint(
                condition=~Q(status=ConnectionTestStatus.FINISHED)
                | (
                    Q(incoming_password_ciphertext="")
                    & Q(outgoing_password_ciphertext="")
                    & Q(oauth_client_secret_ciphertext="")
                    & Q(oauth_service_account_key_ciphertext="")
                ),
                name="connection_test_finished_without_password",
            ),
        ]

    def __str__(self):
        return f"Test Connection {self.pk} ({self.get_status_display()})"

    def __repr__(self):
        return f"<ProfileConnectionTest {self.pk}: {self.status}>"
