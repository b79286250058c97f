"""Forms of the mailbox admin: the change forms and the intermediate pages of bulk actions."""

from django import forms

from mailboxadmin.admin_tools import (
    ServiceModelForm,
    VersionedFormMixin,
    WriteOnlyPasswordsMixin,
    clear_password_field,
    password_field,
)
from mailboxes.models import ActMethod, IncomingMethod, Mailbox, OutgoingMethod
from serverprofiles.models import EmailServerProfile


class MailboxForm(WriteOnlyPasswordsMixin, ServiceModelForm):
    password = password_field()
    write_only_passwords = {"password": ("set_password", "password_ciphertext", "has_password")}

    class Meta:
        model = Mailbox
        fields = "__all__"


class ForwardMailboxAddForm(MailboxForm):
    """New forward mailbox: the only kind created on its own (M1)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.kind = Mailbox.Kind.FORWARD


class MailboxChangeForm(VersionedFormMixin, MailboxForm):
    clear_password = clear_password_field()


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
