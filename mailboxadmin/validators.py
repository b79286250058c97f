import re
import zoneinfo
from functools import cache
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_host_name(value: str) -> bool:
    """A DNS host name or an IP address, without scheme, port or path."""
    if not value or len(value) > 253:
        return False
    # Labels first: most values are names (and IPv4 addresses pass as labels of digits);
    # Django's address check raises a translated ValidationError for every name.
    if all(_HOST_LABEL.match(label) for label in value.rstrip(".").split(".")):
        return True
    try:
        validate_ipv46_address(value)
    except ValidationError:
        return False
    return True


def is_https_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme == "https" and is_host_name(parts.hostname or "")


_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL_CHARACTER.search(value) is not None


@cache
def time_zone_names() -> list[str]:
    """The IANA time zone names this machine knows, sorted."""
    return sorted(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            "“%(value)s” is not a time zone name: use an IANA name such as Europe/Paris or UTC.",
            code="invalid_time_zone",
            params={"value": value},
        )
