"""Hostile input on every form and list page: never a 500, never a partial write, and
every error shown where it belongs.

Hypothesis takes the data a browser would post for a form and changes a few values:
any text (NUL and control characters included), HTML and SQL fragments, huge strings,
numbers out of every range, several values where one is expected, fields left out,
fields nobody asked for. Each example runs in a transaction of its own that is rolled
back afterwards, so examples never see each other's writes.

A request is handled when it
- saves (a redirect), or
- is refused (200 with the form, or 409 for a stale version) and the database holds
  exactly what it held before (history included), and every error is either on a field
  of the form or a message for the whole form, and is shown on the page.
"""

import html
import re

import pytest
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import transaction
from hypothesis import example, given
from hypothesis import strategies as st

from mailboxes.models import Mailbox
from tests.fixtures.faults import hostile_values, hypothesis_settings, snapshot
from tests.fixtures.ui import field_block, page_form_data

pytestmark = pytest.mark.django_db

# Fields no form has; "save_close" is the Save & Close button.
EXTRA_FIELDS = ["kind", "user", "queue", "approval_status", "incoming_status", "id", "pk", "save_close"]


def changes(fields):
    """Up to four changes: a field left out (None), one hostile value, or several."""
    value = st.one_of(hostile_values(), st.lists(hostile_values(), min_size=2, max_size=3))
    return st.dictionaries(
        st.sampled_from(sorted(set(fields) | set(EXTRA_FIELDS))), st.one_of(st.none(), value), max_size=4
    )


def changed(base: dict, edits: dict) -> dict:
    data = dict(base)
    for name, value in edits.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def too_big(request) -> bool:
    from django.conf import settings

    return int(request.META.get("CONTENT_LENGTH") or 0) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def post_and_roll_back(client, url: str, data: dict):
    """POST `data`; return the response and the database before and after it."""
    with transaction.atomic():
        before = snapshot()
        response = client.post(url, data)
        after = snapshot()
        transaction.set_rollback(True)
    return response, before, after


