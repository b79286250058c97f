"""/alerts/ (SPEC section 8): alerts across mailboxes and server profiles, with filters."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from mailboxes.models import MailboxAlert

pytestmark = pytest.mark.django_db


def messages_listed(response) -> list[str]:
    return [alert.message for alert in response.context["page"]]


def alert(*, created_on=None, **fields) -> MailboxAlert:
    made = MailboxAlert.objects.create(**fields)
    if created_on is not None:
        MailboxAlert.objects.filter(pk=made.pk).update(created_on=created_on)
    return made


@pytest.fixture
def alice_mailbox(make_user):
    return make_user(full_name="Alice Example").mailbox


@pytest.mark.parametrize("role_client", ["sysadmin_client", "manager_client", "readonly_client"])
def test_whoever_sees_mailboxes_sees_their_alerts(request, role_client, alice_mailbox):
    alert(mailbox=alice_mailbox, severity="error", message="Authentication failed.")
    response = request.getfixturevalue(role_client).get("/alerts/")
    assert messages_listed(response) == ["Authentication failed."]


def test_anonymous_and_unpermitted_users_see_no_alerts(client, make_user):
    assert client.get("/alerts/").headers["Location"].startswith("/accounts/login/")
    client.force_login(make_user(is_staff=True))
    assert client.get("/alerts/").status_code == 403


def test_alerts_of_mailboxes_and_profiles_newest_first(sysadmin_client, alice_mailbox, profile):
    now = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
    alert(mailbox=alice_mailbox, severity="warning", workload="incoming", message="Older", created_on=now)
    alert(
        profile=profile,
        severity="error",
        message="Profile unreachable",
        created_on=now + timedelta(minutes=1),
    )

    response = sysadmin_client.get("/alerts/")
    html = response.content.decode()

    assert messages_listed(response) == ["Profile unreachable", "Older"]
    for column in ["Severity", "Time", "Mailbox or Server Profile", "Workload", "Message"]:
        assert f"<th>{column}</th>" in html
    assert f'<a href="/mailboxes/{alice_mailbox.pk}/">Alice Example</a>' in html
    assert f'Profile: <a href="/serverprofiles/{profile.pk}/">Contoso IMAP</a>' in html
    assert "4 Dec 2026 16:30 UTC" in html
    assert "Incoming Email" in html


def test_filters_by_severity_mailbox_and_profile(sysadmin_client, alice_mailbox, make_user, profile):
    bob_mailbox = make_user(full_name="Bob").mailbox
    alert(mailbox=alice_mailbox, severity="error", message="Alice error")
    alert(mailbox=alice_mailbox, severity="warning", message="Alice warning")
    alert(mailbox=bob_mailbox, severity="error", message="Bob error")
    alert(profile=profile, severity="information", message="Profile note")

    assert set(messages_listed(sysadmin_client.get("/alerts/", {"severity": "error"}))) == {
        "Alice error",
        "Bob error",
    }
    assert set(messages_listed(sysadmin_client.get("/alerts/", {"mailbox": alice_mailbox.pk}))) == {
        "Alice error",
        "Alice warning",
    }
    both = sysadmin_client.get("/alerts/", {"mailbox": alice_mailbox.pk, "severity": "warning"})
    assert messages_listed(both) == ["Alice warning"]
    assert messages_listed(sysadmin_client.get("/alerts/", {"profile": profile.pk})) == ["Profile note"]
    # An unknown severity is no filter; an id that names nothing matches nothing.
    assert len(messages_listed(sysadmin_client.get("/alerts/", {"severity": "panic"}))) == 4
    assert messages_listed(sysadmin_client.get("/alerts/", {"profile": "x"})) == []


def test_pages_go_older_and_newer(sysadmin_client, alice_mailbox):
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for n in range(55):
        alert(
            mailbox=alice_mailbox,
            severity="error",
            message=f"Alert {n:02d}",
            created_on=start + timedelta(seconds=n),
        )

    first = sysadmin_client.get("/alerts/")
    assert messages_listed(first) == [f"Alert {n:02d}" for n in range(54, 4, -1)]
    older = re.search(r'<a href="([^"]+)" rel="next">Older ›</a>', first.content.decode()).group(1)
    second = sysadmin_client.get("/alerts/" + older.replace("&amp;", "&"))
    assert messages_listed(second) == [f"Alert {n:02d}" for n in range(4, -1, -1)]


def test_an_alert_never_runs_what_it_holds(sysadmin_client, alice_mailbox):
    alert(mailbox=alice_mailbox, severity="error", message='<script>alert("x")</script>')
    html = sysadmin_client.get("/alerts/").content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


def test_list_runs_a_fixed_number_of_queries(sysadmin_client, django_assert_num_queries, make_user, profile):
    for n in range(20):
        alert(mailbox=make_user().mailbox, severity="error", message=f"Mailbox {n}")
        alert(profile=profile, severity="warning", message=f"Profile {n}")
    # 1-4. session, user, the user's and their groups' permissions; 5. the page of
    # alerts with their mailbox and profile (one JOIN); 6. the time zone for Time.
    with django_assert_num_queries(6):
        response = sysadmin_client.get("/alerts/")
    assert len(response.context["page"]) == 40
    with django_assert_num_queries(6):
        sysadmin_client.get("/alerts/", {"severity": "warning"})
    # A mailbox or profile filter adds the query for its name.
    with django_assert_num_queries(7):
        sysadmin_client.get("/alerts/", {"profile": profile.pk, "severity": "warning"})


def test_the_mailbox_form_links_to_all_its_alerts(readonly_client, alice_mailbox):
    alert(mailbox=alice_mailbox, severity="error", message="Authentication failed.")
    html = readonly_client.get(f"/mailboxes/{alice_mailbox.pk}/").content.decode()
    assert f'<a href="/alerts/?mailbox={alice_mailbox.pk}">All alerts of this mailbox</a>' in html
