"""The mailbox list (/mailboxes/): saved views, search, sorting, keyset pages, row commands."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailboxes.models import ApprovalStatus, Mailbox, choices
from mailboxes.models.mailboxes import M15_WARNING
from tests.fixtures.ui import page_messages

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    return [mailbox.name for mailbox in response.context["page"]]


def bulk_forward_mailboxes(profile, count, **fields):
    """Many valid forward mailboxes at once (test data for paging; no rule is at stake)."""
    Mailbox.objects.bulk_create(
        Mailbox(
            kind=Mailbox.Kind.FORWARD,
            name=f"Box {i:04d}",
            email=f"box{i:04d}@example.test",
            server_profile=profile,
            incoming_method="server-side-sync",
            **fields,
        )
        for i in range(count)
    )


def test_list_shows_the_columns(sysadmin_client, make_user):
    make_user(full_name="Alice Example", email="alice@example.test")
    html = sysadmin_client.get("/mailboxes/").content.decode()
    for column in [
        "Name",
        "Email address",
        "Regarding",
        "Server Profile",
        "Incoming Email",
        "Outgoing Email",
        "Appointments, Contacts, and Tasks",
        "Incoming/Outgoing Status",
        "Appointments, Contacts, and Tasks Status",
        "Email Address Status",
        "Status",
    ]:
        assert re.search(rf"<th>(<a [^>]*>)?{re.escape(column)}( <span|</a>|</th>)", html), column
    assert "alice@example.test" in html
    assert ">Alice Example</a>" in html


def test_list_shows_each_mailboxs_appointments_contacts_and_tasks_status(sysadmin_client, make_user):
    failed, passed = make_user(full_name="Failed Act"), make_user(full_name="Passed Act")
    Mailbox.objects.filter(pk=failed.mailbox.pk).update(act_status=choices.TestStatus.FAILURE)
    Mailbox.objects.filter(pk=passed.mailbox.pk).update(act_status=choices.TestStatus.SUCCESS)
    html = sysadmin_client.get("/mailboxes/", {"view": "all"}).content.decode()
    for name, status, label in [("Failed Act", "failure", "Failure"), ("Passed Act", "success", "Success")]:
        row = re.search(rf">{name}</a>.*?</tr>", html, re.S).group(0)
        assert f'<td><span class="status status--{status}">{label}</span></td>' in row


def test_rows_link_to_each_mailbox_and_its_user_or_queue(sysadmin_client, make_user, make_queue):
    user, queue = make_user(full_name="Alice Example"), make_queue(name="Support")
    html = sysadmin_client.get("/mailboxes/").content.decode()
    for mailbox, regarding in [(user.mailbox, user), (queue.mailbox, queue)]:
        # The links are formatted from one reverse() per page: the same URLs as reverse().
        assert f'<a href="{mailbox.get_absolute_url()}">{mailbox.name}</a>' in html
        assert f'<a href="{regarding.get_absolute_url()}">{regarding}</a>' in html


def test_list_offers_new_forward_mailbox(sysadmin_client):
    html = sysadmin_client.get("/mailboxes/").content.decode()
    assert '<a class="btn btn--primary" href="/mailboxes/new-forward/">New Forward Mailbox</a>' in html


# Saved views --------------------------------------------------------------------------


@pytest.fixture
def assorted(make_user, make_queue, make_forward_mailbox, org):
    """One mailbox for each saved view (besides those every view shares)."""
    active_user = make_user(full_name="Active user").mailbox
    inactive_user = make_user(full_name="Inactive user", is_active=False).mailbox
    queue = make_queue(name="Support queue").mailbox
    forward = make_forward_mailbox(name="Forward box")
    failed = make_user(full_name="Failed user").mailbox
    Mailbox.objects.filter(pk=failed.pk).update(outgoing_status=choices.TestStatus.FAILURE)
    Mailbox.objects.filter(pk__in=[active_user.pk, forward.pk, failed.pk]).update(
        approval_status=ApprovalStatus.EMPTY
    )
    Mailbox.objects.filter(pk=active_user.pk).update(approval_status=ApprovalStatus.APPROVED)
    return {"active": active_user, "inactive": inactive_user, "queue": queue, "forward": forward}


@pytest.mark.parametrize(
    ("view", "label", "expected"),
    [
        (None, "Active Mailboxes", ["Active user", "Failed user", "Forward box", "Support queue"]),
        ("active", "Active Mailboxes", ["Active user", "Failed user", "Forward box", "Support queue"]),
        ("forward", "Forward Mailboxes", ["Forward box"]),
        ("pending", "Pending Approval", ["Inactive user", "Support queue"]),
        ("failed", "Failed Tests", ["Failed user"]),
        ("inactive", "Inactive Mailboxes", ["Inactive user"]),
        (
            "all",
            "All Mailboxes",
            ["Active user", "Failed user", "Forward box", "Inactive user", "Support queue"],
        ),
    ],
)
def test_saved_views(sysadmin_client, assorted, view, label, expected):
    response = sysadmin_client.get("/mailboxes/", {"view": view} if view else {})
    # Only the fixture's mailboxes (the signed-in user and queue owners have theirs too).
    ours = {mailbox.name for mailbox in Mailbox.objects.filter(pk__in=[m.pk for m in assorted.values()])}
    ours.add("Failed user")
    assert [name for name in names(response) if name in ours] == expected
    assert f'aria-current="page">{label}</a>' in response.content.decode()


# Search and sorting ----------------------------------------------------------------------


def test_search_by_name_or_address_prefix_ignoring_case(sysadmin_client, make_forward_mailbox):
    make_forward_mailbox(name="Sales collection", email="collect-sales@example.test")
    make_forward_mailbox(name="Support collection", email="collect-support@example.test")
    make_forward_mailbox(name="Archive", email="archive@example.test")
    assert names(sysadmin_client.get("/mailboxes/", {"q": "sup"})) == ["Support collection"]
    assert names(sysadmin_client.get("/mailboxes/", {"q": "COLLECT-"})) == [
        "Sales collection",
        "Support collection",
    ]
    assert names(sysadmin_client.get("/mailboxes/", {"q": "nothing"})) == []


def test_sorting_by_name_and_address_both_ways(sysadmin_client, make_forward_mailbox):
    make_forward_mailbox(name="B", email="c@example.test")
    make_forward_mailbox(name="A", email="d@example.test")
    make_forward_mailbox(name="C", email="b@example.test")

    def sorted_by(sort):
        return names(sysadmin_client.get("/mailboxes/", {"view": "forward", "sort": sort}))

    assert sorted_by("name") == ["A", "B", "C"]
    assert sorted_by("-name") == ["C", "B", "A"]
    assert sorted_by("email") == ["C", "B", "A"]
    assert sorted_by("-email") == ["A", "B", "C"]
    assert sorted_by("owner") == ["A", "B", "C"]  # not a sortable column: by name


def test_profile_filter_lists_the_mailboxes_of_one_profile(
    sysadmin_client, make_forward_mailbox, make_profile
):
    other = make_profile()
    make_forward_mailbox(name="On other", server_profile=other)
    make_forward_mailbox(name="On default")
    response = sysadmin_client.get("/mailboxes/", {"view": "all", "profile": other.pk})
    assert names(response) == ["On other"]


# Pages -------------------------------------------------------------------------------------


def follow_link(client, response, rel):
    link = response.context[f"{rel}_link"]
    assert link, f"no {rel} link"
    return client.get("/mailboxes/" + link)


def test_keyset_pages_walk_forward_and_back_without_counting(sysadmin_client, profile):
    bulk_forward_mailboxes(profile, 120)
    with CaptureQueriesContext(connection) as queries:
        first = sysadmin_client.get("/mailboxes/", {"view": "forward"})
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert names(first)[0] == "Box 0000"
    assert len(names(first)) == 50
    assert not first.context["previous_link"]

    second = follow_link(sysadmin_client, first, "next")
    assert names(second) == [f"Box {i:04d}" for i in range(50, 100)]
    third = follow_link(sysadmin_client, second, "next")
    assert names(third) == [f"Box {i:04d}" for i in range(100, 120)]
    assert not third.context["next_link"]

    back = follow_link(sysadmin_client, third, "previous")
    assert names(back) == names(second)
    assert names(follow_link(sysadmin_client, back, "previous")) == names(first)
    assert names(follow_link(sysadmin_client, back, "first")) == names(first)


def test_pages_keep_the_sort_descending(sysadmin_client, profile):
    bulk_forward_mailboxes(profile, 60)
    first = sysadmin_client.get("/mailboxes/", {"view": "forward", "sort": "-email"})
    second = follow_link(sysadmin_client, first, "next")
    assert names(second) == [f"Box {i:04d}" for i in range(9, -1, -1)]


def test_pages_stay_ordered_when_names_repeat(sysadmin_client, profile):
    Mailbox.objects.bulk_create(
        Mailbox(
            kind=Mailbox.Kind.FORWARD,
            name="Same name",
            email=f"same{i}@example.test",
            server_profile=profile,
        )
        for i in range(75)
    )
    first = sysadmin_client.get("/mailboxes/", {"view": "forward"})
    second = follow_link(sysadmin_client, first, "next")
    ids = [m.pk for m in first.context["page"]] + [m.pk for m in second.context["page"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 75


def test_a_mangled_cursor_shows_the_first_page(sysadmin_client, make_forward_mailbox):
    make_forward_mailbox(name="Only")
    assert names(sysadmin_client.get("/mailboxes/", {"view": "forward", "after": "not-a-cursor"})) == ["Only"]
    assert names(sysadmin_client.get("/mailboxes/", {"view": "forward", "before": "WzFd"})) == ["Only"]


def test_list_page_runs_a_fixed_number_of_queries(
    sysadmin_client, django_assert_num_queries, make_user, make_queue, make_forward_mailbox, org
):
    for _ in range(10):
        make_user()
        make_queue()
        make_forward_mailbox()
    # 1. the session
    # 2. the signed-in user
    # 3. the user's own permissions
    # 4. the permissions of the user's groups
    # 5. the page of mailboxes, with their user, queue and server profile (one JOIN query)
    # 6. the first-run guide: the email settings row with five EXISTS
    with django_assert_num_queries(6):
        response = sysadmin_client.get("/mailboxes/", {"view": "all"})
    assert len(response.context["page"]) >= 30


def test_whether_a_forward_mailbox_can_be_used_is_one_entry_of_an_index(
    sysadmin_client, profile, make_forward_mailbox
):
    # Every list page asks whether a usable forward mailbox exists (M14). The partial index
    # mailbox_usable_forward answers it; its condition must be the query's, or PostgreSQL
    # weighs a scan of the table, which at a million mailboxes read them all (230 ms) after
    # an unlucky ANALYZE.
    index = next(i for i in Mailbox._meta.indexes if i.name == "mailbox_usable_forward")
    usable = make_forward_mailbox(server_profile=profile)
    inactive = make_forward_mailbox(server_profile=profile)
    Mailbox.objects.filter(pk=inactive.pk).update(state=Mailbox.State.INACTIVE)
    assert set(Mailbox.objects.filter(index.condition)) == set(Mailbox.objects.usable_forward_targets())
    assert set(Mailbox.objects.usable_forward_targets()) == {usable}

    with CaptureQueriesContext(connection) as queries:
        sysadmin_client.get("/mailboxes/")
    page = next(q["sql"] for q in queries if "usable_forward_target_exists" in q["sql"])
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # A test table is small enough that reading it whole wins: forbid that to see
        # which index the planner takes on a large one.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using mailbox_usable_forward" in plan, plan


# M15 ---------------------------------------------------------------------------------------


def test_list_warns_about_mailboxes_that_will_not_be_processed(sysadmin_client, make_user):
    mailbox = make_user(full_name="No profile").mailbox
    Mailbox.objects.filter(pk=mailbox.pk).update(server_profile=None, incoming_method="server-side-sync")
    html = sysadmin_client.get("/mailboxes/").content.decode()
    assert f'title="{M15_WARNING}"' in html
    assert "⚠ Not processed: no server profile" in html


# Commands on selected rows -----------------------------------------------------------------


def command(client, name, *mailboxes, next_url="/mailboxes/"):
    return client.post(
        "/mailboxes/commands/",
        {"command": name, "selected": [m.pk for m in mailboxes], "next": next_url},
        follow=True,
    )


def test_list_offers_the_commands_for_selected_rows(sysadmin_client, make_forward_mailbox):
    make_forward_mailbox()
    html = sysadmin_client.get("/mailboxes/").content.decode()
    for value, label in [
        ("approve", "Approve Email"),
        ("reject", "Reject Email"),
        ("apply-defaults", "Apply Default Email Settings"),
        ("deactivate", "Deactivate"),
        ("activate", "Activate"),
    ]:
        assert f'form="mailbox-rows" name="command" value="{value}" class="btn">{label}</button>' in html
    assert re.search(r'<input type="checkbox" name="selected" value="\d+"', html)


def test_deactivate_and_activate_selected_rows(sysadmin_client, make_forward_mailbox):
    first, second, untouched = make_forward_mailbox(), make_forward_mailbox(), make_forward_mailbox()
    response = command(sysadmin_client, "deactivate", first, second)
    assert response.redirect_chain == [("/mailboxes/", 302)]
    assert page_messages(response) == ["2 mailboxes deactivated."]
    states = dict(Mailbox.objects.values_list("pk", "state"))
    assert (states[first.pk], states[second.pk], states[untouched.pk]) == ("inactive", "inactive", "active")
    assert page_messages(command(sysadmin_client, "activate", first)) == ["1 mailbox activated."]
    assert Mailbox.objects.get(pk=first.pk).state == "active"


def test_a_refusal_is_reported_per_mailbox_and_the_others_go_ahead(sysadmin_client, make_user):
    """M16: a user's mailbox cannot be active while the user is inactive."""
    inactive = make_user(is_active=False).mailbox
    fine = make_user().mailbox
    Mailbox.objects.filter(pk=fine.pk).update(state="inactive")
    response = command(sysadmin_client, "activate", inactive, fine)
    assert page_messages(response) == [
        f"Activate refused for {inactive.email}: The mailbox cannot be active while its user is inactive.",
        "1 mailbox activated.",
    ]
    assert Mailbox.objects.get(pk=inactive.pk).state == "inactive"
    assert Mailbox.objects.get(pk=fine.pk).state == "active"


