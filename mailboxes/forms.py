"""Browser forms for mailboxes, users, queues and the organisation's email settings.

Forms only gather input: every rule is the model's (clean() and constraints) and every
write is a service's. A form's help texts explain each field in one sentence.
"""

from django import forms
from django.utils import formats, timezone

from mailboxadmin.forms import (
    DateTimeLocalInput,
    UsernameChoiceField,
    VersionedModelForm,
    WriteOnlyPasswordField,
    apply_write_only_password,
    password_help,
)
from mailboxadmin.validators import time_zone_names
from mailboxes.models import (
    ActMethod,
    IncomingMethod,
    Mailbox,
    OrganizationSettings,
    OutgoingMethod,
    Queue,
    User,
)
from mailboxes.models.choices import ACT_METHODS_NEEDING_CALENDARS, act_method_allowed
from mailboxes.models.mailboxes import allowed_methods
from serverprofiles.models import EmailServerProfile


class ServerProfileSelect(forms.Select):
    """A profile drop-down whose options say how each profile authenticates and whether
    its servers carry calendars and contacts.

    app.js reads `data-user-credentials` to offer the Credentials fields only for profiles
    that use "Credentials Specified by a User or Queue" (M7); act_method.js reads
    `data-calendars` to offer Server-Side Synchronization for Appointments, Contacts, and
    Tasks only with an Exchange profile (M8). The server's validation decides either way.
    """

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        profile = getattr(value, "instance", None)
        if profile is not None:
            option["attrs"]["data-user-credentials"] = "true" if profile.uses_user_credentials else "false"
            option["attrs"]["data-calendars"] = (
                "true" if act_method_allowed(ActMethod.SERVER_SIDE_SYNC, profile) else "false"
            )
        return option


class ActMethodSelect(forms.Select):
    """Appointments, Contacts, and Tasks: the methods M8 allows with the chosen profile.

    `profile_field` names the form's profile drop-down (act_method.js follows it when the
    user picks another profile); `profile` is the profile the page shows. A method the
    profile does not allow is rendered disabled and hidden, unless it is the value shown
    (the server's error then says why). A value sent anyway is refused by clean().
    """

    def __init__(self, *args, profile_field: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.profile_field = profile_field
        self.profile = None

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"]["data-profile-field"] = self.profile_field
        return context

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in ACT_METHODS_NEEDING_CALENDARS:
            option["attrs"]["data-needs-calendars"] = "true"
            if not selected and not act_method_allowed(value, self.profile):
                option["attrs"].update(disabled=True, hidden=True)
        return option


def _profile_field(**kwargs) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=EmailServerProfile.objects.order_by("name"), widget=ServerProfileSelect, **kwargs
    )


