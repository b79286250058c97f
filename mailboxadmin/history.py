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


def _entry(actor, obj, flag, message) -> LogEntry:
    return LogEntry(
        user_id=actor.pk,
        content_type_id=ContentType.objects.get_for_model(obj, for_concrete_model=False).pk,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=flag,
        change_message=json.dumps(message) if isinstance(message, list) else message,
    )


def _log(actor, obj, flag, message) -> None:
    if actor is None or actor.pk is None:
        return
    _entry(actor, obj, flag, message).save()


def _addition_message(via: str):
    return f"Added (via {via})." if via else [{"added": {}}]


def _change_message(model: type[models.Model], fields: list[str], via: str):
    labels = field_labels(model, fields)
    if via:
        return f"Changed {', '.join(labels)} (via {via})."
    return [{"changed": {"fields": labels}}]


def log_addition(actor, obj, *, via: str = "") -> None:
    _log(actor, obj, ADDITION, _addition_message(via))


def log_change(actor, obj, fields: list[str], *, via: str = "") -> None:
    """Record which fields changed; `via` names a command, shown in the entry."""
    if not fields:
        return
    _log(actor, obj, CHANGE, _change_message(type(obj), fields, via))


def addition_entries(actor, objs, *, via: str = "") -> list[LogEntry]:
    """The entries log_addition writes for each of `objs`, unsaved, for a bulk insert."""
    if actor is None or actor.pk is None:
        return []
    message = _addition_message(via)
    return [_entry(actor, obj, ADDITION, message) for obj in objs]


def change_entries(actor, changes, *, via: str = "") -> list[LogEntry]:
    """The entries log_change writes for (obj, changed field names) pairs, unsaved."""
    if actor is None or actor.pk is None:
        return []
    messages = {}  # many rows share a handful of messages
    entries = []
    for obj, fields in changes:
        if not fields:
            continue
        key = (type(obj), tuple(fields))
        if key not in messages:
            messages[key] = _change_message(type(obj), fields, via)
        entries.append(_entry(actor, obj, CHANGE, messages[key]))
    return entries


def log_message(actor, obj, text: str) -> None:
    """A change that is an action rather than an edit (approval, a test, activation)."""
    _log(actor, obj, CHANGE, text)


def log_deletion(actor, obj) -> None:
    _log(actor, obj, DELETION, "")
