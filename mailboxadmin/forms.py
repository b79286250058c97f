"""Form pieces every page shares: stale-edit versions, write-only passwords, sections,
the date-time input."""

import json

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html

from mailboxadmin import ratelimit


class ServiceModelForm(forms.ModelForm):
    """A ModelForm whose instance is saved by a service, never by form.save().

    `sections` names the headed groups of fields the template renders, in order.
    Errors the model or a service reports for a field this form does not show are kept
    as errors of the whole form, with the field's label, instead of being lost.
    """

    sections: list[tuple[str, list[str]]] = []
    # When a field applies: {"field": {"other field": [values it must have]}}; for a select,
    # "other.attr" means the data-attr of its chosen option. app.js hides fields that do
    # not apply (their values are still sent; the model ignores or clears them), except
    # those in `off_when_hidden`, yes/no options that must read No when not offered: it
    # disables them, so the browser sends nothing. Without JavaScript all fields are shown
    # and validation decides.
    show_if: dict[str, dict[str, list[str]]] = {}
    off_when_hidden: set[str] = set()

    def add_error(self, field, error):
        if field is None and isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            remapped: dict[str, list] = {}
            for name, errors in error.error_dict.items():
                if name == NON_FIELD_ERRORS or name in self.fields:
                    remapped.setdefault(name, []).extend(errors)
                    continue
                label = self._label_for(name)
                for item in errors:
                    for message in item.messages:
                        remapped.setdefault(NON_FIELD_ERRORS, []).append(f"{label}: {message}")
            error = ValidationError(remapped)
        super().add_error(field, error)

    def _label_for(self, name: str) -> str:
        try:
            return str(self._meta.model._meta.get_field(name).verbose_name).capitalize()
        except FieldDoesNotExist:
            return name

    def section_list(self):
        """[(title, [bound fields])] for the template; fields not listed are left out."""
        sections = []
        for title, names in self.sections:
            fields = []
            for name in names:
                if name not in self.fields:
                    continue
                bound = self[name]
                bound.show_if = json.dumps(self.show_if[name]) if name in self.show_if else ""
                bound.off_when_hidden = name in self.off_when_hidden
                fields.append(bound)
            sections.append((title, fields))
        return sections

    def visible_fields_with_errors(self) -> list:
        """The error summary's links: each field in error, in the order of the page."""
        return [bound for _, fields in self.section_list() for bound in fields if bound.errors]

    def make_read_only(self) -> None:
        """For users who may view but not change: every input disabled, nothing accepted."""
        for field in self.fields.values():
            field.disabled = True


DAMAGED_VERSION_MESSAGE = (
    "This form was damaged on its way back (its record version is missing or wrong). "
    "Reload the page and make your changes again."
)
DAMAGED_VERSION_ERRORS = dict.fromkeys(
    ("required", "invalid", "min_value", "max_value"), DAMAGED_VERSION_MESSAGE
)


class VersionedModelForm(ServiceModelForm):
    """An edit form that carries the version of the row it was opened on.

    The services compare it with the row's current version and refuse the save when
    someone else saved in between (StaleEditError): no lost updates.
    """

    # The user never sees this field: its errors (a form that lost or mangled it) say
    # what to do instead of "Enter a whole number."
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0, error_messages=DAMAGED_VERSION_ERRORS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["version"].initial = self.instance.version


class WriteOnlyTextarea(forms.Textarea):
    """A text area always rendered empty, like a password input: a pasted key never
    comes back in the page, not even after a failed validation."""

    def format_value(self, value):
        return None


# A secret that is a whole file (a service account's JSON key), pasted into a text area.
WRITE_ONLY_KEY_ATTRS = {"rows": 4, "autocomplete": "off", "spellcheck": "false"}


class WriteOnlyPasswordField(forms.CharField):
    """A password input that is always rendered empty: the stored value never leaves."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)


def apply_write_only_password(
    form, *, field: str, clear_field: str, setter, clear, noun: str = "password"
) -> None:
    """Put a write-only password (or another secret, called `noun` in messages: "client
    secret") from `form` on its instance, in form.clean().

    Empty input keeps the stored password; the clear checkbox removes it. This runs
    before the model's own validation, so a rule that needs a password sees the new one.
    """
    password = form.cleaned_data.get(field)
    if password and form.cleaned_data.get(clear_field):
        form.add_error(clear_field, f"Enter a new {noun} or clear the stored one, not both.")
    elif password:
        setter(password)
    elif form.cleaned_data.get(clear_field):
        clear()


def password_help(has_password: bool, help_text: str, noun: str = "password") -> str:
    """A write-only input's help: whether a secret is stored, called what it is ("A client
    secret is set."; an OAuth client secret or key is no password)."""
    if has_password:
        return f"A {noun} is set. {help_text} Leave empty to keep it."
    return f"No {noun} is set. {help_text}"


class DateTimeLocalInput(forms.DateTimeInput):
    """The browser's own date and time picker, given the value in the format it reads."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%dT%H:%M")


class UserPickerInput(forms.TextInput):
    """A user name input that suggests users as one types: user_picker.js makes it a
    combobox (WAI-ARIA: arrow keys, Enter, Escape) whose listbox it fills from
    /users/autocomplete/. Without the script it is a plain text input."""

    def __init__(self, attrs=None):
        super().__init__({"autocomplete": "off", "spellcheck": "false", **(attrs or {})})

    def render(self, name, value, attrs=None, renderer=None):
        attrs = dict(attrs or {})
        listbox = f"{attrs.get('id') or 'id_' + name}_listbox"
        attrs.update(**{"data-user-picker": reverse("users:autocomplete"), "data-listbox": listbox})
        return format_html(
            '<div class="picker">{}<ul id="{}" class="picker__listbox" role="listbox" hidden></ul></div>'
            '<script src="{}" defer></script>',
            super().render(name, value, attrs, renderer),
            listbox,
            static("mailboxadmin/user_picker.js"),
        )


class UsernameChoiceField(forms.ModelChoiceField):
    """Choose a user by user name, with suggestions: a drop-down of every user does not scale."""

    widget = UserPickerInput
    default_error_messages = {"invalid_choice": "There is no user with this user name."}

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", get_user_model().objects.all())
        kwargs.setdefault("to_field_name", "username")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, int):  # a primary key from model_to_dict()
            user = get_user_model().objects.filter(pk=value).only("username").first()
            return user.username if user else ""
        return super().prepare_value(value)


class RateLimitedAuthenticationForm(AuthenticationForm):
    """Django's login form, limited by mailboxadmin.ratelimit: a refused attempt says
    how long to wait, and its password is not checked."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        if not (username and self.cleaned_data.get("password")):
            return super().clean()
        address = ratelimit.client_address(self.request)
        refusal = ratelimit.login_attempt_start(username, address)
        if refusal is not None:
            raise ValidationError(refusal.message, code="too_many_attempts")
        cleaned = super().clean()
        ratelimit.login_attempt_succeeded(username, address)
        return cleaned