def test_approve_and_reject_selected_rows(sysadmin_client, make_user, make_forward_mailbox, org):
    first, second = make_user().mailbox, make_user().mailbox
    forward = make_forward_mailbox()
    response = command(sysadmin_client, "approve", first, second, forward)
    assert page_messages(response) == [
        f"Approve Email refused for {forward.email}: "
        f"{forward.email}: approval does not apply to forward mailboxes.",
        "Email address approved for 2 mailboxes.",
    ]
    assert Mailbox.objects.get(pk=first.pk).approval_status == ApprovalStatus.APPROVED
    command(sysadmin_client, "reject", second)
    assert Mailbox.objects.get(pk=second.pk).approval_status == ApprovalStatus.REJECTED


def test_apply_default_email_settings(sysadmin_client, make_user, make_profile, org):
    mailbox = make_user().mailbox
    exchange_like = make_profile(name="New default")
    org.default_server_profile = exchange_like
    org.default_incoming = "none"
    org.save()
    response = command(sysadmin_client, "apply-defaults", mailbox)
    assert page_messages(response) == ["Default email settings applied to 1 mailbox."]
    mailbox.refresh_from_db()
    assert (mailbox.server_profile, mailbox.incoming_method) == (exchange_like, "none")


def test_command_without_selection_says_so(sysadmin_client):
    response = sysadmin_client.post("/mailboxes/commands/", {"command": "deactivate"}, follow=True)
    assert page_messages(response) == ["Deactivate: select one or more mailboxes first."]


