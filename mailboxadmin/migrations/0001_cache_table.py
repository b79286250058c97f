"""The database cache's table (settings.CACHES), so that `migrate` alone leaves a working
site: without it every sign-in failed with "no such table: mailboxadmin_cache"."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # createcachetable skips a table that exists: databases set up before this migration
    # (with `manage.py createcachetable`) are left as they are.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop, elidable=False)]
