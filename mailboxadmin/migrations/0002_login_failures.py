from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mailboxadmin', '0001_cache_table'),
    ]

    operations = [
        migrations.CreateModel(
            name='LoginFailures',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope', models.CharField(choices=[('address', 'Client address'), ('username', 'User name')], max_length=16)),
                ('key', models.CharField(max_length=64)),
                ('failures', models.PositiveIntegerField(default=0)),
                ('window_started', models.DateTimeField()),
                ('retry_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name_plural': 'login failures',
                'indexes': [models.Index(fields=['window_started'], name='loginfailures_window')],
                'constraints': [models.UniqueConstraint(fields=('scope', 'key'), name='loginfailures_one_row_per_key'), models.CheckConstraint(condition=models.Q(('scope__in', ['address', 'username'])), name='loginfailures_scope_valid')],
            },
        ),
    ]
