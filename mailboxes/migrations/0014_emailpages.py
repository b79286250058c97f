"""/emails/ search and /alerts/ severity filter at scale.

The email list's search is `UPPER(col::text) LIKE UPPER('%text%')` on Subject, From and
To (Django's icontains); on PostgreSQL a GIN index over the same expression with pg_trgm's
operator class serves it (a B-tree cannot). Built CONCURRENTLY so that adding them to a
live table of millions of emails does not block mail processing's inserts. SQLite has no
such index: there the search reads the table.
"""

from django.db import migrations, models

TRIGRAM_INDEXES = [
    ("email_subject_trgm", "mailboxes_email", "subject"),
    ("email_from_trgm", "mailboxes_email", "from_address"),
    ("email_to_trgm", "mailboxes_email", "to_addresses"),
]


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in TRIGRAM_INDEXES:
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("mailboxes", "0013_mail_processing"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="mailboxalert",
            index=models.Index(fields=["severity", "-created_on"], name="alert_severity_recent"),
        ),
        migrations.AddIndex(
            model_name="email",
            index=models.Index(fields=["forward_mailbox", "-received_on", "-id"], name="email_forward_newest"),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
