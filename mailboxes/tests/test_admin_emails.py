"""Emails in the Django admin: read-only, a fixed number of queries, no scan of every
email for the count or the date hierarchy, the raw message only with its permission."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxadmin.admin_tools.pagination import CappedCountPaginator
from mailboxes.models import Email

pytestmark = pytest.mark.django_db

LIST = "/admin/mailboxes/email/"
# The session, the user, the user's own and group permissions, the time zone.
AUTH = 5


@pytest.fixture
def alice(make_user):
    return make_user(full_name="Alice Example")


@pytest.fixture
def emails(alice, make_queue, make_email):
    support = make_queue(name="Support")
    start = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    made = []
    for n in range(12):
        mailbox = alice.mailbox if n % 2 else support.mailbox
        made.append(make_email(mailbox, subject=f"Mail {n}", received_on=start + timedelta(days=30 * n)))
    return made


@pytest.mark.parametrize("role_client", ["sysadmin_client", "manager_client", "readonly_client"])
def test_every_role_reads_emails_and_none_writes(request, role_client, emails):
    client = request.getfixturevalue(role_client)
    email = emails[0]

    assert client.get(LIST).status_code == 200
    change = client.get(f"{LIST}{email.pk}/change/")
    assert change.status_code == 200
    assert "Mail 0" in change.content.decode()
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.post(f"{LIST}{email.pk}/change/", {"subject": "Changed"}).status_code == 403
    assert client.post(f"{LIST}{email.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Email.objects.filter(pk=email.pk, subject="Mail 0").exists()
    assert client.post(LIST, {"action": "delete_selected", "_selected_action": [email.pk]}).status_code in (
        200,
        302,
    )
    assert Email.objects.count() == len(emails)


def test_the_raw_message_link_only_with_the_permission(client_for, sysadmin, manager, readonly, emails):
    email = emails[0]
    raw_link = f'<a href="/emails/{email.pk}/raw/">Download Raw Message</a>'

    assert raw_link in client_for(sysadmin).get(f"{LIST}{email.pk}/change/").content.decode()
    for user in (manager, readonly):
        html = client_for(user).get(f"{LIST}{email.pk}/change/").content.decode()
        assert "Download Raw Message" not in html
        assert "Raw Message" not in html


def test_changelist_queries(sysadmin_client, emails, django_assert_num_queries):
    # AUTH, then:
    # 1. the first and the last Received On, for the date hierarchy
    # 2. the row count (COUNT(*) on SQLite, the planner's estimate on PostgreSQL)
    # 3. the page of emails with their mailbox, user and queue joined in
    with django_assert_num_queries(AUTH + 3):
        response = sysadmin_client.get(LIST)
    assert len(response.context["cl"].result_list) == len(emails)


def test_the_date_hierarchy_never_lists_distinct_dates(sysadmin_client, emails):
    for params in (
        {},
        {"received_on__year": "2026"},
        {"received_on__year": "2026", "received_on__month": "4"},
    ):
        with CaptureQueriesContext(connection) as queries:
            response = sysadmin_client.get(LIST, params)
        assert response.status_code == 200
        assert not any("DISTINCT" in query["sql"].upper() for query in queries.captured_queries), params

    html = sysadmin_client.get(LIST).content.decode()
    assert 'href="?received_on__year=2026">2026</a>' in html
    assert 'href="?received_on__year=2027">2027</a>' in html

    year = sysadmin_client.get(LIST, {"received_on__year": "2026"})
    assert "April 2026" in year.content.decode()
    assert {email.subject for email in year.context["cl"].result_list} == {f"Mail {n}" for n in range(10)}

    april = sysadmin_client.get(LIST, {"received_on__year": "2026", "received_on__month": "4"})
    assert [email.subject for email in april.context["cl"].result_list] == ["Mail 1"]
    assert "April 30" in april.content.decode()


def test_a_filtered_count_stops_at_its_cap(sysadmin_client, emails, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)

    with CaptureQueriesContext(connection) as queries:
        response = sysadmin_client.get(LIST, {"received_on__year": "2026"})

    assert "more than 3 emails" in response.content.decode()
    count = next(query["sql"] for query in queries.captured_queries if "COUNT(" in query["sql"].upper())
    assert "LIMIT 4" in count


def test_search_and_filters(sysadmin_client, alice, emails, make_email):
    make_email(alice.mailbox, subject="Invoice 42", from_address="Billing <billing@vendor.test>")

    found = sysadmin_client.get(LIST, {"q": "billing@VENDOR"}).context["cl"].result_list
    assert [email.subject for email in found] == ["Invoice 42"]
    by_mailbox = sysadmin_client.get(LIST, {"mailbox__id__exact": alice.mailbox.pk}).context["cl"].result_list
    assert {email.mailbox_id for email in by_mailbox} == {alice.mailbox.pk}
    by_user = sysadmin_client.get(LIST, {"regarding_user__id__exact": alice.pk}).context["cl"].result_list
    assert len(by_user) == 7
    flagged = Email.objects.filter(pk=emails[0].pk)
    flagged.update(headers_only=True)
    assert [
        e.pk for e in sysadmin_client.get(LIST, {"headers_only__exact": "1"}).context["cl"].result_list
    ] == [emails[0].pk]
