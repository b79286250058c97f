"""An index of the mailboxes mail processing may read (see Mailbox.Meta.indexes): each
claim of due mailboxes looked them up in a scan of the whole mailbox table."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mailboxes', '0015_budgets'),
        ('serverprofiles', '0005_oauth'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='mailbox',
            index=models.Index(condition=models.Q(('enabled_incoming', True), ('incoming_method', 'server-side-sync'), ('server_profile__isnull', False), ('state', 'active')), fields=['id'], name='mailbox_processable'),
        ),
    ]
