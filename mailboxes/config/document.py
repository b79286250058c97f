"""Reading a configuration file's object into checked records, before anything is applied.

Everything that can be judged from the file alone is judged here — the shape, unknown
keys, each value's type and code, duplicates, and the secrets named by `password_env` —
so a mistake in record 9,999 is reported before record 1 is written.
"""

import os
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from mailboxadmin.commands import environment_variable
from mailboxadmin.validators import has_control_characters
from mailboxes.config.schema import (
    MAILBOX_KEYS,
    PROFILE_KEYS,
    QUEUE_KEYS,
    SETTINGS_KEYS,
    USER_KEYS,
    BadValue,
    Key,
    accepted_keys,
    parse_value,
)

SECTIONS: dict[str, tuple[Key, ...]] = {
    "settings": SETTINGS_KEYS,
    "server_profiles": PROFILE_KEYS,
    "users": USER_KEYS,
    "queues": QUEUE_KEYS,
    "mailboxes": MAILBOX_KEYS,
}
# The key that identifies a record of each list section; it is required.
IDENTITY = {"server_profiles": "name", "users": "username", "queues": "name", "mailboxes": "email"}


class ConfigError(Exception):
    """A configuration that cannot be applied; the message is one line naming the record and field."""


def renamed(error: ValidationError, names: dict[str, str]) -> ValidationError:
    """`error` with model field names replaced by the names its reader knows (keys, flags)."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError({names.get(name, name): errors for name, errors in error.error_dict.items()})


@dataclass
class Record:
    section: str
    index: int | None
    label: str  # e.g. "mailboxes[3] (alice@contoso.test)"
    values: dict = field(default_factory=dict)  # file key → model value (secrets excluded)
    secrets: dict = field(default_factory=dict)  # secret key name → plaintext, from the environment
    claimed: set = field(default_factory=set)  # secret key names the file says are set

    @property
    def identity(self) -> str:
        return self.values[IDENTITY[self.section]]

    @property
    def is_forward(self) -> bool:
        return bool(self.values.get("forward"))

    def __repr__(self):  # never show the secrets it carries
        return f"<Record {self.label}>"


@dataclass
class Document:
    settings: Record | None
    server_profiles: list[Record]
    users: list[Record]
    queues: list[Record]
    mailboxes: list[Record]

    @property
    def size(self) -> int:
        return (self.settings is not None) + sum(
            len(records) for records in (self.server_profiles, self.users, self.queues, self.mailboxes)
        )


def _identity_key(section: str, value: str) -> str:
    # Mailbox addresses are unique case-insensitively (M11); names are exact.
    return value.lower() if section == "mailboxes" else value


def _parse_record(section: str, index: int | None, raw, environ) -> Record:
    keys = SECTIONS[section]
    label = section if index is None else f"{section}[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: must be a JSON object.")
    identity_name = IDENTITY.get(section)
    if identity_name is not None:
        identity = raw.get(identity_name)
        if isinstance(identity, str) and identity:
            label = f"{label} ({identity})"
        else:
            raise ConfigError(f"{label}: {identity_name}: is required (a non-empty string).")
    record = Record(section=section, index=index, label=label)

    for secret in ("password", "outgoing_password"):
        if secret in raw:
            raise ConfigError(
                f"{label}: {secret}: a password is never written in a file; give "
                f'"{secret}_env": "VAR" and put it in the environment variable VAR.'
            )
    unknown = sorted(set(raw) - accepted_keys(keys))
    if unknown:
        raise ConfigError(
            f"{label}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(sorted(accepted_keys(keys)))}."
        )
    try:
        for key in keys:
            if key.kind == "secret":
                _parse_secret(record, key, raw, environ)
            elif key.name in raw:
                record.values[key.name] = parse_value(key, raw[key.name])
    except BadValue as problem:
        raise ConfigError(f"{label}: {problem.key}: {problem.message}") from None
    if section == "mailboxes":
        _check_mailbox_keys(record)
    return record


def _parse_secret(record: Record, key: Key, raw: dict, environ) -> None:
    env_key, set_key = f"{key.name}_env", f"{key.name}_set"
    if set_key in raw:
        if not isinstance(raw[set_key], bool):
            raise BadValue(set_key, "must be true or false.")
        if raw[set_key]:
            record.claimed.add(key.name)
    if env_key in raw:
        var = raw[env_key]
        if not isinstance(var, str) or not var:
            raise BadValue(env_key, "must name an environment variable.")
        value = environ.get(var)
        if not value:
            raise BadValue(env_key, f"{environment_variable(var)} is not set or is empty.")
        if has_control_characters(value):
            raise BadValue(
                env_key, f"{environment_variable(var)} holds a control character (such as a line break)."
            )
        record.secrets[key.name] = value


def _check_mailbox_keys(record: Record) -> None:
    values = record.values
    if record.is_forward:
        if values.get("approval", "empty") != "empty":
            raise ConfigError(f"{record.label}: approval: approval does not apply to forward mailboxes.")
    elif "owner" in values:
        raise ConfigError(
            f"{record.label}: owner: only a forward mailbox's owner is set here; a user's mailbox "
            "belongs to its user, and a queue's follows the queue's owner."
        )


def parse_document(data, *, environ=None) -> Document:
    """The checked records of a configuration file's top-level object."""
    environ = os.environ if environ is None else environ
    if not isinstance(data, dict):
        raise ConfigError("The file must hold one JSON object with the keys " + ", ".join(SECTIONS) + ".")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"Unknown section{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(SECTIONS)}."
        )
    settings = _parse_record("settings", None, data["settings"], environ) if "settings" in data else None
    lists = {}
    for section in ("server_profiles", "users", "queues", "mailboxes"):
        raw = data.get(section, [])
        if not isinstance(raw, list):
            raise ConfigError(f"{section}: must be a JSON list.")
        records, seen = [], {}
        for index, item in enumerate(raw):
            record = _parse_record(section, index, item, environ)
            identity = _identity_key(section, record.identity)
            if identity in seen:
                raise ConfigError(
                    f"{record.label}: {IDENTITY[section]}: also given at {section}[{seen[identity]}]; "
                    "each record appears once."
                )
            seen[identity] = index
            records.append(record)
        lists[section] = records
    return Document(settings=settings, **lists)
