"""Trigram indexes for the admin's substring search on PostgreSQL.

The admin searches with `UPPER(col::text) LIKE UPPER('%text%')`; a GIN index over the
same expression with pg_trgm's operator class serves that (a B-tree cannot). Built
CONCURRENTLY so that adding them to a live table of a million mailboxes does not block
writes. SQLite has no such index: there the migration does nothing.
"""

from django.db import migrations

INDEXES = [
    ("mailbox_name_trgm", "mailboxes_mailbox", "name"),
    ("mailbox_email_trgm", "mailboxes_mailbox", "email"),
    ("mailbox_username_trgm", "mailboxes_mailbox", "username"),
    ("user_username_trgm", "mailboxes_user", "username"),
    ("user_full_name_trgm", "mailboxes_user", "full_name"),
    ("user_email_trgm", "mailboxes_user", "email"),
]


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("mailboxes", "0004_ui_list_indexes")]

    operations = [migrations.RunPython(create_trigram_indexes, drop_trigram_indexes, elidable=False)]
