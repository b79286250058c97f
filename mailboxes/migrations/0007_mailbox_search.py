"""Fewer indexes on the mailbox table: the admin's substring search moves to a table of
its own, and the server profile's single-column index goes.

Every write to a mailbox row that cannot be made in place (Set Server Profile, test
results, a new password) adds an entry to each index of the table. The three trigram
indexes of migration 0005 were the dearest of them; on PostgreSQL the admin now searches
`mailboxes_mailbox_search`, a copy of each mailbox's name, address and user name that
triggers keep in step (a statement-level trigger copies inserted rows; a row trigger
fires only when one of the three columns changes; the foreign key deletes the copy with
its mailbox). The index on server_profile_id alone duplicated the leading column of
`mailbox_profile_name`. On SQLite the search table stays empty and unused.
"""

from django.db import migrations, models

TRIGRAM_COLUMNS = ("name", "email", "username")
OLD_INDEXES = [f"mailbox_{column}_trgm" for column in TRIGRAM_COLUMNS]

FORWARD_SQL = [
    'ALTER TABLE "mailboxes_mailbox_search" ADD CONSTRAINT "mailbox_search_mailbox_fk" '
    'FOREIGN KEY ("mailbox_id") REFERENCES "mailboxes_mailbox" ("id") ON DELETE CASCADE',
    """
    CREATE FUNCTION mailboxes_mailbox_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO mailboxes_mailbox_search (mailbox_id, name, email, username)
        SELECT id, name, email, username FROM inserted_mailboxes;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER mailbox_search_insert AFTER INSERT ON mailboxes_mailbox
    REFERENCING NEW TABLE AS inserted_mailboxes
    FOR EACH STATEMENT EXECUTE FUNCTION mailboxes_mailbox_search_insert()
    """,
    """
    CREATE FUNCTION mailboxes_mailbox_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE mailboxes_mailbox_search
        SET name = NEW.name, email = NEW.email, username = NEW.username
        WHERE mailbox_id = NEW.id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER mailbox_search_update AFTER UPDATE OF name, email, username ON mailboxes_mailbox
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email
                       OR OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION mailboxes_mailbox_search_update()
    """,
    "INSERT INTO mailboxes_mailbox_search (mailbox_id, name, email, username) "
    "SELECT id, name, email, username FROM mailboxes_mailbox",
    *(
        f'CREATE INDEX "mailbox_search_{column}_trgm" ON "mailboxes_mailbox_search" '
        f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        for column in TRIGRAM_COLUMNS
    ),
    *(f'DROP INDEX IF EXISTS "{name}"' for name in OLD_INDEXES),
]

BACKWARD_SQL = [
    "DROP TRIGGER IF EXISTS mailbox_search_update ON mailboxes_mailbox",
    "DROP TRIGGER IF EXISTS mailbox_search_insert ON mailboxes_mailbox",
    "DROP FUNCTION IF EXISTS mailboxes_mailbox_search_update()",
    "DROP FUNCTION IF EXISTS mailboxes_mailbox_search_insert()",
    *(
        f'CREATE INDEX IF NOT EXISTS "mailbox_{column}_trgm" ON "mailboxes_mailbox" '
        f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        for column in TRIGRAM_COLUMNS
    ),
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD_SQL:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD_SQL:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("mailboxes", "0006_mailbox_fillfactor")]

    operations = [
        migrations.CreateModel(
            name="MailboxSearchText",
            fields=[
                (
                    "mailbox",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=models.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="mailboxes.mailbox",
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("email", models.CharField(max_length=254)),
                ("username", models.CharField(blank=True, max_length=320)),
            ],
            options={"db_table": "mailboxes_mailbox_search", "default_permissions": ()},
        ),
        migrations.AlterField(
            model_name="mailbox",
            name="server_profile",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The email server profile this mailbox connects through.",
                null=True,
                on_delete=models.PROTECT,
                related_name="mailboxes",
                to="serverprofiles.emailserverprofile",
                verbose_name="Server Profile",
            ),
        ),
        migrations.RunPython(forward, backward, elidable=False),
    ]
