"""The email server profile form: every rule is the model's (P1-P9), every write a service's."""

from django import forms

from mailboxadmin.forms import (
    WRITE_ONLY_KEY_ATTRS,
    DateTimeLocalInput,
    UsernameChoiceField,
    VersionedModelForm,
    WriteOnlyPasswordField,
    WriteOnlyTextarea,
    apply_write_only_password,
    password_help,
)
from serverprofiles.models import (
    EXCHANGE_ONLY_AUTH,
    EXCHANGE_TYPES,
    AuthenticationMethod,
    EmailServerProfile,
    OAuthProvider,
    ServerType,
)

_EXCHANGE = [str(t) for t in EXCHANGE_TYPES]
_NOT_EXCHANGE = ["", "pop3-smtp", "imap-smtp"]
_PROFILE_CREDENTIALS = [AuthenticationMethod.PROFILE_CREDENTIALS.value]
# SPEC 7: OAuth is the oauth2 choice on POP3/IMAP profiles, Server to Server
# Authentication on Exchange Online (the form offers no other combination, see
# allowed_server_types).
_OAUTH = {
    "incoming_auth": [AuthenticationMethod.OAUTH2.value, AuthenticationMethod.SERVER_TO_SERVER.value],
    "server_type": ["pop3-smtp", "imap-smtp", ServerType.EXCHANGE_ONLINE.value],
}


def allowed_server_types(auth: str) -> list[str]:
    """P3: the server types an authentication choice is valid for."""
    if auth == AuthenticationMethod.SERVER_TO_SERVER:
        return _EXCHANGE
    if auth in EXCHANGE_ONLY_AUTH:
        return [t for t in _EXCHANGE if t != ServerType.EXCHANGE_ONLINE]
    if auth == AuthenticationMethod.OAUTH2:
        return ["pop3-smtp", "imap-smtp"]
    return [t for t in ServerType.values if t != ServerType.EXCHANGE_ONLINE]


# The OAuth secrets are write-only like passwords, but are no password (SPEC 7): their
# inputs say what they are, here and in the admin.
SECRET_NOUNS = {"oauth_client_secret": "client secret", "oauth_service_account_key": "service account key"}
_SECRET_STORED = "Stored encrypted; it is never shown, and is sent only to the Token URL it was entered for."
SECRET_HELP = {
    "oauth_client_secret": _SECRET_STORED,
    "oauth_service_account_key": f"The service account's JSON key file, pasted whole. {_SECRET_STORED}",
}


