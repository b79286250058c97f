"""History entries (the admin's History page) for changes made by any entry point."""

import json

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

# Secret columns are named by their label in history, never shown by value.
_FIELD_LABELS = {
    "password_ciphertext": "Password",
    "incoming_password_ciphertext": "Password (incoming)",
    "outgoing_password_ciphertext": "Password (outgoing)",
}


def changed_fields(
    before: models.Model, after: models.Model, *, ignore=("version", "modified_on")
) -> list[str]:
    """Names of the concrete fields whose values differ between two versions of a row."""
    names = []
    for field in after._meta.concrete_fields:
        if field.name in ignore:
            continue
        if field.value_from_object(before) != field.value_from_object(after):
            names.append(field.name)
    return names


def field_labels(model: type[models.Model], names: list[str]) -> list[str]:
    labels = []
    for name in names:
        if name in _FIELD_LABELS:
            labels.append(_FIELD_LABELS[name])
        else:
            labels.append(str(model._meta.get_field(name).verbose_name))
    return labels


def _log(actor, obj, flag, message) -> None:
    if actor is None or actor.pk is None:
        return
    LogEntry.objects.create(
        user_id=actor.pk,
        content_type_id=ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=flag,
        change_message=json.dumps(message) if isinstance(message, list) else message,
    )


def log_addition(actor, obj, *, via: str = "") -> None:
    _log(actor, obj, ADDITION, f"Added (via {via})." if via else [{"added": {}}])


def log_change(actor, obj, fields: list[str], *, via: str = "") -> None:
    """Record which fields changed; `via` names a command, shown in the entry."""
    if not fields:
        return
    labels = field_labels(type(obj), fields)
    if via:
        _log(actor, obj, CHANGE, f"Changed {', '.join(labels)} (via {via}).")
    else:
        _log(actor, obj, CHANGE, [{"changed": {"fields": labels}}])


def log_message(actor, obj, text: str) -> None:
    """A change that is an action rather than an edit (approval, a test, activation)."""
    _log(actor, obj, CHANGE, text)


def log_deletion(actor, obj) -> None:
    _log(actor, obj, DELETION, "")
