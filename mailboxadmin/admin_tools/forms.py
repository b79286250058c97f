"""Form pieces the admin's change forms share: rule errors on the form, the version the
editor read, and write-only passwords."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError

from mailboxadmin.forms import DAMAGED_VERSION_MESSAGE


class ServiceModelForm(forms.ModelForm):
    """A ModelForm validated by the model's rules, whose errors always land on the form.

    A rule may name a field the form does not show (a read-only one, say); such an error
    is shown at the top of the form under the field's label instead of being lost (or,
    as Django would do, raising). `refused_by_service` carries the error a service
    raised on an earlier attempt to save this same submission (see ServiceModelAdmin).
    """

    refused_by_service: ValidationError | None = None
    password_labels = {"password": "Password"}

    def _post_clean(self):
        super()._post_clean()
        if self.refused_by_service is not None:
            self._update_errors(self.refused_by_service)

    def _update_errors(self, errors):
        if hasattr(errors, "error_dict"):
            placed: dict[str, list] = {}
            for name, messages in errors.error_dict.items():
                if name == NON_FIELD_ERRORS or name in self.fields:
                    placed.setdefault(name, []).extend(messages)
                    continue
                label = self._label(name)
                placed.setdefault(NON_FIELD_ERRORS, []).extend(
                    ValidationError(f"{label}: {message}") for item in messages for message in item
                )
            errors = ValidationError(placed)
        super()._update_errors(errors)

    def _label(self, name: str) -> str:
        if name in self.password_labels:
            return self.password_labels[name]
        try:
            return str(self._meta.model._meta.get_field(name).verbose_name)
        except FieldDoesNotExist:
            return name


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
            field, error = None, DAMAGED_VERSION_MESSAGE
        super().add_error(field, error)


class WriteOnlyPasswordsMixin(forms.Form):
    """Password inputs that never show a value, as on the browser forms: an empty input
    keeps the stored password, "Clear password" removes it, and the help text says
    whether one is set. Declare, per password, the input `<name>`, the checkbox
    `clear_<name>`, and in `write_only_passwords` how the model stores it:
    {"password": ("set_password", "password_ciphertext", "has_password")}.
    """

    write_only_passwords: dict[str, tuple[str, str, str]] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (_setter, _column, is_set) in self.write_only_passwords.items():
            if name not in self.fields:
                continue
            stored = self.instance.pk is not None and getattr(self.instance, is_set)
            self.fields[name].help_text = (
                "A password is set. Leave this empty to keep it." if stored else "No password is set."
            )

    def clean(self):
        cleaned = super().clean()
        for name, (setter, column, _is_set) in self.write_only_passwords.items():
            new = cleaned.get(name)
            clear = cleaned.get(f"clear_{name}")
            if new and clear:
                self.add_error(name, "Enter a new password or clear the stored one, not both.")
            elif new:
                getattr(self.instance, setter)(new)
            elif clear:
                setattr(self.instance, column, "")
        return cleaned


def password_field(label: str = "Password") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


def clear_password_field(label: str = "Clear password") -> forms.BooleanField:
    return forms.BooleanField(label=label, required=False)
