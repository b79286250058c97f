"""A database that goes away: the user gets a plain error, and nothing is half-written.

During a request. A mailbox save writes the mailbox, its user's address (M12) and a
history entry in one transaction; the database goes away just before one of those
writes. On PostgreSQL the server ends the connection (pg_terminate_backend from a
second connection); on SQLite, which has no server to lose, the database stops taking
writes (PRAGMA query_only, as a read-only or full disk would). Either way the statement
fails in the database itself. The user gets the generic error page (DEBUG is off: no
traceback, no SQL), and the transaction leaves no trace.

During a command (PostgreSQL only: SQLite has no connection to cut). apply_config's
backend is terminated once its transaction has written; the command exits 1 with one
line, and nothing of the file is in the database.

Before a command. Whatever the suite's database, each command is run in a process of its
own against a database that is not there (no such folder, a file that is no database,
an empty file, a server that refuses): one line, exit status 1, no traceback, and never
the password of the DATABASE_URL.
"""

import contextlib
import json
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import close_old_connections, connection

from mailboxes.models import User
from tests.fixtures.faults import BASE_DIR, TEST_SETTINGS, free_port, run_manage, snapshot, sqlite_env
from tests.fixtures.ui import page_form_data

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


# Taking the database away ---------------------------------------------------------------


def _terminate(pid: int) -> None:
    """End backend `pid` from a connection of our own, and wait until it is gone."""
    other = connection.get_new_connection(connection.get_connection_params())
    try:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone() is None:
                    return
                time.sleep(0.02)
        raise AssertionError(f"backend {pid} did not end")
    finally:
        other.close()


@contextlib.contextmanager
def database_goes_away_before(statement: str):
    """The database goes away right before the first SQL statement containing `statement`."""
    connection.ensure_connection()
    fired = []

    def take_away():
        if ON_POSTGRESQL:
            _terminate(connection.connection.get_backend_pid())
        else:
            connection.connection.execute("PRAGMA query_only = ON")

    def wrapper(execute, sql, params, many, context):
        if statement in sql and not fired:
            fired.append(sql)
            take_away()
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(wrapper):
            yield fired
    finally:
        if not ON_POSTGRESQL:
            connection.connection.execute("PRAGMA query_only = OFF")
        close_old_connections()  # what Django does after every request: drops a dead connection


# During a request -------------------------------------------------------------------------


@transactional
@pytest.mark.parametrize(
    "statement",
    ['UPDATE "mailboxes_mailbox"', 'UPDATE "mailboxes_user"', 'INSERT INTO "django_admin_log"'],
    ids=["the-mailbox-update", "the-user-update", "the-history-entry"],
)
def test_a_save_when_the_database_goes_away_is_a_plain_error_and_writes_nothing(
    make_user, sysadmin, statement
):
    from django.test import Client

    mailbox = make_user("alice").mailbox
    client = Client(raise_request_exception=False)
    client.force_login(sysadmin)
    url = f"/mailboxes/{mailbox.pk}/"
    data = page_form_data(client, url, email="alice.new@example.test", name="Alice renamed")
    before = snapshot()

    with database_goes_away_before(statement) as fired:
        response = client.post(url, data)

    assert fired, f"the save never reached {statement}"
    assert response.status_code == 500
    body = response.content.decode()
    assert "Server Error (500)" in body
    for leak in ("Traceback", "Error:", "terminat", "readonly", "INSERT", "UPDATE", "mailboxes_"):
        assert leak not in body
    assert snapshot() == before  # no mailbox, user or history change
    assert User.objects.get(pk=mailbox.user_id).email == "alice@example.test"
    # Django drops the dead connection after the request: the next one is served.
    assert client.get(url).status_code == 200


# During a command (PostgreSQL) --------------------------------------------------------------


def _test_database_url(**query) -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"], safe="") + (
        ":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else ""
    )
    where = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return f"postgres://{credentials}@{where}/{db['NAME']}" + (f"?{params}" if params else "")


