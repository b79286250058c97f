"""A changelist paginator that never counts a whole big table."""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many rows an exact COUNT(*) is as cheap as the estimate, and exact.
EXACT_COUNT_BELOW = 10_000


def planner_row_estimate(model, using: str = "default") -> int | None:
    """The row count PostgreSQL's planner keeps for the model's table (kept current by
    ANALYZE and autovacuum), or None where there is no such statistic (SQLite; a table
    never analysed)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] < 0:
        return None
    return int(row[0])


class EstimatedCountPaginator(Paginator):
    """Counts exactly when the list is filtered or searched; unfiltered, uses the
    planner's estimate so that a page of a million-row list costs no COUNT(*).

    The estimate moves with autovacuum, so the last page numbers of an unfiltered list
    are approximate; any filter or search brings back exact counts.
    """

    @cached_property
    def count(self):
        queryset = self.object_list
        if not queryset.query.where:
            estimate = planner_row_estimate(queryset.model, queryset.db)
            if estimate is not None and estimate >= EXACT_COUNT_BELOW:
                self.estimated = True
                return estimate
        return super().count

    estimated = False