class AuthenticationSelect(forms.Select):
    """Authenticate Using, each option saying the server types it is valid for (P3):
    profile-form.js offers only those of the chosen type; the model decides either way."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value:
            option["attrs"]["data-server-types"] = " ".join(allowed_server_types(str(value)))
        return option


class EmailServerProfileForm(VersionedModelForm):
    owner = UsernameChoiceField(
        label="Owner",
        required=False,
        help_text="The user name of the person who receives alerts about this profile "
        "(type to find them by name or address).",
    )
    make_default = forms.BooleanField(
        label="Set as default profile for new mailboxes",
        required=False,
        help_text="New users' and queues' mailboxes get this profile; at most one profile is the default.",
    )
    incoming_password = WriteOnlyPasswordField(label="Password (incoming)")
    clear_incoming_password = forms.BooleanField(
        label="Clear password (incoming)", required=False, help_text="Remove the stored password on save."
    )
    outgoing_password = WriteOnlyPasswordField(label="Password (outgoing)")
    clear_outgoing_password = forms.BooleanField(
        label="Clear password (outgoing)", required=False, help_text="Remove the stored password on save."
    )
    oauth_client_secret = WriteOnlyPasswordField(label="Client Secret")
    clear_oauth_client_secret = forms.BooleanField(
        label="Clear client secret", required=False, help_text="Remove the stored client secret on save."
    )
    oauth_service_account_key = WriteOnlyPasswordField(
        label="Service Account Key",
        widget=WriteOnlyTextarea(attrs=WRITE_ONLY_KEY_ATTRS),
    )
    clear_oauth_service_account_key = forms.BooleanField(
        label="Clear service account key", required=False, help_text="Remove the stored key on save."
    )

    sections = [
        ("General", ["name", "description", "server_type", "owner", "make_default"]),
        (
            "Locations and ports",
            [
                "auto_discover",
                "incoming_server",
                "incoming_port",
                "incoming_ssl",
                "outgoing_server",
                "outgoing_port",
                "outgoing_ssl",
            ],
        ),
        (
            "Authentication",
            [
                "incoming_auth",
                "incoming_username",
                "incoming_password",
                "clear_incoming_password",
                "use_same_settings_for_outgoing",
                "outgoing_auth",
                "outgoing_username",
                "outgoing_password",
                "clear_outgoing_password",
                "allow_unencrypted_credentials",
            ],
        ),
        (
            "OAuth 2.0",
            [
                "oauth_provider",
                "oauth_tenant_id",
                "oauth_token_url",
                "oauth_client_id",
                "oauth_client_secret",
                "clear_oauth_client_secret",
                "oauth_service_account_key",
                "clear_oauth_service_account_key",
                "oauth_scope",
            ],
        ),
        (
            "Advanced",
            [
                "process_email_from",
                "min_polling_interval",
                "max_connections",
                "move_failed_to_undeliverable",
                "timeout_ms",
            ],
        ),
    ]
    # The fields that apply to the chosen server type and authentication (P2, P5); the
    # model's normalize() clears what does not apply, whatever the browser sends.
    show_if = {
        "auto_discover": {"server_type": _EXCHANGE},
        "move_failed_to_undeliverable": {"server_type": _EXCHANGE},
        "incoming_server": {"auto_discover": ["false"]},
        "outgoing_server": {"auto_discover": ["false"]},
        **{
            name: {"server_type": [*_NOT_EXCHANGE, ServerType.EXCHANGE_ONLINE.value]}
            for name in ("incoming_port", "incoming_ssl", "outgoing_port", "outgoing_ssl")
        },
        "oauth_provider": {**_OAUTH, "server_type": ["pop3-smtp", "imap-smtp"]},
        "oauth_client_id": _OAUTH,
        "oauth_scope": _OAUTH,
        "oauth_tenant_id": {**_OAUTH, "oauth_provider": ["microsoft"]},
        "oauth_token_url": _OAUTH,
        **{
            name: {**_OAUTH, "oauth_provider": ["microsoft", "other", ""]}
            for name in ("oauth_client_secret", "clear_oauth_client_secret")
        },
        **{
            name: {**_OAUTH, "oauth_provider": ["google"]}
            for name in ("oauth_service_account_key", "clear_oauth_service_account_key")
        },
        **{
            name: {"incoming_auth": _PROFILE_CREDENTIALS}
            for name in ("incoming_username", "incoming_password", "clear_incoming_password")
        },
        "outgoing_auth": {"use_same_settings_for_outgoing": ["false"]},
        **{
            name: {"use_same_settings_for_outgoing": ["false"], "outgoing_auth": _PROFILE_CREDENTIALS}
            for name in ("outgoing_username", "outgoing_password", "clear_outgoing_password")
        },
    }
    off_when_hidden = {"auto_discover", "move_failed_to_undeliverable"}

    class Meta:
        model = EmailServerProfile
        fields = [
            "name",
            "description",
            "server_type",
            "owner",
            "auto_discover",
            "incoming_server",
            "incoming_port",
            "incoming_ssl",
            "outgoing_server",
            "outgoing_port",
            "outgoing_ssl",
            "incoming_auth",
            "incoming_username",
            "use_same_settings_for_outgoing",
            "outgoing_auth",
            "outgoing_username",
            "allow_unencrypted_credentials",
            "oauth_provider",
            "oauth_tenant_id",
            "oauth_token_url",
            "oauth_client_id",
            "oauth_scope",
            "process_email_from",
            "min_polling_interval",
            "max_connections",
            "move_failed_to_undeliverable",
            "timeout_ms",
        ]
        help_texts = {
            "name": "A unique name for this profile, shown when choosing a mailbox's server profile.",
            "description": "What this profile is for.",
            "incoming_username": 'The user name this profile signs in with ("Credentials Specified '
            'in Email Server Profile").',
            "outgoing_username": "The user name for outgoing connections, when they authenticate "
            "differently from incoming ones.",
        }
        widgets = {
            "incoming_auth": AuthenticationSelect,
            "outgoing_auth": AuthenticationSelect,
            "description": forms.Textarea(attrs={"rows": 2}),
            "process_email_from": DateTimeLocalInput,
        }

    def __init__(self, *args, can_set_default: bool = True, can_allow_unencrypted: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # SPEC 9: only a System Administrator decides that passwords may go in plain text;
        # for anyone else the stored value is kept whatever the browser sends.
        self.fields["allow_unencrypted_credentials"].disabled = not can_allow_unencrypted
        profile = self.instance
        if profile.owner_id:
            self.initial["owner"] = profile.owner
        self.initial["make_default"] = profile.pk is not None and profile.is_default
        # The default profile is an organisation email setting (P7): only those who may
        # change the settings may change which profile it is.
        self.fields["make_default"].disabled = not can_set_default
        self.fields["incoming_password"].help_text = password_help(
            profile.has_incoming_password, "Stored encrypted; it is never shown."
        )
        self.fields["outgoing_password"].help_text = password_help(
            bool(profile.outgoing_password_ciphertext), "Stored encrypted; it is never shown."
        )
        for name, noun in SECRET_NOUNS.items():
            stored = bool(getattr(profile, f"{name}_ciphertext"))
            self.fields[name].help_text = password_help(stored, SECRET_HELP[name], noun)
        for name in ("incoming_username", "outgoing_username", "oauth_client_id", "oauth_tenant_id"):
            self.fields[name].widget.attrs["autocomplete"] = "off"
        if profile.pk is None and not self.is_bound:
            # SPEC 7: Exchange Online means Microsoft's app-only OAuth.
            self.initial.setdefault("oauth_provider", OAuthProvider.MICROSOFT)

    def clean(self):
        cleaned = super().clean()
        profile = self.instance
        for field, setter, column in (
            ("incoming_password", profile.set_incoming_password, "incoming_password_ciphertext"),
            ("outgoing_password", profile.set_outgoing_password, "outgoing_password_ciphertext"),
            ("oauth_client_secret", profile.set_oauth_client_secret, "oauth_client_secret_ciphertext"),
            (
                "oauth_service_account_key",
                profile.set_oauth_service_account_key,
                "oauth_service_account_key_ciphertext",
            ),
        ):
            apply_write_only_password(
                self,
                field=field,
                clear_field=f"clear_{field}",
                setter=setter,
                clear=lambda column=column: setattr(profile, column, ""),
                noun=SECRET_NOUNS.get(field, "password"),
            )
        return cleaned


class NewEmailServerProfileForm(EmailServerProfileForm):
    version = None
