"""The email changelist's date hierarchy, without a scan of every email.

Django's date hierarchy lists the years, months or days that hold rows with a SELECT
DISTINCT over every row of the list: at millions of emails, a full scan on each visit.
This one reads only the first and the last Received On (two index look-ups, as Django's
does first) and offers every year between them, every month of a year and every day of
a month; a step that holds no email shows an empty list.
"""

import calendar
import datetime

from django import template
from django.db.models import Max, Min
from django.utils import formats, timezone
from django.utils.text import capfirst

register = template.Library()


def _number(value) -> int | None:
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None


@register.inclusion_tag("admin/date_hierarchy.html")
def date_hierarchy_without_scans(cl):
    field = cl.date_hierarchy
    names = {part: f"{field}__{part}" for part in ("year", "month", "day")}
    year, month, day = (_number(cl.params.get(names[part])) for part in ("year", "month", "day"))

    def link(filters):
        return cl.get_query_string(filters, [f"{field}__"])

    if year is None:
        first_last = cl.queryset.aggregate(first=Min(field), last=Max(field))
        if first_last["first"] is None:
            return {"show": False}
        first, last = (timezone.localtime(value) for value in (first_last["first"], first_last["last"]))
        if first.year != last.year:
            return {
                "show": True,
                "back": None,
                "choices": [
                    {"link": link({names["year"]: str(y)}), "title": str(y)}
                    for y in range(first.year, last.year + 1)
                ],
            }
        year, month = first.year, (first.month if first.month == last.month else None)
    try:
        if day is not None and month is not None:
            shown = datetime.date(year, month, day)
            return {
                "show": True,
                "back": {
                    "link": link({names["year"]: year, names["month"]: month}),
                    "title": capfirst(formats.date_format(shown, "YEAR_MONTH_FORMAT")),
                },
                "choices": [{"title": capfirst(formats.date_format(shown, "MONTH_DAY_FORMAT"))}],
            }
        if month is not None:
            days = calendar.monthrange(year, month)[1]
            return {
                "show": True,
                "back": {"link": link({names["year"]: year}), "title": str(year)},
                "choices": [
                    {
                        "link": link({names["year"]: year, names["month"]: month, names["day"]: d}),
                        "title": capfirst(
                            formats.date_format(datetime.date(year, month, d), "MONTH_DAY_FORMAT")
                        ),
                    }
                    for d in range(1, days + 1)
                ],
            }
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {
                    "link": link({names["year"]: year, names["month"]: m}),
                    "title": capfirst(formats.date_format(datetime.date(year, m, 1), "YEAR_MONTH_FORMAT")),
                }
                for m in range(1, 13)
            ],
        }
    except ValueError:  # a hand-made URL: month 13, day 31 of April, year 0
        return {"show": False}
