"""Form pieces the admin's change forms share with the browser forms (mailboxadmin.forms):
rule errors on the form, the version the editor read, and write-only passwords."""

from django import forms
from django.core.exceptions import ValidationError

from mailboxadmin import forms as shared


class ServiceModelForm(shared.ServiceModelForm):
    """The browser forms' ServiceModelForm (a rule's error on a field the form does not
    show lands at the top, under the field's label), plus `refused_by_service`: the
    error a service raised on an earlier attempt to save this same submission (see
    ServiceModelAdmin), shown on the form."""

    refused_by_service: ValidationError | None = None

    def _post_clean(self):
        super()._post_clean()
        if self.refused_by_service is not None:
            self.add_error(None, self.refused_by_service)


class VersionedFormMixin(forms.Form):
    """The version of the record the editor read, sent back with the form (a hidden
    `expected_version`; list it in the fieldsets); the save service refuses the edit
    (StaleEditError) if the record has moved on since."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["expected_version"].initial = self.instance.version
        else:
            del self.fields["expected_version"]

    def add_error(self, field, error):
        # The admin hides a hidden input's row, and the row's errors with it: a form that
        # lost or mangled its version is told above the form, with what to do.
        if field == "expected_version":
            field, error = None, shared.DAMAGED_VERSION_MESSAGE
        super().add_error(field, error)


class WriteOnlyPasswordsMixin(forms.Form):
    """Password inputs that never show a value, exactly as on the browser forms: an empty
    input keeps the stored password, "Clear password" removes it, and the help text says
    whether one is set. Declare, per password, the input `<name>`, the checkbox
    `clear_<name>`, and in `write_only_passwords` how the model stores it:
    {"password": ("set_password", "password_ciphertext", "has_password")}. A secret that
    is no password is called what it is in `write_only_nouns` ({"oauth_client_secret":
    "client secret"}), its help in `write_only_help`.
    """

    write_only_passwords: dict[str, tuple[str, str, str]] = {}
    write_only_nouns: dict[str, str] = {}
    write_only_help: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (_setter, _column, is_set) in self.write_only_passwords.items():
            if name not in self.fields:
                continue
            stored = self.instance.pk is not None and getattr(self.instance, is_set)
            self.fields[name].help_text = shared.password_help(
                stored,
                self.write_only_help.get(name, "Stored encrypted; it is never shown."),
                self.write_only_nouns.get(name, "password"),
            )
            if not stored:
                # Not on the page (nothing to clear): a posted value would raise an error
                # on a field nobody can see.
                self.fields.pop(f"clear_{name}", None)

    def clean(self):
        cleaned = super().clean()
        for name, (setter, column, _is_set) in self.write_only_passwords.items():
            shared.apply_write_only_password(
                self,
                field=name,
                clear_field=f"clear_{name}",
                setter=getattr(self.instance, setter),
                clear=lambda column=column: setattr(self.instance, column, ""),
                noun=self.write_only_nouns.get(name, "password"),
            )
        return cleaned


def password_field(label: str = "Password") -> forms.CharField:
    return shared.WriteOnlyPasswordField(label=label)


def key_file_field(label: str) -> forms.CharField:
    """A write-only secret that is a whole file (a JSON key), pasted into a text area."""
    return shared.WriteOnlyPasswordField(
        label=label, widget=shared.WriteOnlyTextarea(attrs=shared.WRITE_ONLY_KEY_ATTRS)
    )


def clear_password_field(label: str = "Clear password") -> forms.BooleanField:
    return forms.BooleanField(label=label, required=False)
