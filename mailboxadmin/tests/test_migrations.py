"""`migrate` alone sets up everything the site needs, the database cache's table included
(it once needed `createcachetable` as a step of its own, and signing in then failed with
"no such table: mailboxadmin_cache")."""

from tests.fixtures.faults import run_manage, sqlite_env

SIGN_IN = """
from django.core.cache import cache
from django.test import Client
from mailboxes.services.users import user_create

user_create(username="first", email="first@example.test", full_name="First", is_staff=True,
            password="Correct-Horse-9")
for password in ("wrong", "Correct-Horse-9"):
    response = Client(HTTP_HOST="localhost").post(
        "/accounts/login/", {"username": "first", "password": password}, secure=True
    )
    print(response.status_code, response.headers.get("Location", "-"))
cache.set("migrated", "yes")
print(cache.get("migrated"))
"""


def test_migrate_alone_leaves_a_site_where_signing_in_works(tmp_path):
    env = sqlite_env(tmp_path / "fresh.sqlite3")
    migrated = run_manage("migrate", "--noinput", "-v0", env=env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr

    signed_in = run_manage("shell", "--no-imports", "-c", SIGN_IN, env=env)

    assert signed_in.returncode == 0, signed_in.stderr
    assert signed_in.stdout.splitlines() == ["200 -", "302 /mailboxes/", "yes"]


def test_migrating_a_database_whose_cache_table_exists_keeps_it(tmp_path):
    env = sqlite_env(tmp_path / "older.sqlite3")
    assert run_manage("createcachetable", env=env).returncode == 0
    migrated = run_manage("migrate", "--noinput", "-v0", env=env, timeout=120)

    assert migrated.returncode == 0, migrated.stderr
    assert run_manage("shell", "--no-imports", "-c", SIGN_IN, env=env).stdout.splitlines()[-1] == "yes"
