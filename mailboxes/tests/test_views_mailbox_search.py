"""The mailbox list's "contains" search: any part of a name or an address, through an index."""

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes.models import Mailbox
from mailboxes.models.search import mailbox_contains
from mailboxes.services.mailboxes import mailbox_save

pytestmark = pytest.mark.django_db


def found(client, q, **params) -> list[str]:
    response = client.get("/mailboxes/", {"view": "all", "q": q, **params})
    assert response.status_code == 200
    return [mailbox.name for mailbox in response.context["page"]]


def test_a_domain_finds_its_mailboxes(sysadmin_client, make_user, make_forward_mailbox):
    make_user(full_name="Alice Example", email="alice@contoso.test")
    make_forward_mailbox(name="Contoso forward", email="fwd@contoso.test")
    make_user(full_name="Bob Other", email="bob@fabrikam.test")
    assert found(sysadmin_client, "@contoso.test") == ["Alice Example", "Contoso forward"]
    assert found(sysadmin_client, "@CONTOSO") == ["Alice Example", "Contoso forward"]


def test_any_part_of_a_name_matches_ignoring_case(sysadmin_client, make_forward_mailbox):
    make_forward_mailbox(name="Sales collection", email="sales@example.test")
    make_forward_mailbox(name="Archive", email="archive@example.test")
    assert found(sysadmin_client, "COLLECT") == ["Sales collection"]
    assert found(sysadmin_client, "hiv") == ["Archive"]
    assert found(sysadmin_client, "nothing here") == []


def test_search_text_with_quotes_and_operators_is_taken_literally(sysadmin_client, make_forward_mailbox):
    make_forward_mailbox(name='The "A" OR team', email="a-team@example.test")
    make_forward_mailbox(name="Another", email="another@example.test")
    assert found(sysadmin_client, '"A" OR') == ['The "A" OR team']
    assert found(sysadmin_client, "a-team*") == []
    assert found(sysadmin_client, "name : Another") == []


def test_search_follows_every_kind_of_write(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox(name="Before rename", email="before@example.test")
    mailbox.name = "After rename"
    mailbox_save(mailbox)
    assert found(sysadmin_client, "before rename") == []
    assert found(sysadmin_client, "after ren") == ["After rename"]
    Mailbox.objects.filter(pk=mailbox.pk).update(email="moved@elsewhere.test")  # any UPDATE
    assert found(sysadmin_client, "before@") == []
    assert found(sysadmin_client, "elsewhere") == ["After rename"]
    Mailbox.objects.filter(pk=mailbox.pk).delete()
    assert found(sysadmin_client, "elsewhere") == []


def test_search_with_saved_view_and_pages(sysadmin_client, profile):
    Mailbox.objects.bulk_create(
        Mailbox(
            kind=Mailbox.Kind.FORWARD,
            name=f"Box {i:03d}",
            email=f"box{i:03d}@{'contoso' if i % 2 else 'fabrikam'}.test",
            server_profile=profile,
            incoming_method="server-side-sync",
        )
        for i in range(120)
    )
    first = sysadmin_client.get("/mailboxes/", {"view": "forward", "q": "contoso.t"})
    names = [m.name for m in first.context["page"]]
    assert names == [f"Box {i:03d}" for i in range(1, 100, 2)]
    after = first.context["page"].next_cursor
    second = found(sysadmin_client, "contoso.t", view="forward", after=after)
    assert second == [f"Box {i:03d}" for i in range(101, 120, 2)]


def test_search_runs_a_fixed_number_of_queries(sysadmin_client, django_assert_num_queries, make_user):
    for n in range(30):
        make_user(full_name=f"Person {n}", email=f"person{n}@contoso.test")
    # 1. the session
    # 2. the signed-in user
    # 3. the user's own permissions
    # 4. the permissions of the user's groups
    # 5. the page of mailboxes, with their user, queue and server profile (one JOIN query),
    #    whose ids come from a subquery over the search index
    # 6. the first-run guide: the email settings row with five EXISTS
    with django_assert_num_queries(6):
        response = sysadmin_client.get("/mailboxes/", {"view": "all", "q": "@contoso"})
    assert len(response.context["page"]) == 30


def test_search_is_served_by_the_trigram_index(sysadmin_client, make_user):
    make_user(email="indexed@contoso.test")
    with CaptureQueriesContext(connection) as queries:
        sysadmin_client.get("/mailboxes/", {"q": "contoso"})
    page = next(
        q["sql"] for q in queries.captured_queries if "mailboxes_mailbox" in q["sql"] and "JOIN" in q["sql"]
    )
    if connection.vendor == "sqlite":
        assert "mailboxes_mailbox_fts MATCH" in page
        with connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN QUERY PLAN SELECT rowid FROM mailboxes_mailbox_fts "
                "WHERE mailboxes_mailbox_fts MATCH %s",
                ['"contoso"'],
            )
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "VIRTUAL TABLE INDEX" in plan, plan
    else:
        assert "mailboxes_mailbox_search" in page and "LIKE" in page


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own index")
def test_sqlite_index_is_rebuilt_when_a_table_rebuild_dropped_its_triggers(sysadmin_client, make_user):
    make_user(full_name="Kept Person", email="kept@contoso.test")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER mailbox_fts_insert")
        cursor.execute("DELETE FROM mailboxes_mailbox_fts")
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # as every migrate does
    make_user(full_name="New Person", email="new@contoso.test")
    assert found(sysadmin_client, "@contoso") == ["Kept Person", "New Person"]


