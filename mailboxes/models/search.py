from django.db import models
from django.db.models import CharField, F, Func, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.lookups import GreaterThan, IStartsWith


class MailboxSearchText(models.Model):
    """What the admin's substring search reads on PostgreSQL: each mailbox's name, address
    and user name, copied by database triggers (migration 0007) and indexed with trigrams.

    Kept apart from the mailbox table so that the many writes that change other columns
    (Set Server Profile, test results, key rotation) never pay for three trigram indexes.
    On SQLite no trigger fills it and the admin searches the mailbox table itself.
    """

    mailbox = models.OneToOneField(
        "mailboxes.Mailbox",
        primary_key=True,
        # PostgreSQL deletes the row with its mailbox (ON DELETE CASCADE, migration 0007).
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    name = models.CharField(max_length=200)
    email = models.CharField(max_length=254)
    username = models.CharField(max_length=320, blank=True)

    class Meta:
        db_table = "mailboxes_mailbox_search"
        default_permissions = ()

    def __str__(self):
        return self.email


# SQLite's substring index: an FTS5 table with the trigram tokenizer (SQLite 3.34+), whose
# rowid is the mailbox id, holding each mailbox's name and address. Triggers keep it in
# step with every INSERT, UPDATE and DELETE, whoever writes. Django rebuilds a SQLite
# table (dropping its triggers) for some schema changes, so `sqlite_search_ensure` runs
# after every migrate too, and refills the index whenever its triggers were missing.
SQLITE_SEARCH_TABLE = "mailboxes_mailbox_fts"
_SQLITE_TRIGGERS = {
    "mailbox_fts_insert": """
        CREATE TRIGGER mailbox_fts_insert AFTER INSERT ON mailboxes_mailbox BEGIN
            INSERT INTO mailboxes_mailbox_fts (rowid, name, email) VALUES (NEW.id, NEW.name, NEW.email);
        END""",
    "mailbox_fts_update": """
        CREATE TRIGGER mailbox_fts_update AFTER UPDATE OF id, name, email ON mailboxes_mailbox BEGIN
            DELETE FROM mailboxes_mailbox_fts WHERE rowid = OLD.id;
            INSERT INTO mailboxes_mailbox_fts (rowid, name, email) VALUES (NEW.id, NEW.name, NEW.email);
        END""",
    "mailbox_fts_delete": """
        CREATE TRIGGER mailbox_fts_delete AFTER DELETE ON mailboxes_mailbox BEGIN
            DELETE FROM mailboxes_mailbox_fts WHERE rowid = OLD.id;
        END""",
}


def sqlite_search_ensure(connection) -> None:
    """Create SQLite's search index and its triggers where missing (filling it then)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        if "mailboxes_mailbox" not in tables:
            return
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        present = {row[0] for row in cursor.fetchall()}
        if SQLITE_SEARCH_TABLE in tables and present >= set(_SQLITE_TRIGGERS):
            return
        cursor.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS mailboxes_mailbox_fts "
            "USING fts5(name, email, tokenize = 'trigram')"
        )
        for name, statement in _SQLITE_TRIGGERS.items():
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            cursor.execute(statement)
        cursor.execute("DELETE FROM mailboxes_mailbox_fts")
        cursor.execute(
            "INSERT INTO mailboxes_mailbox_fts (rowid, name, email) "
            "SELECT id, name, email FROM mailboxes_mailbox"
        )


def sqlite_search_drop(connection) -> None:
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name in _SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute("DROP TABLE IF EXISTS mailboxes_mailbox_fts")


def mailbox_contains(q: str, *, vendor: str) -> Q:
    """Mailboxes whose name or address contains `q`, ignoring case, found through an index:
    on PostgreSQL the trigram indexes of MailboxSearchText (migration 0007), on SQLite the
    FTS5 trigram table above. A trigram index needs three characters: `q` must have them.
    """
    if vendor == "postgresql":
        if q.startswith("@"):
            return _domain_contains(q)
        in_name = Q(name__icontains=q)
        if "." in q:
            # An address, or part of one ("olivia.king"). The trigram index splits words
            # at the ".", so it would hand on every "Olivia King" by name, each read and
            # refused; names holding a "." are few and have an index of their own
            # (migration 0014), which PostgreSQL reads first, and when it holds none it
            # skips the name's trigram index altogether.
            in_name &= Q(name__contains=".")
        matches = MailboxSearchText.objects.filter(in_name | Q(email__icontains=q))
        return Q(pk__in=matches.values("mailbox_id"))
    if vendor == "sqlite":
        phrase = '"' + q.replace('"', '""') + '"'  # a phrase matches its text anywhere
        matches = "SELECT rowid FROM mailboxes_mailbox_fts WHERE mailboxes_mailbox_fts MATCH %s"
        return Q(pk__in=RawSQL(matches, [f"{{name email}} : {phrase}"]))  # noqa: S611 (q is a parameter)
    return Q(name__icontains=q) | Q(email__icontains=q)


def _address_part(number: int) -> Func:
    """The text between an address's (number - 1)th and number-th "@" ('' when it has fewer)."""
    return Func(F("email"), Value("@"), Value(number), function="split_part", output_field=CharField())


def _domain_contains(q: str) -> Q:
    """The same mailboxes as a "contains" search for `q`, a search that starts with "@"
    (a domain, or its start), in a shape PostgreSQL serves from the mailbox table's own
    indexes (migration 0014).

    A domain matches many rows (one in fifty at a million), which the trigram index found
    in a second table, each rechecked and joined back to its mailbox before the page's 50
    were sorted out (176 ms). Said on the mailbox row, the matches come straight from an
    index on the domain part of the mailbox table (3 ms for 19,000), then sorted. An address
    contains "@X" exactly when the part after its first "@" starts with X, unless it has
    more than one "@" (a quoted local part, rare: a partial index holds those); a name
    contains it only if it has an "@" (rare too: another partial index).
    """
    return (
        Q(IStartsWith(_address_part(2), q[1:]))
        | (Q(GreaterThan(_address_part(3), "")) & Q(email__icontains=q))
        | (Q(name__contains="@") & Q(name__icontains=q))
    )
