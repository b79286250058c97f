"""The keys of each section of a configuration file, and the model field behind each.

One table serves both directions: `export_config` writes these keys in this order, and
`apply_config` accepts exactly these keys (plus `<secret>_env` and `<secret>_set` for each
secret), checks each value's type and code, and assigns it to the field named here.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mailboxes.config import codes


@dataclass(frozen=True)
class Key:
    name: str  # the key in the file
    field: str  # the model field it sets
    kind: str  # str | bool | int | datetime | code | user | profile | state | forward | secret
    codes: tuple[str, ...] = ()
    nullable: bool = False


class BadValue(ValueError):
    """A value a key does not accept; `key` names it in the file."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


SETTINGS_KEYS = (
    Key("default_server_profile", "default_server_profile", "profile", nullable=True),
    Key("incoming", "default_incoming", "code", codes.INCOMING_METHODS),
    Key("outgoing", "default_outgoing", "code", codes.OUTGOING_METHODS),
    Key("act", "default_act", "code", codes.ACT_METHODS),
    Key("approval_required_for_users", "approval_required_for_users", "bool"),
    Key("approval_required_for_queues", "approval_required_for_queues", "bool"),
    Key("time_zone", "time_zone", "str"),
    Key("disable_after_failures", "disable_after_failures", "int"),
)

PROFILE_KEYS = (
    Key("name", "name", "str"),
    Key("description", "description", "str"),
    Key("server_type", "server_type", "code", codes.SERVER_TYPES),
    Key("owner", "owner", "user", nullable=True),
    Key("auto_discover", "auto_discover", "bool"),
    Key("incoming_server", "incoming_server", "str"),
    Key("incoming_port", "incoming_port", "int", nullable=True),
    Key("incoming_ssl", "incoming_ssl", "bool"),
    Key("outgoing_server", "outgoing_server", "str"),
    Key("outgoing_port", "outgoing_port", "int", nullable=True),
    Key("outgoing_ssl", "outgoing_ssl", "bool"),
    Key("incoming_auth", "incoming_auth", "code", codes.AUTH_METHODS),
    Key("use_same_settings_for_outgoing", "use_same_settings_for_outgoing", "bool"),
    Key("outgoing_auth", "outgoing_auth", "code", codes.AUTH_METHODS),
    Key("username", "incoming_username", "str"),
    Key("password", "incoming_password_ciphertext", "secret"),
    Key("outgoing_username", "outgoing_username", "str"),
    Key("outgoing_password", "outgoing_password_ciphertext", "secret"),
    Key("allow_unencrypted_credentials", "allow_unencrypted_credentials", "bool"),
    # SPEC 7. The provider is checked by the model's choices: "" when the profile has no OAuth.
    Key("oauth_provider", "oauth_provider", "str"),
    Key("oauth_tenant_id", "oauth_tenant_id", "str"),
    Key("oauth_token_url", "oauth_token_url", "str"),
    Key("oauth_client_id", "oauth_client_id", "str"),
    Key("oauth_scope", "oauth_scope", "str"),
    Key("oauth_client_secret", "oauth_client_secret_ciphertext", "secret"),
    Key("oauth_service_account_key", "oauth_service_account_key_ciphertext", "secret"),
    Key("process_email_from", "process_email_from", "datetime", nullable=True),
    Key("min_polling_interval", "min_polling_interval", "int"),
    Key("max_connections", "max_connections", "int"),
    Key("move_failed_to_undeliverable", "move_failed_to_undeliverable", "bool"),
    Key("timeout_ms", "timeout_ms", "int"),
)

USER_KEYS = (
    Key("username", "username", "str"),
    Key("full_name", "full_name", "str"),
    Key("email", "email", "str"),
    Key("active", "is_active", "bool"),
)

QUEUE_KEYS = (
    Key("name", "name", "str"),
    Key("email", "email", "str"),
    Key("type", "queue_type", "code", codes.QUEUE_TYPES),
    Key("owner", "owner", "user"),
    Key("description", "description", "str"),
    Key("convert_incoming", "convert_incoming", "code", codes.CONVERT_INCOMING),
    Key("active", "is_active", "bool"),
)

MAILBOX_KEYS = (
    Key("email", "email", "str"),
    Key("name", "name", "str"),
    Key("forward", "kind", "forward"),
    Key("owner", "owner", "user", nullable=True),  # forward mailboxes only
    Key("active", "state", "state"),
    Key("server_profile", "server_profile", "profile", nullable=True),
    Key("incoming", "incoming_method", "code", codes.INCOMING_METHODS),
    Key("outgoing", "outgoing_method", "code", codes.OUTGOING_METHODS),
    Key("act", "act_method", "code", codes.ACT_METHODS),
    Key("process_email_after", "process_email_after", "datetime", nullable=True),
    Key("delete_after_processing", "delete_after_processing", "bool"),
    Key("allow_credentials", "allow_credentials", "bool"),
    Key("username", "username", "str"),
    Key("password", "password_ciphertext", "secret"),
    Key("approval", "approval_status", "code", codes.APPROVAL_STATUSES),  # user and queue mailboxes
)

# Validation errors name the write-only password by its form field; the file calls it
# `<secret>_env`.
SECRET_ERROR_FIELDS = {
    "password": "password_env",
    "incoming_password": "password_env",
    "outgoing_password": "outgoing_password_env",
    "oauth_client_secret": "oauth_client_secret_env",
    "oauth_service_account_key": "oauth_service_account_key_env",
}


@cache
def accepted_keys(keys: tuple[Key, ...]) -> frozenset[str]:
    names = set()
    for key in keys:
        if key.kind == "secret":
            names.update((f"{key.name}_env", f"{key.name}_set"))
        else:
            names.add(key.name)
    return frozenset(names)


def file_key_for_field(keys: tuple[Key, ...]) -> dict[str, str]:
    """Model field (or form field) name → the key a file author knows it by."""
    names = {key.field: key.name for key in keys}
    for form_field, file_key in SECRET_ERROR_FIELDS.items():
        if file_key.removesuffix("_env") in names.values():
            names.setdefault(form_field, file_key)
    return names


def parse_value(key: Key, value):
    """The model value for `value` in the file, or BadValue saying what is wrong."""
    if value is None:
        if key.nullable:
            return None
        raise BadValue(key.name, "must not be null.")
    if key.kind in ("str", "user", "profile"):
        if not isinstance(value, str):
            raise BadValue(key.name, "must be a string.")
        if "\x00" in value:  # no database stores it, and PostgreSQL refuses it even in a lookup
            raise BadValue(key.name, "must not contain a NUL character.")
        return value
    if key.kind in ("bool", "forward"):
        if not isinstance(value, bool):
            raise BadValue(key.name, "must be true or false.")
        return value
    if key.kind == "state":
        if not isinstance(value, bool):
            raise BadValue(key.name, "must be true or false.")
        return "active" if value else "inactive"
    if key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(key.name, "must be a whole number.")
        return value
    if key.kind == "code":
        if value not in key.codes:
            raise BadValue(key.name, f"must be one of {' | '.join(key.codes)}.")
        return value
    if key.kind == "datetime":
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # the right form, but no such date or time: month 13, hour 25
            parsed = None
        if parsed is None:
            raise BadValue(
                key.name, "must be a date and time in ISO 8601 form, e.g. 2025-01-31T00:00:00+00:00."
            )
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed
    raise AssertionError(f"unknown kind {key.kind}")


def export_value(key: Key, value):
    """The value written to the file for a model value."""
    if key.kind == "state":
        return value == "active"
    if key.kind == "datetime" and isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value
