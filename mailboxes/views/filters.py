"""Filters of a list by the record a row belongs to (?mailbox=ID, ?user=ID, …): each
shown above the list with a link that removes it, each row linking to its own."""


def record_id(value: str) -> int | None:
    """The id a filter parameter or a selected row names, or None when it names none (not
    ASCII digits, or past the 64-bit range, which the database cannot compare with)."""
    if value.isascii() and value.isdigit() and int(value) < 2**63:  # "²".isdigit() is True
        return int(value)
    return None


class RecordFiltersMixin:
    """For a KeysetListView: `record_filters` maps a parameter to (the column it filters,
    the model of the record it names, its label); `exclusive` names filters that replace
    each other (a row's "Regarding" is a user or a queue)."""

    record_filters: dict[str, tuple[str, type, str]] = {}
    exclusive: tuple[str, ...] = ()

    def active_filters(self) -> dict[str, int | None]:
        """The filters of this request: parameter → id (None for an id that names nothing)."""
        return {
            name: record_id(self.request.GET[name])
            for name in self.record_filters
            if self.request.GET.get(name, "")
        }

    def filter_records(self, queryset):
        for name, pk in self.active_filters().items():
            column = self.record_filters[name][0]
            queryset = queryset.filter(**{column: pk}) if pk is not None else queryset.none()
        return queryset

    def filter_chips(self) -> list[dict]:
        """Each filter, named, with a link that removes it: one query a filter (the name
        of the record it names)."""
        chips = []
        for name, pk in self.active_filters().items():
            _, model, label = self.record_filters[name]
            record = model.objects.filter(pk=pk).first() if pk is not None else None
            chips.append(
                {
                    "label": label,
                    "value": str(record) if record is not None else "(none)",
                    "remove_link": self.query_string(**{name: None}),
                }
            )
        return chips

    def filter_link(self, name: str):
        """A function giving this page's link with the filter `name` set to a pk, from one
        query string per page rather than one a row."""
        removed = {other: None for other in self.exclusive if name in self.exclusive}
        base = self.query_string(**{name: None, **removed})
        separator = "&" if base != "?" else ""
        return lambda pk: f"{base}{separator}{name}={pk}"
