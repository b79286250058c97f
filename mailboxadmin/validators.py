import re
import unicodedata
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


def control_character_message(label: str) -> str:
    return f"{label} contains a control character (such as a line break or tab). Remove it."


# What Python makes of bytes that are not UTF-8 (read from a terminal, a file or an
# environment variable with errors="surrogateescape"): no text, and nothing a mail
# server could be sent.
_UNDECODED_BYTE = re.compile("[\ud800-\udfff]")


def refuse_control_characters(value: str, *, field: str, label: str) -> None:
    """Refuse a credential holding a control character (a line break, tab, NUL …) when it
    is set: no mail server accepts one in a sign-in, and a CR/LF could end the protocol's
    command early. Found only when testing, it was stored until then. So are bytes that
    are not UTF-8 text."""
    if has_control_characters(value):
        raise ValidationError({field: control_character_message(label)})
    if _UNDECODED_BYTE.search(value):
        raise ValidationError({field: f"{label} holds bytes that are not UTF-8 text. Give it as UTF-8 text."})


def normalize_name(value: str) -> str:
    """A name as compared for uniqueness: NFKC (compatibility forms such as full-width
    letters become the ordinary ones), without invisible format characters (zero-width
    spaces and joiners, direction marks, soft hyphens), without surrounding spaces."""
    value = unicodedata.normalize("NFKC", value)
    return "".join(char for char in value if unicodedata.category(char) != "Cf").strip()


# Scripts whose letters look alike: a name mixing them (a Cyrillic "а" in "аlice") can pass
# for another. Other scripts are not confused with these and may be mixed freely.
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def confusable_scripts(value: str) -> list[str]:
    """The look-alike scripts `value` mixes (two or more), or []."""
    scripts = {unicodedata.name(char, "").split(" ")[0] for char in value if char.isalpha()}
    mixed = [script.title() for script in _CONFUSABLE_SCRIPTS if script in scripts]
    return mixed if len(mixed) > 1 else []


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


# The years a stored date and time may be in. Dates are stored in UTC and shown in the
# organisation's time zone, each up to a day away from the value as entered: a date in
# year 1 or 9999 can land outside the years Python's datetime holds, and fail to save.
EARLIEST_YEAR, LATEST_YEAR = 2, 9998


def validate_storable_datetime(value) -> None:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValidationError(
            "Enter a date between the years %(earliest)s and %(latest)s.",
            code="year_out_of_range",
            params={"earliest": EARLIEST_YEAR, "latest": LATEST_YEAR},
        )