# A search that starts with "@" (a domain) -------------------------------------------------


def contains_reference(q: str) -> list[str]:
    """What a "contains" search for `q` must find, worked out in Python: the names of the
    mailboxes whose name or address holds `q` ignoring case, in the list's order."""
    needle = q.casefold()
    rows = Mailbox.objects.order_by("name", "id").values_list("name", "email")
    return [name for name, email in rows if needle in name.casefold() or needle in email.casefold()]


@pytest.fixture
def domain_rows(make_user, make_forward_mailbox, profile):
    make_user(full_name="Alice Example", email="alice@contoso.test")
    make_user(full_name="Carol Upper", email="CAROL@CONTOSO.TEST")
    make_forward_mailbox(name="Sub domain", email="sub@contoso.testing.example")
    make_forward_mailbox(name="Help @contoso.test desk", email="help@fabrikam.test")  # the name holds it
    make_forward_mailbox(name="Not contoso", email="bob@notcontoso.test")  # no "@" before "contoso"
    make_forward_mailbox(name="Look-alike", email="x@contosoXtest.test")  # "_" and "." are no wildcards
    # An address with a second "@" in a quoted local part (valid, and rare): the part after
    # its first "@" is not the domain. Written past the form, as an import might.
    Mailbox.objects.bulk_create(
        [
            Mailbox(
                kind=Mailbox.Kind.FORWARD,
                name="Quoted local part",
                email='"first@contoso.test"@other.test',
                server_profile=profile,
                incoming_method="server-side-sync",
            )
        ]
    )


@pytest.mark.parametrize(
    "q",
    ["@contoso.test", "@CONTOSO.TEST", "@contoso", "@contoso.test@", "@contoso.t_st", "@contoso.te%", "@co"],
)
def test_a_domain_search_finds_exactly_what_contains_finds(sysadmin_client, domain_rows, q):
    assert found(sysadmin_client, q) == contains_reference(q)


def test_a_domain_search_finds_the_rows_that_hold_it_anywhere(sysadmin_client, domain_rows):
    assert found(sysadmin_client, "@contoso.test") == [
        "Alice Example",
        "Carol Upper",
        "Help @contoso.test desk",
        "Quoted local part",
        "Sub domain",
    ]


def test_a_domain_search_pages_in_either_order(sysadmin_client, profile):
    Mailbox.objects.bulk_create(
        Mailbox(
            kind=Mailbox.Kind.FORWARD,
            name=f"Box {i:03d}",
            email=f"box{119 - i:03d}@{'contoso' if i % 2 else 'fabrikam'}.test",
            server_profile=profile,
            incoming_method="server-side-sync",
        )
        for i in range(120)
    )
    first = sysadmin_client.get("/mailboxes/", {"view": "forward", "q": "@contoso.test"})
    assert [m.name for m in first.context["page"]] == [f"Box {i:03d}" for i in range(1, 100, 2)]
    second = found(sysadmin_client, "@contoso.test", view="forward", after=first.context["page"].next_cursor)
    assert second == [f"Box {i:03d}" for i in range(101, 120, 2)]
    by_email = found(sysadmin_client, "@contoso.test", view="forward", sort="email")
    assert by_email == [f"Box {i:03d}" for i in range(119, 19, -2)]


