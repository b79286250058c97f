"""Indexes for the mailbox list's domain and address searches on PostgreSQL
(mailboxes.models.search).

A search that starts with "@" is said on the mailbox row (`_domain_contains`): the part of
the address after its first "@" starts with the domain, or the address has a second "@"
and contains the search, or the name has an "@" and contains it. One index for each of
the three: the page's matches come from them straight out of the mailbox table, with no
trigram recheck and no join to a second table before they are sorted (the list sorts a
search's matches, `keyset_page(sort_matches=True)`). Their expressions and predicates
are written exactly as Django sends the search (`UPPER(split_part(...)::text) LIKE ...`,
`split_part(...) > ''`, `"name"::text LIKE '%@%'`), so the planner matches them; ANALYZE
gathers statistics on the domain expression, which tells the planner how common a
domain is. The two partial indexes hold only the rare rows their predicates name.

A search holding a "." (an address, or its start) looks for it in the names that hold a
"." only, through a partial index of the search table (migration 0007) on them.

Built CONCURRENTLY, as in 0004, so a live table of a million mailboxes keeps taking writes.
SQLite searches its FTS5 table (migration 0010): there this does nothing.
"""

from django.db import migrations

# name: (columns, predicate). "%%" is a "%" (the statement goes through the driver's
# parameter formatting).
INDEXES = {
    "mailbox_email_domain_prefix": ("""((UPPER(split_part("email", '@', 2)::text)) text_pattern_ops)""", ""),
    "mailbox_email_more_at": ('("id")', """WHERE split_part("email", '@', 3) > ''"""),
    "mailbox_name_with_at": ('("id")', """WHERE "name"::text LIKE '%%@%%'"""),
}
# A search holding a "." (an address) looks for it in names that hold one.
SEARCH_NAME_WITH_DOT = "mailbox_search_name_with_dot"
MORE_AT_STATISTICS = "mailbox_email_more_at_stats"


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (columns, where) in INDEXES.items():
        statement = f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "mailboxes_mailbox" {columns}'
        schema_editor.execute(f"{statement} {where}".strip())
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{SEARCH_NAME_WITH_DOT}" ON "mailboxes_mailbox_search" '
        """("mailbox_id") WHERE "name"::text LIKE '%%.%%'"""
    )
    # Without statistics on the expression PostgreSQL guesses that a third of the addresses
    # have a second "@", and would then walk the whole table for a rare domain.
    schema_editor.execute(
        f"CREATE STATISTICS IF NOT EXISTS {MORE_AT_STATISTICS} "
        """ON (split_part("email", '@', 3)) FROM "mailboxes_mailbox" """.strip()
    )
    schema_editor.execute('ANALYZE "mailboxes_mailbox", "mailboxes_mailbox_search"')


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP STATISTICS IF EXISTS {MORE_AT_STATISTICS}")
    for name in [*INDEXES, SEARCH_NAME_WITH_DOT]:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("mailboxes", "0014_emailpages")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