def assert_handled(response, before, after) -> None:
    body = response.content.decode()
    if response.status_code == 400 and too_big(response.wsgi_request):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE before any view runs (the
        # 100,000-character sweep of every field of the server profile form, OAuth fields
        # included, is over 2.5 MB).
        assert after == before
        return
    assert response.status_code in (200, 302, 409), (response.status_code, body[:2000])
    assert "Traceback" not in body
    if response.status_code == 302:
        return
    assert after == before, "a refused request wrote to the database"
    form = response.context["form"]
    if response.status_code == 409:
        assert "was changed by someone else since you opened it" in html.unescape(body)
        return
    assert form.errors, "the form came back without saying what is wrong"
    summary = re.search(r'<div class="form-errors".*?</div>', body, re.S)
    for name, messages in form.errors.items():
        assert name == NON_FIELD_ERRORS or name in form.fields, name
        if name == NON_FIELD_ERRORS or form[name].is_hidden:
            # Shown above the form; an error of a field the user cannot see must say
            # what to do about it.
            where = html.unescape(summary.group(0)) if summary else ""
            if name != NON_FIELD_ERRORS:
                assert all("reload" in message.lower() for message in messages), (name, messages)
        else:
            where = html.unescape(field_block(response, name))
        for message in messages:
            assert message.strip(), f"an empty error for {name}"
            assert message in where, f"the error {message!r} for {name} is not shown where it belongs"


# Besides what Hypothesis draws, every field at once gets each of these (None: left out).
SWEEPS = [
    "\x00",
    "A" * 100_000,
    "<script>alert(1)</script>",
    ["1", "2"],
    None,
    "-1",
    str(2**80),
    "²³",
    "\r\n",
]


def fuzz_form(client, url: str, base: dict, *, examples: int = 40):
    fields = list(base) + ["password", "clear_password"]

    @hypothesis_settings(examples)
    @given(edits=changes(fields))
    def run(edits):
        assert_handled(*post_and_roll_back(client, url, changed(base, edits)))

    for value in SWEEPS:
        run = example(edits=dict.fromkeys(fields, value))(run)
    run()


# The mailbox forms -------------------------------------------------------------------


def test_the_mailbox_form_of_a_user_mailbox_survives_hostile_input(sysadmin_client, make_user, profile):
    mailbox = make_user().mailbox
    url = f"/mailboxes/{mailbox.pk}/"
    fuzz_form(sysadmin_client, url, page_form_data(sysadmin_client, url, server_profile=profile.pk))


def test_the_mailbox_form_of_a_forward_mailbox_survives_hostile_input(sysadmin_client, make_forward_mailbox):
    url = f"/mailboxes/{make_forward_mailbox().pk}/"
    fuzz_form(sysadmin_client, url, page_form_data(sysadmin_client, url))


def test_new_forward_mailbox_survives_hostile_input(sysadmin_client, profile):
    url = "/mailboxes/new-forward/"
    base = page_form_data(
        sysadmin_client, url, name="Fuzzed", email="fuzzed@example.test", server_profile=profile.pk
    )
    fuzz_form(sysadmin_client, url, base)


# The server profile forms ------------------------------------------------------------


def test_the_server_profile_form_survives_hostile_input(sysadmin_client, profile, make_user):
    profile.owner = make_user()
    url = f"/serverprofiles/{profile.pk}/"
    base = page_form_data(sysadmin_client, url)
    fuzz_form(sysadmin_client, url, {**base, "incoming_password": "", "outgoing_password": ""})


def test_new_server_profile_survives_hostile_input(sysadmin_client):
    url = "/serverprofiles/new/"
    base = page_form_data(
        sysadmin_client,
        url,
        name="Fuzzed IMAP",
        server_type="imap-smtp",
        incoming_server="imap.example.test",
        outgoing_server="smtp.example.test",
        incoming_auth="user-credentials",
    )
    fuzz_form(sysadmin_client, url, base)


# The other forms -------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["user", "new user", "queue", "new queue", "settings"])
def test_the_user_queue_and_settings_forms_survive_hostile_input(
    sysadmin_client, make_user, make_queue, profile, page
):
    url, values = {
        "user": (f"/users/{make_user().pk}/", {}),
        "new user": ("/users/new/", {"username": "fuzzed", "email": "fuzzed@example.test"}),
        "queue": (f"/queues/{make_queue().pk}/", {}),
        "new queue": (
            "/queues/new/",
            {"name": "Fuzzed", "email": "fuzzq@example.test", "owner": make_user().username},
        ),
        "settings": ("/settings/email/", {}),
    }[page]
    fuzz_form(sysadmin_client, url, page_form_data(sysadmin_client, url, **values), examples=20)


# The list pages --------------------------------------------------------------------------

LIST_PARAMETERS = ["q", "sort", "view", "profile", "after", "before"]


def cursors():
    """Page cursors as the pages make them (base64 JSON), holding values of any type."""
    from mailboxadmin.paginator import encode_cursor

    value = st.one_of(
        st.integers(min_value=-(2**80), max_value=2**80), hostile_values(), st.none(), st.booleans()
    )
    return st.builds(encode_cursor, st.lists(value, min_size=1, max_size=3))


@pytest.mark.parametrize("url", ["/mailboxes/", "/serverprofiles/", "/users/", "/queues/"])
def test_list_pages_survive_hostile_query_strings(sysadmin_client, make_user, make_forward_mailbox, url):
    make_user()
    make_forward_mailbox()
    value = st.one_of(hostile_values(), cursors(), st.lists(hostile_values(), min_size=2, max_size=3))

    @hypothesis_settings(max_examples=25)
    @given(params=st.dictionaries(st.sampled_from(LIST_PARAMETERS), value, min_size=1, max_size=4))
    def run(params):
        response = sysadmin_client.get(url, params)
        assert response.status_code in (200, 400), response.status_code
        assert "Traceback" not in response.content.decode()

    for sweep in list_sweeps():
        run = example(params=sweep)(run)
    run()


def list_sweeps() -> list[dict]:
    """Every parameter at once with each of these; cursors of every shape on their own."""
    from mailboxadmin.paginator import encode_cursor

    sweeps = [
        dict.fromkeys(LIST_PARAMETERS, value)
        for value in ["\x00", "a\x00b", "²³", str(2**80), "-1", "A" * 100_000, ["1", "2"]]
    ]
    for values in (["\x00", 1], ["a", "b"], [1, 2], [2**80, 2**80], ["x@example.test"], [2**80], ["a\x00"]):
        cursor = encode_cursor(values)
        sweeps += [{"after": cursor}, {"before": cursor}, {"after": cursor, "sort": "-email"}]
    return sweeps


# Addresses of records ------------------------------------------------------------------

HUGE_ID = str(2**80)


@pytest.mark.parametrize(
    "url",
    [
        f"/mailboxes/{HUGE_ID}/",
        f"/users/{HUGE_ID}/",
        f"/queues/{HUGE_ID}/",
        f"/serverprofiles/{HUGE_ID}/",
        f"/serverprofiles/{HUGE_ID}/delete/",
        f"/serverprofiles/{HUGE_ID}/commands/",
        f"/admin/mailboxes/mailbox/{HUGE_ID}/change/",
        f"/admin/serverprofiles/emailserverprofile/{HUGE_ID}/change/",
        "/admin/mailboxes/mailbox/%00/change/",
    ],
)
def test_an_id_past_every_range_is_not_found(sysadmin_client, url):
    for response in (sysadmin_client.get(url), sysadmin_client.post(url, {"name": "x"})):
        assert response.status_code in (302, 404, 405), (url, response.status_code)


# The admin's change forms ----------------------------------------------------------------


def assert_admin_handled(response, url: str, before, after) -> None:
    body = response.content.decode()
    assert response.status_code in (200, 302), (response.status_code, body[:2000])
    assert "Traceback" not in body
    if response.status_code == 302:
        if response.url.split("?")[0] == url:  # a stale edit, refused: back to the form
            assert after == before, "a refused stale edit wrote to the database"
        return
    assert after == before, "a refused request wrote to the database"
    form = response.context["adminform"].form
    assert form.errors, "the form came back without saying what is wrong"
    shown = html.unescape(body)
    for name, messages in form.errors.items():
        assert name == NON_FIELD_ERRORS or name in form.fields, name
        # The admin hides the row of a hidden input, and its errors with it.
        assert name == NON_FIELD_ERRORS or not form[name].is_hidden, (name, messages)
        for message in messages:
            assert message.strip(), f"an empty error for {name}"
            assert message in shown, f"the error {message!r} for {name} is not on the page"


def fuzz_admin_form(client, url: str):
    from tests.fixtures.admin import changeform_data

    base = changeform_data(client.get(url))

    @hypothesis_settings(max_examples=20)
    @given(edits=changes(list(base) + ["password", "clear_password"]))
    def run(edits):
        data = changed(base, edits)
        data.pop("_continue", None)
        with transaction.atomic():
            before = snapshot()
            response = client.post(url, data)
            after = snapshot()
            transaction.set_rollback(True)
        assert_admin_handled(response, url, before, after)

    for value in SWEEPS:
        run = example(edits=dict.fromkeys(base, value))(run)
    run()


@pytest.mark.parametrize("model", ["mailbox", "profile", "user", "queue", "settings"])
def test_the_admin_change_forms_survive_hostile_input(
    sysadmin_client, make_forward_mailbox, profile, make_user, make_queue, org, model
):
    url = {
        "mailbox": lambda: f"/admin/mailboxes/mailbox/{make_forward_mailbox().pk}/change/",
        "profile": lambda: f"/admin/serverprofiles/emailserverprofile/{profile.pk}/change/",
        "user": lambda: f"/admin/mailboxes/user/{make_user().pk}/change/",
        "queue": lambda: f"/admin/mailboxes/queue/{make_queue().pk}/change/",
        "settings": lambda: f"/admin/mailboxes/organizationsettings/{org.pk}/change/",
    }[model]()
    fuzz_admin_form(sysadmin_client, url)


# What the fuzzing found, one behaviour each ------------------------------------------


@pytest.mark.parametrize("url", ["/mailboxes/", "/serverprofiles/", "/users/", "/queues/"])
def test_a_search_holding_a_nul_is_refused_with_the_reason(sysadmin_client, url):
    response = sysadmin_client.get(url, {"q": "alice\x00"})

    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_a_search_longer_than_anything_it_could_find_is_refused_with_the_reason(sysadmin_client):
    response = sysadmin_client.get("/mailboxes/", {"q": "a" * 60_000})

    assert response.status_code == 400
    assert "Shorten it" in response.content.decode()


@pytest.mark.parametrize("values", [["Alice", "not-an-id"], ["\x00", 1], [2**80, 2**80]])
def test_a_page_cursor_that_fits_no_row_shows_the_first_page(sysadmin_client, make_user, values):
    from mailboxadmin.paginator import encode_cursor

    make_user("alice")
    response = sysadmin_client.get("/mailboxes/", {"view": "all", "after": encode_cursor(values)})

    assert response.status_code == 200
    assert "alice@example.test" in response.content.decode()


def test_a_profile_filter_in_other_digits_is_ignored(sysadmin_client, make_user):
    make_user("alice")
    response = sysadmin_client.get("/mailboxes/", {"view": "all", "profile": "²"})

    assert response.status_code == 200
    assert "alice@example.test" in response.content.decode()


def test_a_form_that_lost_its_version_says_to_reload_the_page(sysadmin_client, make_forward_mailbox):
    mailbox = make_forward_mailbox()
    url = f"/mailboxes/{mailbox.pk}/"
    data = page_form_data(sysadmin_client, url, version=None, name="Changed")

    response = sysadmin_client.post(url, data)

    assert response.status_code == 200
    assert "Reload the page and make your changes again." in html.unescape(response.content.decode())
    assert Mailbox.objects.get(pk=mailbox.pk).name != "Changed"


def test_an_admin_form_with_a_mangled_version_says_to_reload_above_the_form(
    sysadmin_client, make_forward_mailbox
):
    from tests.fixtures.admin import changeform_data

    url = f"/admin/mailboxes/mailbox/{make_forward_mailbox().pk}/change/"
    data = {**changeform_data(sysadmin_client.get(url)), "expected_version": "x"}

    response = sysadmin_client.post(url, data)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.non_field_errors()) == [
        "This form was damaged on its way back (its record version is missing or wrong). "
        "Reload the page and make your changes again."
    ]


