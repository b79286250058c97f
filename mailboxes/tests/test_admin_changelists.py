"""Admin changelists stay at a fixed number of queries however many rows they show,
count exactly only when filtered, and never show a password."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mailboxadmin.admin_tools import pagination
from mailboxadmin.admin_tools.pagination import EstimatedCountPaginator
from mailboxes.models import Mailbox, MailboxAlert, MailboxSearchText
from mailboxes.services.mailboxes import mailbox_save

# Every page opens with the same four: the session, the user, and the user's own and
# group permissions (read once per request, for the staff and model permission checks);
# then the organisation's time zone, as every admin page shows the current UTC offset.
AUTH = 5


@pytest.fixture
def sysadmin_client(client_for, sysadmin):
    return client_for(sysadmin)


def test_mailbox_changelist_queries(sysadmin_client, many_mailboxes, django_assert_num_queries):
    # AUTH, then:
    # 1. the server profiles, for the Server Profile filter
    # 2. the row count: COUNT(*) on SQLite; on PostgreSQL one pg_class read (the
    #    planner's estimate), counting only while the table is small
    # 3. the page of mailboxes, with server profile, user and queue joined in
    with django_assert_num_queries(AUTH + 3):
        response = sysadmin_client.get("/admin/mailboxes/mailbox/")

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == many_mailboxes.count()


def test_mailbox_changelist_queries_do_not_grow_with_rows(
    sysadmin_client, many_mailboxes, make_user, django_assert_num_queries
):
    for n in range(10):
        make_user(f"more{n}")

    with django_assert_num_queries(AUTH + 3):  # as above
        sysadmin_client.get("/admin/mailboxes/mailbox/")


@pytest.mark.parametrize(
    "query",
    [
        "?q=bulk",
        "?kind__exact=user",
        "?state__exact=active&approval_status__exact=pending",
        "?server_profile__id__exact=1",
        "?incoming_status__exact=not-run&outgoing_method__exact=none",
        "?act_method__exact=none&act_status__exact=not-run&incoming_method__exact=none&outgoing_status__exact=failure",
        "?o=2",
    ],
)
def test_filtered_and_searched_mailbox_changelist_queries(
    sysadmin_client, many_mailboxes, query, django_assert_num_queries
):
    # AUTH, the profiles for the filter, an exact COUNT(*) with the filter, the page.
    with django_assert_num_queries(AUTH + 3):
        response = sysadmin_client.get("/admin/mailboxes/mailbox/" + query)

    assert response.status_code == 200
    assert "?e=1" not in response.get("Location", "")


def test_search_finds_name_address_and_user_name(sysadmin_client, many_mailboxes, make_forward_mailbox):
    forward = make_forward_mailbox(
        name="Collector", allow_credentials=True, username="svc-collect", password="x"
    )

    for term in ("ollecto", forward.email.split("@")[0], "svc-coll"):
        result = sysadmin_client.get("/admin/mailboxes/mailbox/", {"q": term}).context["cl"].result_list
        assert list(result) == [forward], term


def test_search_follows_renames_new_addresses_and_deletions(
    sysadmin_client, many_mailboxes, make_forward_mailbox
):
    def found(term):
        response = sysadmin_client.get("/admin/mailboxes/mailbox/", {"q": term})
        return list(response.context["cl"].result_list)

    mailbox = make_forward_mailbox(
        name="Searchme",
        email="searchme@example.test",
        allow_credentials=True,
        username="svc-first",
        password="x",
    )
    assert found("searchm") == [mailbox]
    mailbox.name, mailbox.username = "Renamed Person", "svc-renamed"
    mailbox_save(mailbox)
    assert found("searchm") == [mailbox]  # the address still holds it
    assert found("named pers") == [mailbox]
    assert found("svc-ren") == [mailbox]
    Mailbox.objects.filter(pk=mailbox.pk).update(email="moved@elsewhere.test")  # any UPDATE, not only save()
    assert found("searchm") == []
    assert found("ved@elsewh") == [mailbox]
    assert found("renamed moved") == [mailbox]  # every word must match, in any of the columns
    assert found("renamed nobody") == []
    Mailbox.objects.filter(pk=mailbox.pk).delete()
    assert found("renamed") == []
    if connection.vendor == "postgresql":  # the triggers keep the search table in step
        copies = set(MailboxSearchText.objects.values_list("mailbox_id", "name", "email", "username"))
        assert copies == set(Mailbox.objects.values_list("pk", "name", "email", "username"))
    else:  # SQLite searches the mailbox table itself
        assert not MailboxSearchText.objects.exists()


def test_substring_search_is_served_by_a_trigram_index_on_postgresql(sysadmin_client, many_mailboxes):
    with CaptureQueriesContext(connection) as queries:
        sysadmin_client.get("/admin/mailboxes/mailbox/", {"q": "bulk0"})
    page = next(q["sql"] for q in queries if q["sql"].startswith('SELECT "mailboxes_mailbox"."id"'))
    if connection.vendor != "postgresql":
        assert "LIKE" in page and "mailboxes_mailbox_search" not in page
        return
    with connection.cursor() as cursor:
        # A test table is small enough that reading it whole wins; forbid that (and the
        # primary key walk) to see which index the planner takes on a large one.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert re.search(r"Bitmap Index Scan on mailbox_search_(name|email|username)_trgm", plan), plan


def test_row_links_lead_to_each_rows_change_form(sysadmin_client, many_mailboxes):
    response = sysadmin_client.get("/admin/mailboxes/mailbox/")
    cl = response.context["cl"]

    for mailbox in cl.result_list:
        url = reverse("admin:mailboxes_mailbox_change", args=[mailbox.pk])
        assert cl.url_for_result(mailbox) == url
        assert f'href="{url}"' in response.content.decode()


def test_every_filter_the_issue_names_is_offered(sysadmin_client, many_mailboxes):
    response = sysadmin_client.get("/admin/mailboxes/mailbox/")

    titles = {spec.title for spec in response.context["cl"].filter_specs}
    assert titles == {
        "kind",
        "Status",
        "Server Profile",
        "Incoming Email",
        "Outgoing Email",
        "Appointments, Contacts, and Tasks",
        "Incoming Email Status",
        "Outgoing Email Status",
        "Appointments, Contacts, and Tasks Status",
        "Email Address Status",
    }


def test_user_changelist_queries(sysadmin_client, many_mailboxes, django_assert_num_queries):
    # AUTH, then: 1. the groups, for the Groups filter; 2. the row count;
    # 3. the page of users, each with its mailbox joined in.
    with django_assert_num_queries(AUTH + 3):
        response = sysadmin_client.get("/admin/mailboxes/user/")

    assert response.status_code == 200
    assert "Active, Pending Approval" in response.content.decode()


def test_queue_changelist_queries(sysadmin_client, many_mailboxes, django_assert_num_queries):
    # AUTH, then: 1. the row count; 2. the page of queues with their owners joined in.
    with django_assert_num_queries(AUTH + 2):
        response = sysadmin_client.get("/admin/mailboxes/queue/")

    assert len(response.context["cl"].result_list) == 3


def test_profile_changelist_queries(sysadmin_client, many_mailboxes, django_assert_num_queries):
    # AUTH, then: 1. the row count; 2. the page of profiles with their owners joined in
    # and "is the default" as a sub-select (not a query per row).
    with django_assert_num_queries(AUTH + 2):
        response = sysadmin_client.get("/admin/serverprofiles/emailserverprofile/")

    assert len(response.context["cl"].result_list) == 3


def test_alert_changelist_queries(sysadmin_client, many_mailboxes, django_assert_num_queries):
    MailboxAlert.objects.bulk_create(
        MailboxAlert(mailbox=mailbox, severity="error", message="Authentication failed.")
        for mailbox in many_mailboxes
    )

    # AUTH, then: 1. the row count; 2. the page of alerts with their mailboxes joined in.
    with django_assert_num_queries(AUTH + 2):
        response = sysadmin_client.get("/admin/mailboxes/mailboxalert/")

    assert len(response.context["cl"].result_list) == many_mailboxes.count()


@pytest.mark.urls("bench.urls")  # the bench's URLs: the product's and /untuned-admin/
def test_the_untuned_admin_grows_a_query_per_row(sysadmin_client, many_mailboxes):
    # What the tuned changelist saves: here each row's profile, user or queue is a query.
    with CaptureQueriesContext(connection) as untuned:
        response = sysadmin_client.get("/untuned-admin/mailboxes/mailbox/")

    assert response.status_code == 200
    assert len(untuned.captured_queries) > many_mailboxes.count()


def test_no_password_column_in_any_changelist(sysadmin_client, many_mailboxes, make_forward_mailbox):
    make_forward_mailbox(allow_credentials=True, username="svc", password="Hunter2-Secret")
    ciphertext = Mailbox.objects.get(username="svc").password_ciphertext

    for url in ("/admin/mailboxes/mailbox/", "/admin/mailboxes/mailbox/?q=svc"):
        content = sysadmin_client.get(url).content.decode()
        assert "Hunter2-Secret" not in content
        assert ciphertext not in content


# The paginator ----------------------------------------------------------------------------


def test_filtered_lists_are_counted_exactly(many_mailboxes, monkeypatch):
    monkeypatch.setattr(pagination, "EXACT_COUNT_BELOW", 1)
    users = Mailbox.objects.filter(kind="user").order_by("name", "id")

    paginator = EstimatedCountPaginator(users, 10)

    assert paginator.count == users.count()
    assert paginator.estimated is False


def test_unfiltered_list_takes_the_planner_estimate_on_postgresql(many_mailboxes, monkeypatch):
    monkeypatch.setattr(pagination, "EXACT_COUNT_BELOW", 1)
    rows = Mailbox.objects.count()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE mailboxes_mailbox")
        Mailbox.objects.filter(kind="forward").delete()  # the estimate lags until the next ANALYZE

    with CaptureQueriesContext(connection) as queries:
        count = EstimatedCountPaginator(Mailbox.objects.order_by("name", "id"), 10).count

    assert len(queries.captured_queries) == 1
    if connection.vendor == "postgresql":
        assert count == rows  # the estimate, not a count
        assert "pg_class" in queries.captured_queries[0]["sql"]
    else:
        assert count == rows  # SQLite keeps no estimate: an exact count
        assert "COUNT(*)" in queries.captured_queries[0]["sql"]


def test_small_tables_are_counted_exactly_in_the_same_one_query(many_mailboxes):
    Mailbox.objects.filter(kind="forward").delete()

    with CaptureQueriesContext(connection) as queries:
        paginator = EstimatedCountPaginator(Mailbox.objects.order_by("name", "id"), 10)
        count = paginator.count

    assert count == Mailbox.objects.count()
    assert paginator.estimated is False
    assert len(queries.captured_queries) == 1
