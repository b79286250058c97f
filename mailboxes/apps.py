from django.apps import AppConfig
from django.db.models.signals import post_migrate

SEARCH_MIGRATION = ("mailboxes", "0010_mailbox_contains_search_sqlite")


def _ensure_sqlite_search(using, **kwargs):
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    from mailboxes.models.search import sqlite_search_ensure

    connection = connections[using]
    if (
        connection.vendor == "sqlite"
        and SEARCH_MIGRATION in MigrationRecorder(connection).applied_migrations()
    ):
        sqlite_search_ensure(connection)


class MailboxesConfig(AppConfig):
    name = "mailboxes"
    verbose_name = "Mailboxes"

    def ready(self):
        # A schema change that rebuilds the SQLite mailbox table drops its triggers.
        post_migrate.connect(_ensure_sqlite_search, sender=self)