@pytest.mark.parametrize("value", ["not-an-id", str(2**80)])
def test_the_admin_shows_a_profile_that_is_no_id_again_as_an_error(
    sysadmin_client, make_forward_mailbox, value
):
    from tests.fixtures.admin import changeform_data

    url = f"/admin/mailboxes/mailbox/{make_forward_mailbox().pk}/change/"
    data = {**changeform_data(sysadmin_client.get(url)), "server_profile": value}

    response = sysadmin_client.post(url, data)

    assert response.status_code == 200
    assert "server_profile" in response.context["adminform"].form.errors


def test_the_admin_refuses_a_group_id_past_every_range(sysadmin_client, make_user):
    from tests.fixtures.admin import changeform_data

    url = f"/admin/mailboxes/user/{make_user().pk}/change/"
    data = {**changeform_data(sysadmin_client.get(url)), "groups": [str(2**80)]}

    response = sysadmin_client.post(url, data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["groups"] == [f"“{2**80}” is not a valid value."]


def test_the_admin_takes_a_new_password_when_there_is_none_to_clear(sysadmin_client, make_forward_mailbox):
    """The admin shows "Clear password" only when one is stored; a posted value for it
    must not refuse the save with an error on a field that is not on the page."""
    from tests.fixtures.admin import changeform_data

    mailbox = make_forward_mailbox()
    url = f"/admin/mailboxes/mailbox/{mailbox.pk}/change/"
    data = {
        **changeform_data(sysadmin_client.get(url)),
        **{"allow_credentials": "on", "username": "fwd", "password": "New-Secret-1", "clear_password": "on"},
    }

    response = sysadmin_client.post(url, data)

    assert response.status_code == 302
    assert Mailbox.objects.get(pk=mailbox.pk).get_password() == "New-Secret-1"