@transactional
@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has no server connection to cut; see the module doc")
def test_apply_config_cut_off_mid_transaction_exits_1_in_one_line_and_writes_nothing(tmp_path):
    users = [{"username": f"gone{n:04}", "email": f"gone{n:04}@example.test"} for n in range(6000)]
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"users": users}), encoding="utf-8")
    before = snapshot()
    env = {
        **{k: v for k, v in sqlite_env(tmp_path / "unused").items() if k != "DATABASE_URL"},
        "DATABASE_URL": _test_database_url(application_name="faults-apply"),
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "apply_config", str(path)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        victim = _wait_for_a_writing_backend("faults-apply", process)
        _terminate(victim)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr[-2000:]
    assert stderr.startswith("Database error: "), stderr
    assert User.objects.filter(username__startswith="gone").count() == 0
    assert snapshot() == before


def _wait_for_a_writing_backend(application_name: str, process: subprocess.Popen) -> int:
    """The pid of the command's backend once its transaction has written something."""
    watcher = connection.get_new_connection(connection.get_connection_params())
    watcher.autocommit = True
    try:
        with watcher.cursor() as cursor:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE application_name = %s AND backend_xid IS NOT NULL",
                    [application_name],
                )
                row = cursor.fetchone()
                if row:
                    return row[0]
                if process.poll() is not None:
                    raise AssertionError(f"the command ended before it was cut off: {process.stderr.read()}")
                time.sleep(0.01)
    finally:
        watcher.close()
    raise AssertionError("the command never started writing")


# Before a command: no database at all ----------------------------------------------------

URL_PASSWORD = "Url-Secret-4711"


def unreachable(kind: str, tmp_path) -> tuple[str, str]:
    """(DATABASE_URL, what the error says) for a database that is not there."""
    if kind == "no-such-folder":
        return f"sqlite:///{tmp_path}/missing/db.sqlite3", "unable to open database file"
    if kind == "not-a-database":
        path = tmp_path / "garbage.sqlite3"
        path.write_bytes(b"this is no database\n" * 500)
        return f"sqlite:///{path}", "file is not a database"
    if kind == "empty-database":
        path = tmp_path / "empty.sqlite3"
        path.touch()
        return f"sqlite:///{path}", "no such table"
    if kind == "server-refuses":
        return f"postgres://admin:{URL_PASSWORD}@127.0.0.1:{free_port()}/mailboxadmin", "Connection refused"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        (["export_config"], "no-such-folder"),
        (["test_mailboxes", "--all"], "server-refuses"),
        (["approve_mailboxes", "--all-pending"], "not-a-database"),
        (["apply_config", "CONFIG"], "empty-database"),
        (["rotate_encryption_keys", "--dry-run"], "server-refuses"),
        (
            ["create_server_profile", "--name", "P", "--server-type", "imap-smtp"]
            + ["--incoming-server", "imap.example.test", "--outgoing-server", "smtp.example.test"],
            "not-a-database",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else value[0],
)
def test_a_command_without_its_database_exits_1_with_one_line(tmp_path, command, kind):
    config = tmp_path / "config.json"
    config.write_text('{"users": [{"username": "alice", "email": "alice@example.test"}]}', encoding="utf-8")
    url, says = unreachable(kind, tmp_path)
    env = {**sqlite_env(tmp_path / "unused"), "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": TEST_SETTINGS}

    done = run_manage(*[str(config) if arg == "CONFIG" else arg for arg in command], env=env)

    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("Database error: ") and says in lines[0], lines[0]
    assert URL_PASSWORD not in done.stdout + done.stderr


def test_traceback_still_shows_the_traceback(tmp_path):
    env = {**sqlite_env(tmp_path / "unused"), "DATABASE_URL": f"sqlite:///{tmp_path}/missing/db.sqlite3"}

    done = run_manage("export_config", "--traceback", env=env)

    assert done.returncode == 1
    assert "Traceback" in done.stderr
