from django.db import models


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