@pytest.mark.parametrize("value", ["²", "9" * 30])
def test_a_selected_value_that_is_no_id_is_ignored_by_the_commands(
    sysadmin_client, make_forward_mailbox, value
):
    mailbox = make_forward_mailbox()
    response = sysadmin_client.post(
        "/mailboxes/commands/", {"command": "deactivate", "selected": [mailbox.pk, value]}, follow=True
    )
    assert page_messages(response) == ["1 mailbox deactivated."]
    assert Mailbox.objects.get(pk=mailbox.pk).state == "inactive"


def test_command_goes_back_only_to_this_site(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox()
    response = sysadmin_client.post(
        "/mailboxes/commands/",
        {"command": "deactivate", "selected": [mailbox.pk], "next": "https://evil.example/"},
    )
    assert response.headers["Location"] == "/mailboxes/"


def test_unknown_command_changes_nothing(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox()
    response = sysadmin_client.post(
        "/mailboxes/commands/", {"command": "delete", "selected": [mailbox.pk]}, follow=True
    )
    assert page_messages(response) == ["Unknown command."]
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()


def test_a_short_search_matches_whole_names_and_addresses(sysadmin_client, make_forward_mailbox):
    """One or two letters would match most of a million rows: they match exactly instead."""
    make_forward_mailbox(name="Bo", email="bo@example.test")
    make_forward_mailbox(name="Bob", email="bob@example.test")
    response = sysadmin_client.get("/mailboxes/", {"view": "forward", "q": "bo"})
    assert names(response) == ["Bo"]
    assert "Type 3 or more characters" in response.content.decode()
    assert names(sysadmin_client.get("/mailboxes/", {"view": "forward", "q": "BO@EXAMPLE.TEST"})) == ["Bo"]
    assert names(sysadmin_client.get("/mailboxes/", {"view": "forward", "q": "bob"})) == ["Bob"]


def test_search_results_page_in_order(sysadmin_client, profile):
    bulk_forward_mailboxes(profile, 70)
    first = sysadmin_client.get("/mailboxes/", {"view": "forward", "q": "box"})
    second = follow_link(sysadmin_client, first, "next")
    assert names(first) + names(second) == [f"Box {i:04d}" for i in range(70)]
    back = follow_link(sysadmin_client, second, "previous")
    assert names(back) == names(first)
    descending = sysadmin_client.get("/mailboxes/", {"view": "forward", "q": "box", "sort": "-name"})
    assert names(follow_link(sysadmin_client, descending, "next")) == [
        f"Box {i:04d}" for i in range(19, -1, -1)
    ]


def test_column_labels_are_the_fields_display_values(make_user):
    from mailboxes.templatetags.mailbox_lists import label

    mailbox = make_user().mailbox
    fields = [f.name for f in Mailbox._meta.concrete_fields if f.choices]
    assert "incoming_status" in fields
    for name in fields:
        assert label(mailbox, name) == getattr(mailbox, f"get_{name}_display")(), name
    mailbox.state = "no-such-state"  # not a choice: shown as stored, as Django does
    assert label(mailbox, "state") == mailbox.get_state_display() == "no-such-state"