def _read_only(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(label=label, help_text=help_text, required=False, disabled=True)


# What each kind of mailbox may choose, said where the choice is made (M3, M4, M9, M10).
_KIND_HELP = {
    Mailbox.Kind.FORWARD: {
        "incoming_method": "A forward mailbox receives with None or Server-Side Synchronization "
        "or Email Router.",
        "outgoing_method": "A forward mailbox never sends: its Outgoing Email is None.",
        "act_method": "A forward mailbox does not synchronise these: None.",
        "owner": "The user responsible for this forward mailbox; by default whoever created it.",
    },
    Mailbox.Kind.QUEUE: {
        "incoming_method": "A queue mailbox receives with None, Server-Side Synchronization or "
        "Email Router, or Forward Mailbox.",
        "outgoing_method": "A queue mailbox sends with None or Server-Side Synchronization or Email Router.",
        "act_method": "A queue mailbox does not synchronise these: None.",
        "owner": "A queue mailbox's owner is its queue's owner; change it on the queue.",
    },
    Mailbox.Kind.USER: {
        "owner": "A user mailbox belongs to its user.",
    },
}


class MailboxForm(VersionedModelForm):
    """The mailbox form of every kind: its four sections, as the CRM lays them out."""

    owner = UsernameChoiceField(label="Owner", required=False)
    password = WriteOnlyPasswordField(label="Password")
    clear_password = forms.BooleanField(
        label="Clear password", required=False, help_text="Remove the stored password on save."
    )
    server_profile = _profile_field(
        label="Server Profile",
        required=False,
        help_text=Mailbox._meta.get_field("server_profile").help_text,
    )
    regarding = _read_only(
        "Regarding", "The user or queue this mailbox belongs to; empty for a forward mailbox."
    )
    is_forward = _read_only(
        "Is Forward Mailbox",
        "A forward mailbox receives copies of other mailboxes' email; this is set when it is created.",
    )
    incoming_status = _read_only(
        "Incoming Email Status", "The result of the last test of receiving email (Test & Enable)."
    )
    outgoing_status = _read_only(
        "Outgoing Email Status", "The result of the last test of sending email (Test & Enable)."
    )
    act_status = _read_only(
        "Appointments, Contacts, and Tasks Status",
        "The result of the last test of synchronising appointments, contacts and tasks.",
    )
    test_completed_on = _read_only("Mailbox Test Completed On", "When the last Test & Enable finished.")

    sections = [
        ("General", ["name", "owner", "email", "delete_after_processing", "regarding", "is_forward"]),
        ("Credentials", ["allow_credentials", "username", "password", "clear_password"]),
        (
            "Synchronization Method",
            ["server_profile", "incoming_method", "outgoing_method", "act_method", "process_email_after"],
        ),
        (
            "Configuration Test Results",
            ["incoming_status", "outgoing_status", "act_status", "test_completed_on"],
        ),
    ]

    show_if = {
        "allow_credentials": {"server_profile.user-credentials": ["true"]},
        **{
            name: {"server_profile.user-credentials": ["true"], "allow_credentials": ["true"]}
            for name in ("username", "password", "clear_password")
        },
    }
    off_when_hidden = {"allow_credentials"}

    class Meta:
        model = Mailbox
        fields = [
            "name",
            "owner",
            "email",
            "delete_after_processing",
            "allow_credentials",
            "username",
            "server_profile",
            "incoming_method",
            "outgoing_method",
            "act_method",
            "process_email_after",
        ]
        widgets = {
            "process_email_after": DateTimeLocalInput,
            "act_method": ActMethodSelect(profile_field="server_profile"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        mailbox = self.instance
        if mailbox.server_profile_id:
            self.fields["act_method"].widget.profile = mailbox.server_profile
        self.had_password = mailbox.has_password
        self.fields["password"].help_text = password_help(
            self.had_password, "Stored encrypted; it is never shown."
        )
        self.initial["owner"] = mailbox.owner if mailbox.owner_id else None
        for name, text in _KIND_HELP.get(mailbox.kind, {}).items():
            self.fields[name].help_text = text
        if mailbox.kind != Mailbox.Kind.FORWARD:
            self.fields["owner"].disabled = True
        for name in ("incoming_method", "outgoing_method", "act_method"):
            allowed = allowed_methods(mailbox.kind, name)
            if allowed is not None:
                # Only the drop-down: a value sent anyway reaches the model's clean(),
                # which refuses it with the rule's own message.
                widget = self.fields[name].widget
                widget.choices = [(value, label) for value, label in widget.choices if value in allowed]
        self.fields["username"].widget.attrs["autocomplete"] = "off"

        regarding = mailbox.regarding
        self.initial.update(
            regarding=str(regarding) if regarding is not None else "",
            is_forward="Yes" if mailbox.is_forward else "No",
            incoming_status=mailbox.get_incoming_status_display(),
            outgoing_status=mailbox.get_outgoing_status_display(),
            act_status=mailbox.get_act_status_display(),
            test_completed_on=formats.date_format(
                timezone.localtime(mailbox.test_completed_on), "DATETIME_FORMAT"
            )
            if mailbox.test_completed_on
            else "",
        )

    def clean(self):
        cleaned = super().clean()
        _offer_act_methods_with(self, "server_profile", "act_method")
        apply_write_only_password(
            self,
            field="password",
            clear_field="clear_password",
            setter=self.instance.set_password,
            clear=lambda: setattr(self.instance, "password_ciphertext", ""),
        )
        return cleaned


def _offer_act_methods_with(form: forms.Form, profile_field: str, act_field: str) -> None:
    """After a refused save, the page shows the profile just chosen: offer its methods."""
    if profile_field not in form.errors:
        form.fields[act_field].widget.profile = form.cleaned_data.get(profile_field)


class ForwardMailboxForm(MailboxForm):
    """New Forward Mailbox: the same form, for a mailbox that does not exist yet."""

    version = None


class UserForm(VersionedModelForm):
    sections = [("General", ["username", "full_name", "email", "is_active"])]

    class Meta:
        model = User
        fields = ["username", "full_name", "email", "is_active"]
        labels = {"username": "User Name", "is_active": "Active"}
        help_texts = {
            "username": "The name this person signs in with: letters, digits and @ . + - _ only.",
            "full_name": "The person's name as colleagues know it.",
            "is_active": "An inactive user cannot sign in, and their mailbox is inactive too.",
        }


class QueueForm(VersionedModelForm):
    owner = UsernameChoiceField(
        label="Owner",
        help_text="The user name of the person responsible for this queue (type to find them by "
        "name or address); by default whoever creates the queue.",
    )

    sections = [
        ("General", ["name", "queue_type", "email", "owner", "description"]),
        ("Email Settings", ["convert_incoming", "is_active"]),
    ]

    class Meta:
        model = Queue
        fields = ["name", "queue_type", "email", "owner", "description", "convert_incoming", "is_active"]
        help_texts = {
            "name": "The name shown in lists of queues.",
            "queue_type": "Public queues are visible to everyone; private queues only to their members.",
            "description": "What this queue is for.",
            "convert_incoming": "Which incoming email messages become activities of this queue.",
            "is_active": "An inactive queue's mailbox is inactive too: it is neither tested nor processed.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.owner_id:
            self.initial["owner"] = self.instance.owner


class OrganizationSettingsForm(VersionedModelForm):
    default_server_profile = _profile_field(
        label="Server Profile",
        required=False,
        help_text=OrganizationSettings._meta.get_field("default_server_profile").help_text,
    )

    sections = [
        (
            "Default Email Settings for New Mailboxes",
            ["default_server_profile", "default_incoming", "default_outgoing", "default_act"],
        ),
        ("Approval", ["approval_required_for_users", "approval_required_for_queues"]),
        ("Times", ["time_zone"]),
        ("Mail Processing", ["disable_after_failures"]),
    ]

    class Meta:
        model = OrganizationSettings
        fields = [
            "default_server_profile",
            "default_incoming",
            "default_outgoing",
            "default_act",
            "approval_required_for_users",
            "approval_required_for_queues",
            "time_zone",
            "disable_after_failures",
        ]
        widgets = {
            "time_zone": forms.Select(choices=lambda: [(name, name) for name in time_zone_names()]),
            "default_act": ActMethodSelect(profile_field="default_server_profile"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_act"].widget.profile = self.instance.default_server_profile

    def clean(self):
        cleaned = super().clean()
        _offer_act_methods_with(self, "default_server_profile", "default_act")
        return cleaned


class NewUserForm(UserForm):
    version = None


class NewQueueForm(QueueForm):
    version = None


# The choices of Set Server Profile… and Set Delivery Methods…, in the admin and the pages.


class SetServerProfileForm(forms.Form):
    server_profile = forms.ModelChoiceField(
        EmailServerProfile.objects.order_by("name"),
        label="Server Profile",
        help_text="Every selected mailbox gets this profile; its test results are reset to Not Run.",
    )


def _unchanged_or(choices) -> list[tuple[str, str]]:
    return [("", "— leave unchanged —"), *choices]


class SetDeliveryMethodsForm(forms.Form):
    incoming_method = forms.ChoiceField(
        label="Incoming Email", choices=_unchanged_or(IncomingMethod.choices), required=False
    )
    outgoing_method = forms.ChoiceField(
        label="Outgoing Email", choices=_unchanged_or(OutgoingMethod.choices), required=False
    )
    act_method = forms.ChoiceField(
        label="Appointments, Contacts, and Tasks", choices=_unchanged_or(ActMethod.choices), required=False
    )

    def clean(self):
        cleaned = super().clean()
        if not any(cleaned.get(name) for name in self.fields):
            raise forms.ValidationError("Choose at least one delivery method to change.")
        return cleaned

    def methods(self) -> dict[str, str | None]:
        return {name: self.cleaned_data[name] or None for name in self.fields}
