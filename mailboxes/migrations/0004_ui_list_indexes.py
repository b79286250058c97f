"""Indexes for the browser lists on PostgreSQL: prefix search and the Failed Tests view.

The lists search with `istartswith`, which Django sends to PostgreSQL as
`UPPER(col::text) LIKE UPPER('abc%')`. A B-tree over that same expression with
text_pattern_ops turns it into an index range scan whatever the database collation.
"Failed Tests" filters on three status columns at once; a partial index on (name, id)
holding only failed mailboxes serves that view, sorted, straight from the index.

Built CONCURRENTLY, so adding them to a live table of a million mailboxes does not block
writes. SQLite has no such operator classes: there the migration does nothing (its LIKE
is case-insensitive already, and a development database is small).
"""

from django.db import migrations

PREFIX_INDEXES = [
    ("mailbox_name_upper_prefix", "mailboxes_mailbox", "name"),
    ("mailbox_email_upper_prefix", "mailboxes_mailbox", "email"),
    ("user_username_upper_prefix", "mailboxes_user", "username"),
    ("user_full_name_upper_prefix", "mailboxes_user", "full_name"),
    ("user_email_upper_prefix", "mailboxes_user", "email"),
]
FAILED_TESTS_INDEX = "mailbox_failed_tests_name"


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, column in PREFIX_INDEXES:
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" '
            f'((UPPER("{column}"::text)) text_pattern_ops)'
        )
    # The predicate is written exactly as the Failed Tests view filters, so the planner
    # can prove the index covers the query.
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{FAILED_TESTS_INDEX}" ON "mailboxes_mailbox" '
        '("name", "id") WHERE ("incoming_status" = \'failure\' OR "outgoing_status" = \'failure\' '
        "OR \"act_status\" = 'failure')"
    )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in [*(name for name, _, _ in PREFIX_INDEXES), FAILED_TESTS_INDEX]:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("mailboxes", "0003_groups")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
