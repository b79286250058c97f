"""Parallel guesses against a real server (gunicorn, two processes of eight threads, on
SQLite; the live server on PostgreSQL): each attempt is counted before its password is
checked, in a transaction that locks its counts, so no burst gets more checked than the
limits allow (24 parallel guesses once got 6 checked against a limit of 5)."""

import contextlib
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from urllib.parse import quote

import pytest
from django.db import connection

from tests.fixtures.faults import HttpSession, gunicorn_on, read_form
from tests.test_permissions_login import ADDRESS_REFUSED, LOGIN, WRONG

# serialized_rollback: like the other transactional tests, so the flush after this test
# does not clash with the content types restored by the next one.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def served_with(tmp_path):
    """`served_with(callback, **settings)`: `callback(base_url)` while gunicorn (two
    processes of eight threads) serves the test's data with `settings` in its environment.
    On SQLite the database is copied to a file for it (see the `served_site` fixture); on
    PostgreSQL it uses the test database itself (this test's writes are committed)."""

    def serve(callback, **overrides):
        environment = {name: str(value) for name, value in overrides.items()}
        path = tmp_path / "served.sqlite3"
        if connection.vendor == "sqlite":
            connection.ensure_connection()
            with contextlib.closing(sqlite3.connect(path)) as file_db:
                connection.connection.backup(file_db)
        else:
            database = connection.settings_dict
            credentials = f"{quote(database['USER'])}:{quote(database['PASSWORD'])}"
            location = f"{database['HOST']}:{database['PORT']}/{database['NAME']}"
            environment["DATABASE_URL"] = f"postgres://{credentials}@{location}"
        with gunicorn_on(path, **environment) as base_url:
            return callback(base_url)

    return serve


def guess_in_parallel(base_url: str, attempts: list[tuple[str, str]]) -> tuple[list[str], float]:
    """Each (user name, forwarded address) posted at the same moment from its own session;
    the replies, and how many seconds the burst took."""
    sessions = []
    for _ in attempts:
        session = HttpSession(base_url)
        form = read_form(session.get(LOGIN).body, containing="csrfmiddlewaretoken")
        sessions.append((session, form))
    barrier = Barrier(len(attempts))

    def guess(index: int) -> str:
        session, form = sessions[index]
        username, forwarded_for = attempts[index]
        barrier.wait()
        data = {**form, "username": username, "password": "wrong"}
        return session.request("POST", LOGIN, data, headers={"X-Forwarded-For": forwarded_for}).body

    started = time.monotonic()
    with ThreadPoolExecutor(len(attempts)) as pool:
        replies = list(pool.map(guess, range(len(attempts))))
    return replies, time.monotonic() - started


def test_thirty_parallel_guesses_from_one_address_get_exactly_the_limit_checked(served_with, sysadmin):
    attempts = [(f"guess{number}", "203.0.113.5") for number in range(30)]

    replies, _ = served_with(lambda url: guess_in_parallel(url, attempts), TRUSTED_PROXY_COUNT=1)

    assert sum(WRONG in reply for reply in replies) == 20
    assert sum(ADDRESS_REFUSED in reply for reply in replies) == 10


def test_twenty_four_parallel_guesses_of_one_user_name_get_at_most_the_limit_checked(served_with, sysadmin):
    attempts = [("sysadmin", f"203.0.113.{number}") for number in range(24)]

    replies, seconds = served_with(lambda url: guess_in_parallel(url, attempts), TRUSTED_PROXY_COUNT=1)

    # Five without delay; then one more each time a delay (1, 2, 4 … s) ran out during the burst.
    expired, total, delay = 0, 0, 1
    while total + delay <= seconds:
        total, delay, expired = total + delay, delay * 2, expired + 1
    checked = sum(WRONG in reply for reply in replies)
    assert 5 <= checked <= 5 + expired
    delayed_replies = sum("attempts for this user name. Wait" in reply for reply in replies)
    assert delayed_replies == 24 - checked
