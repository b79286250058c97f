"""The owner picker's suggestions: /users/autocomplete/."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

URL = "/users/autocomplete/"


def usernames(response) -> list[str]:
    return [user["username"] for user in response.json()["results"]]


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(URL, {"q": "ali"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_staff_without_view_user_is_refused(make_user):
    client = Client()
    client.force_login(make_user(username="staffonly", is_staff=True))
    assert client.get(URL).status_code == 403


def test_non_staff_user_is_refused(make_user):
    client = Client()
    client.force_login(make_user(username="plain"))
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("role_client", ["readonly_client", "manager_client", "sysadmin_client"])
def test_every_role_that_reads_users_gets_suggestions(request, role_client, make_user):
    make_user(username="alice", full_name="Alice Example", email="alice@contoso.test")
    response = request.getfixturevalue(role_client).get(URL, {"q": "ali"})
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"username": "alice", "full_name": "Alice Example", "email": "alice@contoso.test", "active": True}
    ]


def test_suggestions_cannot_be_posted_to(sysadmin_client):
    assert sysadmin_client.post(URL, {"q": "ali"}).status_code == 403


def test_matches_user_name_full_name_or_address_by_prefix(sysadmin_client, make_user):
    make_user(username="alice", full_name="Alice Example", email="alice@contoso.test")
    make_user(username="bob", full_name="Robert Alison", email="bob@contoso.test")
    make_user(username="carol", full_name="Carol Jones", email="alicia.c@fabrikam.test")
    make_user(username="dave", full_name="Dave Malice", email="dave@contoso.test")
    assert usernames(sysadmin_client.get(URL, {"q": "ALI"})) == ["alice", "carol"]
    assert usernames(sysadmin_client.get(URL, {"q": "robert al"})) == ["bob"]
    assert usernames(sysadmin_client.get(URL, {"q": "nobody"})) == []


def test_short_search_matches_whole_values_only(sysadmin_client, make_user):
    make_user(username="al", full_name="Al Short")
    make_user(username="alice")
    assert usernames(sysadmin_client.get(URL, {"q": "al"})) == ["al"]


def test_inactive_users_are_offered_and_marked(sysadmin_client, make_user):
    make_user(username="gone", is_active=False)
    assert sysadmin_client.get(URL, {"q": "gone"}).json()["results"][0]["active"] is False


def test_twenty_at_a_time_in_user_name_order_with_a_next_link(
    sysadmin_client, make_user, django_assert_num_queries
):
    for n in range(25):
        make_user(username=f"picker{n:02d}")
    # 1. the session; 2. the signed-in user; 3-4. their own and group permissions;
    # 5. one page of 21 matching user names (the 21st says there is a next page).
    with django_assert_num_queries(5):
        first = sysadmin_client.get(URL, {"q": "picker"})
    assert usernames(first) == [f"picker{n:02d}" for n in range(20)]
    second = sysadmin_client.get(first.json()["next"])
    assert usernames(second) == [f"picker{n:02d}" for n in range(20, 25)]
    assert second.json()["next"] is None


def test_a_hand_made_cursor_starts_from_the_first_page(sysadmin_client, make_user):
    make_user(username="picker")
    assert usernames(sysadmin_client.get(URL, {"q": "picker", "after": "not-a-cursor"})) == ["picker"]


def test_a_search_no_user_could_match_is_refused_plainly(sysadmin_client):
    assert sysadmin_client.get(URL, {"q": "a\x00b"}).status_code == 400
