"""Choice labels for list columns: short forms of long labels (forms keep the full
labels), and labels looked up without Django's per-call work."""

from functools import cache

from django import template

register = template.Library()

_SHORT_METHODS = {"server-side-sync": "Server-Side Sync"}


@cache
def _labels(model, field: str) -> dict:
    return dict(model._meta.get_field(field).flatchoices)


@register.filter
def label(record, field: str):
    """`get_<field>_display()`, from a table of the field's choices made once: Django's
    builds that table at each call, which a list page of 50 rows does 400 times."""
    value = getattr(record, field)
    return _labels(type(record), field).get(value, value)


@register.filter
def short_method(mailbox, field: str) -> str:
    """A delivery method as a list shows it: "Server-Side Sync" for the long label."""
    return _SHORT_METHODS.get(getattr(mailbox, field)) or label(mailbox, field)