def test_a_domain_search_runs_a_fixed_number_of_queries(
    sysadmin_client, django_assert_num_queries, make_user
):
    for n in range(60):
        make_user(full_name=f"Person {n}", email=f"person{n}@{'contoso' if n % 2 else 'fabrikam'}.test")
    # the session, the signed-in user, their permissions, their groups' permissions, the
    # page (one JOIN query), the first-run guide: as any search
    with django_assert_num_queries(6):
        response = sysadmin_client.get("/mailboxes/", {"view": "all", "q": "@contoso.test"})
    assert len(response.context["page"]) == 30


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes (SQLite searches FTS5)")
def test_a_domain_search_is_said_on_the_mailbox_row_in_the_shape_of_its_indexes(sysadmin_client, make_user):
    """The page asks the mailbox table itself, and each part of the question matches an
    index of migration 0014 (were an expression to drift from its index, the planner
    could only read the whole table)."""
    make_user(email="indexed@contoso.test")
    with CaptureQueriesContext(connection) as queries:
        sysadmin_client.get("/mailboxes/", {"view": "all", "q": "@contoso"})
    page = next(q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"] and "JOIN" in q["sql"])
    assert "mailboxes_mailbox_search" not in page and "split_part" in page
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")  # no walk in the page's order
    plan = Mailbox.objects.filter(mailbox_contains("@contoso", vendor="postgresql")).values("id").explain()
    for index in ("mailbox_email_domain_prefix", "mailbox_email_more_at", "mailbox_name_with_at"):
        assert f"Bitmap Index Scan on {index}" in plan, plan


# A search holding a "." (an address or its start) -------------------------------------------


@pytest.fixture
def dotted_rows(make_user, make_forward_mailbox):
    make_user(full_name="Olivia King 12", email="olivia.king12@contoso.test")
    make_user(full_name="Olivia King 13", email="o.king13@contoso.test")  # the name has no "."
    make_forward_mailbox(name="Desk of olivia.king", email="desk@fabrikam.test")  # the name holds it
    make_forward_mailbox(name="J. Smith", email="jsmith@fabrikam.test")
    make_forward_mailbox(name="Mail for X.OLIVIA.KINGS", email="other@fabrikam.test")


@pytest.mark.parametrize(
    "q", ["olivia.king", "OLIVIA.KING", "j. sm", "a.k", "contoso.t", "s.olivia", "x.o_l"]
)
def test_a_search_with_a_dot_finds_exactly_what_contains_finds(sysadmin_client, dotted_rows, q):
    assert found(sysadmin_client, q) == contains_reference(q)


def test_a_search_with_a_dot_finds_it_in_names_and_addresses(sysadmin_client, dotted_rows):
    assert found(sysadmin_client, "olivia.king") == [
        "Desk of olivia.king",
        "Mail for X.OLIVIA.KINGS",
        "Olivia King 12",
    ]


def test_a_search_with_a_dot_runs_a_fixed_number_of_queries(
    sysadmin_client, django_assert_num_queries, make_user
):
    for n in range(30):
        make_user(full_name=f"Person {n}", email=f"person.{n}@contoso.test")
    with django_assert_num_queries(6):  # as any search
        response = sysadmin_client.get("/mailboxes/", {"view": "all", "q": "person."})
    assert len(response.context["page"]) == 30


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes (SQLite searches FTS5)")
def test_a_search_with_a_dot_reads_names_through_the_index_of_names_with_a_dot(make_user):
    make_user(email="olivia.king1@contoso.test")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")  # as on a million rows: bitmaps
    plan = Mailbox.objects.filter(mailbox_contains("olivia.king", vendor="postgresql")).values("id").explain()
    assert "Bitmap Index Scan on mailbox_search_name_with_dot" in plan, plan
    assert "Bitmap Index Scan on mailbox_search_email_trgm" in plan, plan
