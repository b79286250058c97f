"""export_config: the whole configuration as one JSON object, streamed, without secrets."""

import json
from collections.abc import Callable
from contextlib import nullcontext
from typing import TextIO

from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.functions import Lower

from mailboxes.config.schema import (
    MAILBOX_KEYS,
    PROFILE_KEYS,
    QUEUE_KEYS,
    SETTINGS_KEYS,
    USER_KEYS,
    Key,
    export_value,
)
from mailboxes.models import Mailbox, OrganizationSettings, Queue, User
from serverprofiles.models import EmailServerProfile

CHUNK_SIZE = 2000
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _column(key: Key) -> str:
    if key.kind == "user":
        return f"{key.field}__username"
    if key.kind == "profile":
        return f"{key.field}__name"
    if key.kind == "secret":
        return f"{key.name}_set"
    return key.field


def _rows(queryset, keys: tuple[Key, ...]):
    """The rows of `queryset` as dicts of exactly the columns `keys` need.

    A secret column is read as "is one stored", so no ciphertext leaves the database.
    """
    secrets = {
        f"{key.name}_set": ExpressionWrapper(~Q(**{key.field: ""}), output_field=BooleanField())
        for key in keys
        if key.kind == "secret"
    }
    columns = [_column(key) for key in keys]
    return queryset.annotate(**secrets).values(*columns).iterator(chunk_size=CHUNK_SIZE)


def _record(row: dict, keys: tuple[Key, ...]) -> dict:
    forward = row.get("kind") == Mailbox.Kind.FORWARD
    record = {}
    for key in keys:
        value = row[_column(key)]
        if key.kind == "secret":
            if value:
                record[f"{key.name}_set"] = True
        elif key.kind == "forward":
            if forward:
                record[key.name] = True
        elif key is _MAILBOX_OWNER and not forward:
            continue  # a user's or queue's mailbox follows its user or queue
        elif key is _MAILBOX_APPROVAL and forward:
            continue  # approval does not apply to forward mailboxes
        else:
            record[key.name] = export_value(key, value)
    return record


_MAILBOX_OWNER = next(key for key in MAILBOX_KEYS if key.name == "owner")
_MAILBOX_APPROVAL = next(key for key in MAILBOX_KEYS if key.name == "approval")


def _settings_record() -> dict:
    # Reading must not create the settings row, so an unsaved one stands for the defaults.
    settings = (
        OrganizationSettings.objects.select_related("default_server_profile").filter(pk=1).first()
        or OrganizationSettings()
    )
    record = {}
    for key in SETTINGS_KEYS:
        value = getattr(settings, key.field)
        record[key.name] = value.name if key.kind == "profile" and value is not None else value
    return record


def config_export(stream: TextIO, *, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Write the configuration to `stream`; returns how many records each section holds.

    The output is stable: every section is ordered by its natural key (names, user names,
    lower-cased addresses), never by id, so two exports of the same configuration — even
    from two databases — are byte-identical. Rows are read in chunks and written as they
    come, so memory stays flat however many mailboxes there are.
    """
    sections = (
        ("server_profiles", EmailServerProfile.objects.order_by("name"), PROFILE_KEYS),
        ("users", User.objects.order_by("username"), USER_KEYS),
        ("queues", Queue.objects.order_by("name", Lower("email")), QUEUE_KEYS),
        ("mailboxes", Mailbox.objects.order_by(Lower("email")), MAILBOX_KEYS),
    )
    counts = {}
    # On PostgreSQL a transaction lets the chunked reads use a plain server-side cursor
    # over one snapshot; on SQLite it would take the write lock for the whole export.
    reading = transaction.atomic() if connection.vendor == "postgresql" else nullcontext()
    with reading:
        stream.write('{\n  "settings": ' + _encode(_settings_record()))
        for section, queryset, keys in sections:
            stream.write(f',\n  "{section}": [')
            buffer, count = [], 0
            for row in _rows(queryset, keys):
                buffer.append(("\n    " if count == 0 else ",\n    ") + _encode(_record(row, keys)))
                count += 1
                if len(buffer) >= CHUNK_SIZE:
                    stream.write("".join(buffer))
                    buffer.clear()
                    if progress:
                        progress(section, count)
            stream.write("".join(buffer) + ("\n  ]" if count else "]"))
            counts[section] = count
            if progress:
                progress(section, count)
        stream.write("\n}\n")
    return counts
