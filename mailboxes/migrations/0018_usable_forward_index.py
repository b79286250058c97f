"""An index of the usable forward mailboxes (see Mailbox.Meta.indexes): every mailbox list
page asks whether one exists, and a scan of the table could be planned for it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mailboxes', '0017_process_email_after_year_range'),
        ('serverprofiles', '0007_process_email_from_year_range'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='mailbox',
            index=models.Index(condition=models.Q(('kind', 'forward'), ('server_profile__isnull', False), ('state', 'active')), fields=['id'], name='mailbox_usable_forward'),
        ),
    ]
