"""PostgreSQL: leave room in each page of the mailbox table for updated rows.

A mailbox row is rewritten often in columns no index covers (the stored password on key
rotation, test errors, version, modified_on). With free room on its page PostgreSQL
updates such a row in place (a HOT update) instead of touching each of the table's many
indexes. Pages written from now on keep 20 % free; VACUUM FULL or a reload applies it to
existing pages.
"""

from django.db import migrations


def set_fillfactor(apps, schema_editor, value=80):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE mailboxes_mailbox SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE mailboxes_mailbox RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0005_admin_trigram")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False)]
