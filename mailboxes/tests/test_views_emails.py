"""/emails/ and /emails/<id>/ (SPEC section 8): the list, one email, its raw message."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes.models import Email, OrganizationSettings
from mailboxes.services.email_content import MISSING_RAW_MESSAGE
from tests.fixtures.ui import page_messages

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def subjects(response) -> list[str]:
    return [email.subject for email in response.context["page"]]


def link(response, rel: str) -> str:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', response.content.decode())
    return found.group(1).replace("&amp;", "&") if found else ""


@pytest.fixture
def alice(make_user):
    return make_user(full_name="Alice Example", email="alice@example.test")


@pytest.fixture
def support(make_queue):
    return make_queue(name="Support", email="support@example.test")


# Who sees what ------------------------------------------------------------------------------


@pytest.mark.parametrize("role_client", ["sysadmin_client", "manager_client", "readonly_client"])
def test_every_role_reads_the_list_and_an_email(request, role_client, alice, make_email):
    email = make_email(alice.mailbox, subject="Quarterly report")
    client = request.getfixturevalue(role_client)

    assert "Quarterly report" in client.get("/emails/").content.decode()
    assert "Quarterly report" in client.get(f"/emails/{email.pk}/").content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client, alice, make_email):
    email = make_email(alice.mailbox)
    for url in ("/emails/", f"/emails/{email.pk}/", f"/emails/{email.pk}/raw/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/accounts/login/")


def test_a_staff_user_without_the_permission_is_refused(client, make_user, alice, make_email):
    email = make_email(alice.mailbox)
    client.force_login(make_user(is_staff=True))
    for url in ("/emails/", f"/emails/{email.pk}/", f"/emails/{email.pk}/raw/"):
        assert client.get(url).status_code == 403


def test_the_navigation_offers_emails_and_alerts(readonly_client):
    html = readonly_client.get("/emails/").content.decode()
    assert '<a href="/emails/" aria-current="page">Emails</a>' in html
    assert '<a href="/alerts/">Alerts</a>' in html


# The list -----------------------------------------------------------------------------------


def test_list_shows_the_columns_newest_first(sysadmin_client, alice, support, make_email):
    now = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    make_email(alice.mailbox, subject="Older one", received_on=now - timedelta(hours=1))
    make_email(
        support.mailbox,
        subject="Newer one",
        from_address="Carol <carol@sender.test>",
        received_on=now,
        headers_only=True,
        malformed=True,
    )

    response = sysadmin_client.get("/emails/")
    html = response.content.decode()

    assert subjects(response) == ["Newer one", "Older one"]
    for column in ["Received On", "From", "Subject", "Mailbox", "Regarding", "Size"]:
        assert f"<th>{column}</th>" in html
    row = re.search(r"<tr>\s*<td[^>]*>4 Dec 2026 16:30 UTC</td>.*?</tr>", html, re.S).group(0)
    assert "Carol &lt;carol@sender.test&gt;" in row
    assert (
        f'?mailbox={support.mailbox.pk}" title="Only the emails of this mailbox">{support.mailbox.name}</a>'
        in row
    )
    assert f'?queue={support.pk}" title="Only the emails regarding Support">Support</a>' in row
    assert "Headers only" in row and "Could not be parsed" in row


def test_received_on_is_shown_in_the_organisations_time_zone(sysadmin_client, alice, make_email):
    OrganizationSettings.objects.update_or_create(pk=1, defaults={"time_zone": "Asia/Tokyo"})
    make_email(alice.mailbox, received_on=datetime(2026, 12, 4, 16, 30, tzinfo=UTC))

    html = sysadmin_client.get("/emails/").content.decode()

    assert "5 Dec 2026 01:30 JST" in html


def test_pages_go_older_and_newer_by_keyset_without_offset(sysadmin_client, alice, make_email):
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for n in range(60):
        # Two emails at each instant: the id orders those that share a time.
        make_email(alice.mailbox, subject=f"Mail {n:02d}", received_on=start + timedelta(minutes=n // 2))
    newest_first = list(Email.objects.order_by("-received_on", "-id").values_list("subject", flat=True))

    first = sysadmin_client.get("/emails/")
    assert subjects(first) == newest_first[:50]
    assert "Older ›" in first.content.decode() and "Newer" not in first.content.decode()

    with CaptureQueriesContext(connection) as queries:
        second = sysadmin_client.get(f"/emails/{link(first, 'next')}")
    assert subjects(second) == newest_first[50:]
    assert not any("OFFSET" in query["sql"] for query in queries.captured_queries)

    back = sysadmin_client.get(f"/emails/{link(second, 'prev')}")
    assert subjects(back) == newest_first[:50]


def test_search_finds_subject_from_and_to(sysadmin_client, alice, make_email):
    make_email(alice.mailbox, subject="Invoice 4711")
    make_email(alice.mailbox, subject="Lunch", from_address="Dave Billing <billing@vendor.test>")
    make_email(alice.mailbox, subject="Hello", to="Invoices Team <accounts@example.test>")
    make_email(alice.mailbox, subject="Unrelated")

    assert sorted(subjects(sysadmin_client.get("/emails/", {"q": "invoice"}))) == ["Hello", "Invoice 4711"]
    assert subjects(sysadmin_client.get("/emails/", {"q": "BILLING@vendor"})) == ["Lunch"]
    assert subjects(sysadmin_client.get("/emails/", {"q": "nothing like it"})) == []
    # Shorter than three characters: nothing (no trigram to look up), and the page says so.
    short = sysadmin_client.get("/emails/", {"q": "Lunch"[:2]})
    assert subjects(short) == []
    assert "Type 3 or more characters to search Subject, From and To." in short.content.decode()


def test_filters_by_mailbox_and_by_regarding(sysadmin_client, alice, support, make_user, make_email):
    bob = make_user(full_name="Bob")
    make_email(alice.mailbox, subject="For Alice")
    make_email(support.mailbox, subject="For Support")
    make_email(bob.mailbox, subject="For Bob")

    response = sysadmin_client.get("/emails/", {"mailbox": alice.mailbox.pk})
    assert subjects(response) == ["For Alice"]
    assert "Mailbox: <strong>Alice Example &lt;alice@example.test&gt;</strong>" in response.content.decode()
    assert subjects(sysadmin_client.get("/emails/", {"user": bob.pk})) == ["For Bob"]
    assert subjects(sysadmin_client.get("/emails/", {"queue": support.pk})) == ["For Support"]
    assert subjects(sysadmin_client.get("/emails/", {"queue": support.pk, "q": "invoice"})) == []


@pytest.mark.parametrize("value", ["abc", "²", "-1", "99999999999999999999", "1.5"])
def test_a_filter_that_names_no_record_shows_nothing(sysadmin_client, alice, make_email, value):
    make_email(alice.mailbox)
    response = sysadmin_client.get("/emails/", {"mailbox": value})
    assert response.status_code == 200
    assert subjects(response) == []


def test_a_hand_made_cursor_shows_the_first_page(sysadmin_client, alice, make_email):
    make_email(alice.mailbox, subject="Only one")
    for cursor in ("WyJub3QgYSB0aW1lIiwxXQ", "garbage", "WzEsMiwzXQ"):
        assert subjects(sysadmin_client.get("/emails/", {"after": cursor})) == ["Only one"]


def test_list_page_runs_a_fixed_number_of_queries(
    sysadmin_client, django_assert_num_queries, alice, support, make_email
):
    for n in range(30):
        make_email(alice.mailbox if n % 2 else support.mailbox, subject=f"Mail {n}")
    # 1. the session; 2. the signed-in user; 3. the user's permissions; 4. their groups'
    # permissions; 5. the page of emails with their mailbox, user and queue (one JOIN);
    # 6. the organisation's time zone, for Received On.
    with django_assert_num_queries(6):
        response = sysadmin_client.get("/emails/")
    assert len(response.context["page"]) == 30

    with django_assert_num_queries(6):
        sysadmin_client.get("/emails/", {"q": "mail"})

    # Each filter adds one query: the name of the mailbox, user or queue it shows.
    with django_assert_num_queries(7):
        sysadmin_client.get("/emails/", {"mailbox": alice.mailbox.pk, "q": "mail"})
    with django_assert_num_queries(8):
        sysadmin_client.get("/emails/", {"mailbox": alice.mailbox.pk, "user": alice.pk})


# One email ----------------------------------------------------------------------------------


def test_an_email_shows_its_headers_text_and_attachments(
    sysadmin_client, alice, make_forward_mailbox, make_email
):
    forward = make_forward_mailbox(name="Inbound Forward")
    email = make_email(
        alice.mailbox,
        subject="Contract",
        from_address="Carol <carol@sender.test>",
        to="alice@example.test",
        cc="legal@example.test",
        text="Please sign the contract.\nThanks.",
        attachments=[("contract.pdf", "application/pdf", b"%PDF-1.4 " * 300)],
        message_id="<contract-1@sender.test>",
        forward_mailbox=forward,
    )

    html = sysadmin_client.get(f"/emails/{email.pk}/").content.decode()

    for label, value in [
        ("Message-ID", "&lt;contract-1@sender.test&gt;"),
        ("From", "Carol &lt;carol@sender.test&gt;"),
        ("To", "alice@example.test"),
        ("Cc", "legal@example.test"),
        ("Subject", "Contract"),
        ("Size", "KB"),
    ]:
        assert re.search(rf"<dt>{label}</dt><dd>[^<]*{re.escape(value)}", html), label
    assert f'<dt>Mailbox</dt><dd><a href="/mailboxes/{alice.mailbox.pk}/">' in html
    assert f'<dt>Regarding</dt><dd><a href="/users/{alice.pk}/">Alice Example</a>' in html
    assert f'<dt>Forwarded Through</dt><dd><a href="/mailboxes/{forward.pk}/">Inbound Forward</a>' in html
    assert '<pre class="email-text">Please sign the contract.\nThanks.\n</pre>' in html
    assert '<td class="list__text">contract.pdf</td><td class="list__text">application/pdf</td>' in html
    assert "2.6\xa0KB" in html


def test_an_html_only_email_is_shown_as_its_text(sysadmin_client, alice, make_email):
    email = make_email(
        alice.mailbox,
        text=None,
        html="<html><head><style>p{color:red}</style></head><body><p>First line</p>"
        "<p>Second &amp; last</p><script>evil()</script></body></html>",
    )

    html = sysadmin_client.get(f"/emails/{email.pk}/").content.decode()

    assert '<pre class="email-text">First line\n\nSecond &amp; last</pre>' in html
    assert "evil()" not in html and "color:red" not in html


def test_an_email_never_runs_what_it_holds(sysadmin_client, alice, make_email):
    email = make_email(
        alice.mailbox,
        subject=f"Hi {XSS}",
        from_address="Mallory <mallory@evil.test>",
        text=f"Body {XSS}",
        html=f"<p>HTML {XSS}</p>",
        attachments=[(f"file{XSS}.txt", "text/plain", b"x")],
    )

    for url in ("/emails/", f"/emails/{email.pk}/"):
        html = sysadmin_client.get(url).content.decode()
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "file&lt;script&gt;" in html
    assert "Body &lt;script&gt;" in html


def test_headers_only_and_unparsable_emails_still_show(sysadmin_client, alice, make_email):
    big = make_email(alice.mailbox, subject="Huge", headers_only=True)
    broken = make_email(
        alice.mailbox, raw=b"\xff\xfe not: a\r\nmessage\r\n\r\n\x00\x01", malformed=True, subject=""
    )

    html = sysadmin_client.get(f"/emails/{big.pk}/").content.decode()
    assert "only its headers were kept" in html
    response = sysadmin_client.get(f"/emails/{broken.pk}/")
    assert response.status_code == 200
    assert "Could not be parsed" in response.content.decode()


def test_a_missing_raw_message_is_said_plainly(sysadmin_client, alice, make_email):
    email = make_email(alice.mailbox, subject="Gone", store=False)

    response = sysadmin_client.get(f"/emails/{email.pk}/")
    assert response.status_code == 200
    assert MISSING_RAW_MESSAGE in response.content.decode()

    download = sysadmin_client.get(f"/emails/{email.pk}/raw/", follow=True)
    assert download.redirect_chain == [(f"/emails/{email.pk}/", 302)]
    assert page_messages(download) == [MISSING_RAW_MESSAGE]


def test_an_unknown_email_is_not_found(sysadmin_client):
    assert sysadmin_client.get("/emails/999999/").status_code == 404
    assert sysadmin_client.get("/emails/999999/raw/").status_code == 404


def test_the_detail_page_runs_a_fixed_number_of_queries(
    sysadmin_client, django_assert_num_queries, alice, make_email
):
    email = make_email(alice.mailbox)
    # 1-4. session, user, permissions; 5. the email with its mailbox, user, queue and
    # forward mailbox; 6. the organisation's time zone.
    with django_assert_num_queries(6):
        sysadmin_client.get(f"/emails/{email.pk}/")


# The raw message ----------------------------------------------------------------------------


def test_a_system_administrator_downloads_the_raw_message(sysadmin_client, alice, make_email):
    email = make_email(
        alice.mailbox, subject="Raw please", attachments=[("a.bin", "application/octet-stream", b"\x00\x01")]
    )
    html = sysadmin_client.get(f"/emails/{email.pk}/").content.decode()
    assert f'<a class="btn" href="/emails/{email.pk}/raw/" download>Download Raw Message</a>' in html

    response = sysadmin_client.get(f"/emails/{email.pk}/raw/")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "message/rfc822"
    assert response.headers["Content-Disposition"] == f'attachment; filename="email-{email.pk}.eml"'
    with email.raw.open("rb") as stored:
        assert b"".join(response.streaming_content) == stored.read()


@pytest.mark.parametrize("role_client", ["manager_client", "readonly_client"])
def test_other_roles_may_not_download_the_raw_message(request, role_client, alice, make_email):
    email = make_email(alice.mailbox)
    client = request.getfixturevalue(role_client)

    assert "Download Raw Message" not in client.get(f"/emails/{email.pk}/").content.decode()
    assert client.get(f"/emails/{email.pk}/raw/").status_code == 403
    assert client.post(f"/emails/{email.pk}/raw/").status_code == 403


@pytest.mark.parametrize(
    ("charset", "body", "shown"),
    [
        ("windows-1252", "Caf\xe9 \u20ac5".encode("windows-1252"), "Café €5"),
        ("iso-2022-jp", "日本語のメール".encode("iso-2022-jp"), "日本語のメール"),
        ("x-no-such-charset", "Gr\xfc\xdfe".encode("latin-1"), "Grüße"),  # read as windows-1252
    ],
)
def test_a_legacy_or_unknown_charset_still_shows_the_text(
    sysadmin_client, alice, make_email, charset, body, shown
):
    raw = (
        b"From: a@sender.test\r\nTo: alice@example.test\r\nSubject: Charset\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )
    email = make_email(alice.mailbox, raw=raw, subject="Charset")

    response = sysadmin_client.get(f"/emails/{email.pk}/")

    assert response.status_code == 200
    assert shown in response.content.decode()
