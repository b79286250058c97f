"""AnyOf: `IN` for long lists, one array parameter on PostgreSQL."""

from django.db import connection
from django.db.models import F
from django.db.models.functions import Lower
from django.test.utils import CaptureQueriesContext

from mailboxadmin.lookups import AnyOf
from mailboxes.models import Mailbox


def test_selects_updates_and_matches_expressions_as_in_does(make_user):
    users = [make_user() for _ in range(3)]
    ids = [user.mailbox.pk for user in users[:2]]

    assert sorted(Mailbox.objects.filter(AnyOf(F("pk"), ids)).values_list("pk", flat=True)) == sorted(ids)
    assert Mailbox.objects.filter(AnyOf(F("pk"), ids)).update(version=F("version") + 1) == 2
    assert users[2].mailbox.version == Mailbox.objects.get(pk=users[2].mailbox.pk).version
    address = users[1].mailbox.email.upper()
    found = Mailbox.objects.annotate(address=Lower("email")).filter(AnyOf(F("address"), [address.lower()]))
    assert list(found.values_list("pk", flat=True)) == [users[1].mailbox.pk]


def test_an_empty_list_matches_nothing(make_user):
    make_user()
    assert not Mailbox.objects.filter(AnyOf(F("pk"), [])).exists()


def test_postgresql_gets_the_list_as_one_array(make_user):
    ids = [make_user().mailbox.pk for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        list(Mailbox.objects.filter(AnyOf(F("pk"), ids)))
    (query,) = queries.captured_queries
    if connection.vendor == "postgresql":
        assert '"mailboxes_mailbox"."id" = ANY(ARRAY[' in query["sql"]
    else:
        assert '"mailboxes_mailbox"."id" IN (' in query["sql"]
