"""Sign-in: Django's login at /accounts/login/ (and /admin/login/), with failures limited.

From one client address, across user names, LOGIN_ADDRESS_FAILURE_LIMIT (20) failures
within LOGIN_FAILURE_WINDOW_SECONDS (15 minutes) and that address is refused until the
window has passed. For one user name, across addresses, LOGIN_FAILURE_LIMIT (5) failures
and each further attempt waits 1, 2, 4 … seconds, never more than LOGIN_MAX_DELAY_SECONDS:
a delay, never a lock-out. Refused attempts have their password left unchecked.
"""

import time
from datetime import timedelta

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone

from mailboxadmin import ratelimit
from mailboxadmin.models import LoginFailures

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
PASSWORD = "Correct-Horse-9"
WRONG = "Please enter a correct username and password"
ADDRESS_REFUSED = "Too many failed sign-in attempts from your network address. Try again in 15 minutes."


def delayed(seconds: int) -> str:
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many failed sign-in attempts for this user name. Wait {seconds} {unit}, then try again."


def sign_in(client, username, password, url=LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def from_address(address, username, password="wrong", **extra):
    return sign_in(Client(REMOTE_ADDR=address, **extra), username, password)


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def text(response) -> str:
    return response.content.decode()


def delays_pass():
    """Every user name's delay is over (as if its seconds had passed)."""
    LoginFailures.objects.filter(retry_at__isnull=False).update(retry_at=timezone.now())


def test_sign_in_with_the_right_password(client, sysadmin):
    response = sign_in(client, "sysadmin", PASSWORD)
    assert signed_in(response)
    assert response.headers["Location"] == "/mailboxes/"


def test_the_counts_are_rows_that_name_neither_the_user_nor_the_address(client, sysadmin):
    sign_in(client, "sysadmin", "wrong")

    rows = list(LoginFailures.objects.values_list("scope", "failures", "key"))
    assert sorted((scope, failures) for scope, failures, _ in rows) == [("address", 1), ("username", 1)]
    assert all(len(key) == 64 and "sysadmin" not in key and "127.0.0.1" not in key for *_, key in rows)


@pytest.mark.parametrize("role", ["sysadmin", "manager", "readonly"])
def test_five_failures_delay_the_account_by_a_second_and_never_lock_it(role, request):
    request.getfixturevalue(role)
    username = {"readonly": "reader"}.get(role, role)
    for _ in range(5):
        assert WRONG in text(from_address("192.0.2.1", username))

    refused = from_address("192.0.2.1", username, PASSWORD)
    assert not signed_in(refused)
    assert delayed(1) in text(refused)
    time.sleep(1.05)
    assert signed_in(from_address("192.0.2.1", username, PASSWORD))


def test_the_delay_doubles_up_to_the_maximum(settings):
    settings.LOGIN_MAX_DELAY_SECONDS = 60
    delays = [ratelimit.username_delay(failures) for failures in range(1, 15)]
    assert delays == [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]


def test_a_user_name_guessed_from_one_address_signs_in_from_another_within_the_maximum_delay(
    sysadmin, settings
):
    settings.LOGIN_MAX_DELAY_SECONDS = 1
    for _ in range(15):
        delays_pass()
        from_address("192.0.2.1", "sysadmin")
    assert LoginFailures.objects.get(scope="username").failures == 15

    refused = from_address("198.51.100.7", "sysadmin", PASSWORD)
    assert delayed(1) in text(refused)
    time.sleep(1.05)
    assert signed_in(from_address("198.51.100.7", "sysadmin", PASSWORD))


def test_an_attempt_during_the_delay_is_not_counted_nor_checked(sysadmin):
    for _ in range(5):
        from_address("192.0.2.1", "sysadmin")
    for _ in range(10):
        assert delayed(1) in text(from_address("192.0.2.1", "sysadmin"))
    assert LoginFailures.objects.get(scope="username").failures == 5


def test_a_success_starts_the_user_names_count_again(sysadmin):
    for _ in range(4):
        from_address("192.0.2.1", "sysadmin")
    assert signed_in(from_address("192.0.2.1", "sysadmin", PASSWORD))
    for _ in range(4):
        assert WRONG in text(from_address("192.0.2.1", "sysadmin"))
    assert signed_in(from_address("192.0.2.1", "sysadmin", PASSWORD))


def test_another_case_or_surrounding_space_is_the_same_user_name(sysadmin):
    for username in ["sysadmin", "SysAdmin", " sysadmin", "SYSADMIN ", "sysAdmin"]:
        from_address("192.0.2.1", username)
    assert delayed(1) in text(from_address("192.0.2.2", "sysadmin", PASSWORD))


def test_counts_whose_window_has_passed_are_forgotten(sysadmin):
    from_address("192.0.2.1", "guess1")
    from_address("192.0.2.1", "guess2")
    LoginFailures.objects.update(window_started=timezone.now() - timedelta(hours=1))

    from_address("192.0.2.2", "guess3")

    assert sorted(LoginFailures.objects.values_list("scope", "failures")) == [("address", 1), ("username", 1)]


def test_spraying_thirty_user_names_from_one_address_is_stopped_after_twenty(sysadmin, manager):
    replies = [text(from_address("192.0.2.66", f"guess{number}")) for number in range(30)]

    assert sum(WRONG in reply for reply in replies) == 20
    assert all(ADDRESS_REFUSED in reply for reply in replies[20:])
    assert ADDRESS_REFUSED in text(from_address("192.0.2.66", "sysadmin", PASSWORD))
    assert signed_in(from_address("192.0.2.67", "sysadmin", PASSWORD))
    assert signed_in(from_address("192.0.2.67", "manager", PASSWORD))


def test_signing_in_gives_back_only_the_attempts_own_count(sysadmin):
    for number in range(19):
        from_address("192.0.2.66", f"guess{number}")
    assert signed_in(from_address("192.0.2.66", "sysadmin", PASSWORD))
    assert WRONG in text(from_address("192.0.2.66", "guess19"))
    assert ADDRESS_REFUSED in text(from_address("192.0.2.66", "guess20"))


def test_an_address_may_try_again_after_the_window(sysadmin, settings):
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    for number in range(20):
        from_address("192.0.2.66", f"guess{number}")
    refused = from_address("192.0.2.66", "sysadmin", PASSWORD)
    assert ADDRESS_REFUSED.replace("15 minutes", "1 minute") in text(refused)
    time.sleep(1.1)
    assert signed_in(from_address("192.0.2.66", "sysadmin", PASSWORD))


def test_one_ipv6_client_cannot_escape_by_changing_address_within_its_64(sysadmin):
    for number in range(1, 21):
        from_address(f"2001:db8:0:1::{number:x}", f"guess{number}")
    assert ADDRESS_REFUSED in text(from_address("2001:db8:0:1:ffff::9", "sysadmin", PASSWORD))
    assert signed_in(from_address("2001:db8:0:2::1", "sysadmin", PASSWORD))


def test_x_forwarded_for_is_ignored_without_trusted_proxies(sysadmin, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    for number in range(20):
        from_address("192.0.2.66", f"guess{number}", HTTP_X_FORWARDED_FOR=f"203.0.113.{number}")
    reply = from_address("192.0.2.66", "sysadmin", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert ADDRESS_REFUSED in text(reply)


def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own(sysadmin, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.5"
    for number in range(20):
        from_address(proxy, f"guess{number}", HTTP_X_FORWARDED_FOR="203.0.113.5")

    same_client = from_address(proxy, "sysadmin", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert ADDRESS_REFUSED in text(same_client)
    # The client wrote the left entry itself; the proxy appended the address it saw.
    forged = from_address(proxy, "sysadmin", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5")
    assert ADDRESS_REFUSED in text(forged)
    assert signed_in(from_address(proxy, "sysadmin", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6"))


@pytest.mark.parametrize(
    ("count", "forwarded_for", "expected"),
    [
        (0, "203.0.113.5", "10.0.0.5"),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "198.51.100.1, 203.0.113.5", "203.0.113.5"),
        (2, "198.51.100.1, 203.0.113.5, 10.0.0.9", "203.0.113.5"),
        (2, "203.0.113.5", "10.0.0.5"),  # fewer entries than proxies: not through them all
        (1, "", "10.0.0.5"),
        (1, "not-an-address", "10.0.0.5"),
        (1, "2001:DB8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_is_read_from_the_right_of_x_forwarded_for(
    settings, count, forwarded_for, expected
):
    settings.TRUSTED_PROXY_COUNT = count
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded_for)
    assert ratelimit.client_address(request) == expected


def test_unknown_user_names_are_delayed_too(client):
    for _ in range(5):
        sign_in(client, "nobody", "wrong")
    assert delayed(1) in text(sign_in(client, "nobody", "wrong"))


def test_the_admin_sign_in_is_limited_the_same_way(client, sysadmin):
    for _ in range(5):
        sign_in(client, "sysadmin", "wrong", url="/admin/login/")
    response = sign_in(client, "sysadmin", PASSWORD, url="/admin/login/?next=/admin/")
    assert delayed(1) in text(response)


def test_a_form_without_a_password_is_not_counted(client, sysadmin):
    for _ in range(30):
        assert "This field is required." in text(sign_in(client, "sysadmin", ""))
    assert not LoginFailures.objects.exists()
    assert signed_in(sign_in(client, "sysadmin", PASSWORD))


def test_sign_out_is_a_post(sysadmin_client):
    response = sysadmin_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert sysadmin_client.get("/mailboxes/").status_code == 302
