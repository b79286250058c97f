"""SQLite's index for the mailbox list's "contains" search: an FTS5 trigram table of each
mailbox's name and address, kept by triggers (mailboxes.models.search). PostgreSQL
already has one, the trigram indexes of migration 0007: there this does nothing."""

from django.db import migrations

from mailboxes.models.search import sqlite_search_drop, sqlite_search_ensure


def forward(apps, schema_editor):
    sqlite_search_ensure(schema_editor.connection)


def backward(apps, schema_editor):
    sqlite_search_drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0009_bind_credentials")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
