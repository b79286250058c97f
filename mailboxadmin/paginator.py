"""Keyset pagination: pages that cost the same on row 50 and row 999,950, and never count.

An OFFSET page makes the database walk past every earlier row, and a numbered paginator
runs an unfiltered COUNT(*) on every request; on a million mailboxes both are slow. A
keyset page asks instead for "the next 50 rows after (name, id) = (x, 42)", which an
index on (name, id) answers by seeking straight to x. The cursor in the URL carries the
sort key of the page's last (or first) row.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet


@dataclass(frozen=True)
class SortKey:
    """One column of a sort: a field name or an annotation; the last key must be unique."""

    name: str
    expression: object = None  # an expression to annotate as `name`, e.g. Lower("email")


@dataclass
class KeysetPage:
    object_list: list
    has_next: bool = False
    has_previous: bool = False
    next_cursor: str = ""
    previous_cursor: str = ""
    extra: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)


def _cursor_value(value):
    """A sort key JSON cannot hold as it is: a time, as ISO 8601 text (which the
    column's lookups parse back)."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be a cursor value")


def encode_cursor(values: list) -> str:
    text = json.dumps(values, separators=(",", ":"), default=_cursor_value)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list | None:
    """The values in a cursor, or None when it is not one of ours (a hand-edited URL)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(values, list) or len(values) != length:
        return None
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        return None
    return values


def _fitting(queryset: QuerySet, keys: list[SortKey], values: list | None) -> list | None:
    """`values` when each fits its sort key's column, else None (a hand-made cursor).

    Comparing a column with a value of another type, or with text holding a NUL (which
    PostgreSQL refuses outright), would fail in the database instead of showing a page.
    """
    if values is None:
        return None
    for key, value in zip(keys, values, strict=True):
        annotation = queryset.query.annotations.get(key.name)
        if annotation is not None:
            column = annotation.output_field
        else:
            column = queryset.model._meta.get_field(key.name)
        if isinstance(value, str) and "\x00" in value:
            return None
        try:
            column.to_python(value)
        except (ValidationError, ValueError, TypeError):
            return None
    return values


def _beyond(keys: list[SortKey], values: list, *, forward: bool) -> Q:
    """Rows strictly after `values` in the sort order (before, when `forward` is False).

    Written as `k0 >= v0 AND (k0 > v0 OR (k0 = v0 AND k1 > v1) ...)`: the leading `>=` is
    a plain range condition on the first key, so an index on the sort keys can seek to
    it; the rest only sorts out the few rows that share the first key's value.
    """
    gt, ge = ("gt", "gte") if forward else ("lt", "lte")
    alternatives = Q()
    for i, key in enumerate(keys):
        term = Q(**{f"{key.name}__{gt}": values[i]})
        for earlier, value in zip(keys[:i], values[:i], strict=True):
            term &= Q(**{earlier.name: value})
        alternatives |= term
    return Q(**{f"{keys[0].name}__{ge}": values[0]}) & alternatives


def keyset_page(
    queryset: QuerySet,
    keys: list[SortKey],
    *,
    descending: bool = False,
    after: str = "",
    before: str = "",
    per_page: int = 50,
    sort_matches: bool = False,
) -> KeysetPage:
    """One page of `queryset` in the order of `keys`, after or before a cursor.

    Runs exactly one query. `has_next`/`has_previous` come from fetching one row more
    than the page holds, never from counting.

    `sort_matches` is for searches: it asks the database to find the matching rows first
    (through the search's own indexes) and sort just those, instead of walking the sort
    index in order and testing every row, which PostgreSQL prefers when it cannot tell
    how few rows match, and which takes seconds when the matches lie deep in that order.
    It says so by asking for NULLs where the index does not keep them (the sort keys are
    never NULL, so the order is the same).
    """
    annotations = {k.name: k.expression for k in keys if k.expression is not None}
    if annotations:
        queryset = queryset.annotate(**annotations)
    after_values = _fitting(queryset, keys, decode_cursor(after, len(keys)))
    before_values = None
    if after_values is None:
        before_values = _fitting(queryset, keys, decode_cursor(before, len(keys)))
    walking_back = before_values is not None

    backwards = descending != walking_back
    if sort_matches:
        order = [
            F(k.name).desc(nulls_last=True) if backwards else F(k.name).asc(nulls_first=True) for k in keys
        ]
    else:
        order = [f"-{k.name}" if backwards else k.name for k in keys]
    if after_values is not None:
        queryset = queryset.filter(_beyond(keys, after_values, forward=not descending))
    elif walking_back:
        queryset = queryset.filter(_beyond(keys, before_values, forward=descending))
    page_query = queryset.order_by(*order)
    if sort_matches:
        # The page's ids first, from the matching rows alone; then just those rows with
        # what the queryset joins (select_related). Joining every match before sorting
        # them costs more than finding them, for a search that matches thousands. Still
        # one query: the ids are its subquery.
        page_ids = page_query.values("pk")[: per_page + 1]
        page_query = queryset.filter(pk__in=page_ids).order_by(*order)
    rows = list(page_query[: per_page + 1])
    more = len(rows) > per_page
    rows = rows[:per_page]
    if walking_back:
        rows.reverse()
    page = KeysetPage(
        object_list=rows,
        has_next=more if not walking_back else True,
        has_previous=more if walking_back else after_values is not None,
    )
    if rows:
        page.next_cursor = encode_cursor([getattr(rows[-1], k.name) for k in keys])
        page.previous_cursor = encode_cursor([getattr(rows[0], k.name) for k in keys])
    return page
