"""The email server profile form: every rule is the model's (P1-P9), every write a service's."""

from django import forms

from mailboxadmin.forms import (
    DateTimeLocalInput,
    UsernameChoiceField,
    VersionedModelForm,
    WriteOnlyPasswordField,
    apply_write_only_password,
    password_help,
)
from serverprofiles.models import EXCHANGE_TYPES, AuthenticationMethod, EmailServerProfile

_EXCHANGE = [str(t) for t in EXCHANGE_TYPES]
_NOT_EXCHANGE = ["", "pop3-smtp", "imap-smtp"]
_PROFILE_CREDENTIALS = [AuthenticationMethod.PROFILE_CREDENTIALS.value]


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
            name: {"server_type": _NOT_EXCHANGE}
            for name in ("incoming_port", "incoming_ssl", "outgoing_port", "outgoing_ssl")
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
        for name in ("incoming_username", "outgoing_username"):
            self.fields[name].widget.attrs["autocomplete"] = "off"

    def clean(self):
        cleaned = super().clean()
        profile = self.instance
        apply_write_only_password(
            self,
            field="incoming_password",
            clear_field="clear_incoming_password",
            setter=profile.set_incoming_password,
            clear=lambda: setattr(profile, "incoming_password_ciphertext", ""),
        )
        apply_write_only_password(
            self,
            field="outgoing_password",
            clear_field="clear_outgoing_password",
            setter=profile.set_outgoing_password,
            clear=lambda: setattr(profile, "outgoing_password_ciphertext", ""),
        )
        return cleaned


class NewEmailServerProfileForm(EmailServerProfileForm):
    version = None
