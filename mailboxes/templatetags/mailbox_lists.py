"""Short forms of long choice labels, for list columns (forms keep the full labels)."""

from django import template

register = template.Library()

_SHORT_METHODS = {"server-side-sync": "Server-Side Sync"}


@register.filter
def short_method(mailbox, field: str) -> str:
    """A delivery method as a list shows it: "Server-Side Sync" for the long label."""
    value = getattr(mailbox, field)
    return _SHORT_METHODS.get(value) or getattr(mailbox, f"get_{field}_display")()
