import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_host_name(value: str) -> bool:
    """A DNS host name or an IP address, without scheme, port or path."""
    if not value or len(value) > 253:
        return False
    try:
        validate_ipv46_address(value)
        return True
    except ValidationError:
        pass
    return all(_HOST_LABEL.match(label) for label in value.rstrip(".").split("."))


def is_https_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme == "https" and is_host_name(parts.hostname or "")


def has_control_characters(value: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)
