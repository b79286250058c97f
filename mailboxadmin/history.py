"""History entries (the admin's History page) for changes made by any entry point."""

import json
from functools import cache
from operator import attrgetter

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

# Secret columns are named by their label in history, never shown by value.
_FIELD_LABELS = {
    "password_ciphertext": "Password",
    "incoming_password_ciphertext": "Password (incoming)",
    "outgoing_password_ciphertext": "Password (outgoing)",
    "oauth_client_secret_ciphertext": "Client Secret",
    "oauth_service_account_key_ciphertext": "Service Account Key",
}


def changed_fields(
    before: models.Model, after: models.Model, *, ignore=("version", "modified_on")
) -> list[str]:
    """Names of the concrete fields whose values differ between two versions of a row."""
    # The attribute is what value_from_object() reads for every concrete field; read all
    # at once, as bulk saves compare thousands of rows.
    names, values = _concrete_values(type(after))
    return [
        name
        for name, old, new in zip(names, values(before), values(after), strict=True)
        if old != new and name not in ignore
    ]


@cache
def _concrete_values(model: type[models.Model]) -> tuple[tuple[str, ...], attrgetter]:
    fields = model._meta.concrete_fields
    getter = attrgetter(*(field.attname for field in fields))
    if len(fields) == 1:  # attrgetter of one name gives the value, not a tuple
        return (fields[0].name,), lambda obj: (getter(obj),)
    return tuple(field.name for field in fields), getter


def field_labels(model: type[models.Model], names: list[str]) -> list[str]:
    labels = []
    for name in names:
        if name in _FIELD_LABELS:
            labels.append(_FIELD_LABELS[name])
        else:
            labels.append(str(model._meta.get_field(name).verbose_name))
    return labels


# The LogEntry fields entry_rows() gives, in order.
ENTRY_FIELDS = ("user_id", "content_type_id", "object_id", "object_repr", "action_flag", "change_message")


def entry_values(actor, obj, flag, message) -> dict:
    """The field values of the LogEntry recording `message` about `obj`."""
    (row,) = entry_rows(actor, [(obj, flag, message)])
    return dict(zip(ENTRY_FIELDS, row, strict=True))


def entry_rows(actor, entries) -> list[tuple]:
    """The values (ENTRY_FIELDS, in order) of the LogEntry rows recording many
    (obj, action flag, message) triples, as bulk saves insert them."""
    content_types: dict[type, int] = {}
    rows = []
    for obj, flag, message in entries:
        model = type(obj)
        if model not in content_types:
            content_types[model] = ContentType.objects.get_for_model(obj, for_concrete_model=False).pk
        change_message = json.dumps(message) if isinstance(message, list) else message
        rows.append((actor.pk, content_types[model], str(obj.pk), str(obj)[:200], flag, change_message))
    return rows


def _log(actor, obj, flag, message) -> None:
    if actor is None or actor.pk is None:
        return
    LogEntry.objects.create(**entry_values(actor, obj, flag, message))


def addition_message(via: str = ""):
    return f"Added (via {via})." if via else [{"added": {}}]


def change_message(model: type[models.Model], fields: list[str], via: str = ""):
    labels = field_labels(model, fields)
    if via:
        return f"Changed {', '.join(labels)} (via {via})."
    return [{"changed": {"fields": labels}}]


def log_addition(actor, obj, *, via: str = "") -> None:
    _log(actor, obj, ADDITION, addition_message(via))


def log_change(actor, obj, fields: list[str], *, via: str = "") -> None:
    """Record which fields changed; `via` names a command, shown in the entry."""
    if not fields:
        return
    _log(actor, obj, CHANGE, change_message(type(obj), fields, via))


def log_message(actor, obj, text: str) -> None:
    """A change that is an action rather than an edit (approval, a test, activation)."""
    _log(actor, obj, CHANGE, text)


def log_deletion(actor, obj) -> None:
    _log(actor, obj, DELETION, "")
