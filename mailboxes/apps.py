from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_sqlite_search(using, **kwargs):
    from django.db import connections

    from mailboxes.models.search import sqlite_search_ensure

    sqlite_search_ensure(connections[using])


class MailboxesConfig(AppConfig):
    name = "mailboxes"
    verbose_name = "Mailboxes"

    def ready(self):
        # A schema change that rebuilds the SQLite mailbox table drops its triggers.
        post_migrate.connect(_ensure_sqlite_search, sender=self)
