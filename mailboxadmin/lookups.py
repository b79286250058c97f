"""A lookup for the long id lists of bulk work."""

from django.db.models import Lookup
from django.db.models.lookups import In


class AnyOf(Lookup):
    """`lhs IN values` for a long list of database-ready values (ints, strings):
    `Mailbox.objects.filter(AnyOf(F("pk"), ids))`.

    On PostgreSQL it is `lhs = ANY(%s)` with the whole list as one array parameter, which
    psycopg2 adapts in C; Django's own `__in` prepares and compiles one placeholder per
    value, a cost bulk changes of a thousand rows a chunk pay on every query. The
    database plans both alike (PostgreSQL turns an IN list into `= ANY(ARRAY[…])`).
    Elsewhere it is Django's In.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        return In(self.lhs, list(self.rhs)).as_sql(compiler, connection)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, list(self.rhs))
