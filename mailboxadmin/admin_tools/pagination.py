"""A changelist paginator that never counts a whole big table."""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many rows an exact COUNT(*) is as cheap as the estimate, and exact.
EXACT_COUNT_BELOW = 10_000

# One query either way: PostgreSQL runs the COUNT(*) sub-select (an InitPlan) only when
# the CASE needs it, i.e. when the planner's statistics say the table is small or has
# never been analysed (reltuples is -1 then).
_ESTIMATE_OR_COUNT = """
    SELECT c.reltuples >= %s,
           CASE WHEN c.reltuples >= %s THEN c.reltuples::bigint ELSE (SELECT COUNT(*) FROM {table}) END
    FROM pg_class c
    WHERE c.oid = %s::regclass
"""


def table_row_count(model, using: str = "default") -> tuple[int, bool]:
    """(rows, estimated) for the model's whole table: on PostgreSQL the row count the
    planner keeps (current as of the last ANALYZE or autovacuum) once the table is
    large, an exact count below EXACT_COUNT_BELOW and on other databases."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return model._default_manager.using(using).count(), False
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(_ESTIMATE_OR_COUNT.format(table=table), [EXACT_COUNT_BELOW, EXACT_COUNT_BELOW, table])
        estimated, rows = cursor.fetchone()
    return int(rows), bool(estimated)


class EstimatedCountPaginator(Paginator):
    """Counts exactly when the list is filtered or searched; unfiltered, uses the
    planner's estimate, so that a page of a million-row list costs no COUNT(*).

    The estimate moves with autovacuum, so the last page numbers of an unfiltered list
    are approximate (`estimated` tells the template); any filter or search brings back
    exact counts.
    """

    estimated = False

    @cached_property
    def count(self):
        queryset = self.object_list
        if queryset.query.where or queryset.query.distinct or queryset.query.combinator:
            return super().count
        rows, self.estimated = table_row_count(queryset.model, queryset.db)
        return rows


class CappedCountPaginator(EstimatedCountPaginator):
    """EstimatedCountPaginator that also stops counting a filtered list at `cap` rows:
    a filter that keeps most of a table of millions (a year of the date hierarchy, say)
    would otherwise count them all on every page. Past the cap the list says "more than"
    (`capped` tells the template) and offers the pages up to it."""

    cap = 10_000
    capped = False

    @cached_property
    def count(self):
        queryset = self.object_list
        if not (queryset.query.where or queryset.query.distinct or queryset.query.combinator):
            return super().count
        # One query: COUNT(*) over a sub-select that stops at cap + 1 rows.
        counted = queryset.order_by()[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)
