"""Sign-in: Django's login at /accounts/login/, with failed attempts limited.

After LOGIN_FAILURE_LIMIT (5) failures for one username from one address within
LOGIN_FAILURE_WINDOW_SECONDS (15 minutes), further attempts for that pair are refused,
even with the right password, until the window has passed. The counts live in the
configured cache: the database cache, whose table the test database gets too.
"""

import time

import pytest
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
PASSWORD = "Correct-Horse-9"
REFUSED = (
    "Too many failed sign-in attempts for this user name. Sign-in is blocked for a while; "
    "try again later, or ask an administrator."
)


def sign_in(client, username, password, url=LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def test_the_counts_live_in_the_database_cache(client, sysadmin):
    assert isinstance(caches["default"], DatabaseCache)
    sign_in(client, "sysadmin", "wrong")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM mailboxadmin_cache")
        assert cursor.fetchone()[0] == 1


def test_sign_in_with_the_right_password(client, sysadmin):
    response = sign_in(client, "sysadmin", PASSWORD)
    assert signed_in(response)
    assert response.headers["Location"] == "/mailboxes/"


def test_after_five_failures_even_the_right_password_is_refused(client, sysadmin):
    for _ in range(5):
        response = sign_in(client, "sysadmin", "wrong")
        assert "Please enter a correct username and password" in response.content.decode()
    response = sign_in(client, "sysadmin", PASSWORD)
    assert not signed_in(response)
    assert REFUSED in response.content.decode()


def test_other_usernames_and_addresses_are_unaffected(client, sysadmin, manager):
    for _ in range(5):
        sign_in(client, "sysadmin", "wrong")
    assert signed_in(sign_in(Client(), "manager", PASSWORD))
    assert signed_in(sign_in(Client(), "sysadmin", PASSWORD, REMOTE_ADDR="192.0.2.10"))
    assert not signed_in(sign_in(Client(), "SysAdmin", PASSWORD))  # the same name, another case


def test_a_success_before_the_limit_starts_the_count_again(client, sysadmin):
    for _ in range(4):
        sign_in(client, "sysadmin", "wrong")
    assert signed_in(sign_in(Client(), "sysadmin", PASSWORD))
    for _ in range(4):
        sign_in(client, "sysadmin", "wrong")
    assert signed_in(sign_in(Client(), "sysadmin", PASSWORD))


def test_sign_in_is_possible_again_after_the_window(client, sysadmin, settings):
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    for _ in range(5):
        sign_in(client, "sysadmin", "wrong")
    assert not signed_in(sign_in(Client(), "sysadmin", PASSWORD))
    time.sleep(1.1)
    assert signed_in(sign_in(Client(), "sysadmin", PASSWORD))


def test_unknown_usernames_are_limited_too(client):
    for _ in range(5):
        sign_in(client, "nobody", "wrong")
    assert REFUSED in sign_in(client, "nobody", "wrong").content.decode()


def test_the_admin_sign_in_is_limited_the_same_way(client, sysadmin):
    for _ in range(5):
        sign_in(client, "sysadmin", "wrong", url="/admin/login/")
    response = sign_in(client, "sysadmin", PASSWORD, url="/admin/login/?next=/admin/")
    assert REFUSED in response.content.decode()


def test_sign_out_is_a_post(sysadmin_client):
    response = sysadmin_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert sysadmin_client.get("/mailboxes/").status_code == 302
