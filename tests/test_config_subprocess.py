"""The commands run for real, as a pipeline runs them: `manage.py` in its own process.

Each test gets a migrated SQLite file of its own; the secrets travel on standard input
or in the environment, and the tests look for them everywhere they must not be.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mailboxadmin import encryption

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"
SECRET = "Subprocess-Secret-8!"
PROFILE = [
    "create_server_profile",
    "--name",
    "Contoso IMAP",
    "--server-type",
    "imap-smtp",
    "--incoming-server",
    "imap.contoso.test",
    "--outgoing-server",
    "smtp.contoso.test",
]


def environment(database: Path, extra: dict | None = None) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mailboxadmin.settings_test",
        "DATABASE_URL": f"sqlite:///{database}",
        **(extra or {}),
    }


def manage(database: Path, *args: str, stdin: str | None = None, env: dict | None = None):
    argv = [sys.executable, str(MANAGE), *args]
    assert SECRET not in " ".join(argv)  # the point of --password-stdin / --password-env
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment(database, env),
        cwd=MANAGE.parent,
        timeout=120,
    )


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("subprocess") / "migrated.sqlite3"
    done = manage(path, "migrate", "--no-input", "-v", "0")
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def database(migrated_database, tmp_path) -> Path:
    path = tmp_path / "db.sqlite3"
    shutil.copy(migrated_database, path)
    return path


def rows(database: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


def dump(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        return list(connection.iterdump())


def raw_bytes(database: Path) -> bytes:
    return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))


def command_error(result) -> str:
    """The one line a failed command writes (system-check warnings aside)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("CommandError")]
    assert len(lines) == 1, result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == lines[0]
    return lines[0]


def test_a_password_on_standard_input_is_stored_encrypted_and_never_shown(database):
    profile = manage(database, *PROFILE, "--default")
    forward = manage(
        database,
        *("create_forward_mailbox", "--name", "Forward box", "--email", "fwd@contoso.test"),
        *("--profile", "Contoso IMAP", "--username", "fwd", "--password-stdin"),
        stdin=SECRET + "\n",
    )
    export = manage(database, "export_config")

    assert (profile.returncode, forward.returncode, export.returncode) == (0, 0, 0)
    assert profile.stdout.startswith('Created email server profile "Contoso IMAP" (IMAP/SMTP;')
    assert forward.stdout == (
        'Created forward mailbox "Forward box" <fwd@contoso.test> on email server profile '
        '"Contoso IMAP"; its own credentials, user name fwd.\n'
    )
    for result in (profile, forward, export):
        assert SECRET not in result.stdout + result.stderr
    assert '"password_set": true' in export.stdout
    [(token,)] = rows(database, "select password_ciphertext from mailboxes_mailbox")
    assert encryption.decrypt(token, record="test") == SECRET
    assert SECRET.encode() not in raw_bytes(database)


def test_a_password_from_the_environment_through_apply_config(database, tmp_path):
    assert manage(database, *PROFILE).returncode == 0
    config = tmp_path / "config.json"
    config.write_text(
        '{"mailboxes": [{"email": "fwd@contoso.test", "name": "Forward box", "forward": true,'
        ' "server_profile": "Contoso IMAP", "allow_credentials": true, "username": "fwd",'
        ' "password_env": "FWD_PASSWORD"}]}'
    )

    first = manage(database, "apply_config", str(config), env={"FWD_PASSWORD": SECRET})
    second = manage(database, "apply_config", str(config), env={"FWD_PASSWORD": SECRET})

    assert first.returncode == second.returncode == 0
    assert first.stdout.splitlines() == [
        "create    mailboxes[0] (fwd@contoso.test)",
        f"Applied {config}: created 1, updated 0, unchanged 0.",
    ]
    assert second.stdout.splitlines() == [f"Applied {config}: created 0, updated 0, unchanged 1."]
    for result in (first, second):
        assert SECRET not in result.stdout + result.stderr


def test_an_error_exits_non_zero_with_one_line_and_writes_nothing(database):
    assert manage(database, *PROFILE).returncode == 0
    before = dump(database)

    failed = manage(
        database,
        *("create_forward_mailbox", "--name", "F", "--email", "fwd@contoso.test", "--profile", "Nowhere"),
        *("--username", "fwd", "--password-stdin"),
        stdin=SECRET + "\n",
    )

    assert failed.returncode == 1
    assert failed.stdout == ""
    assert command_error(failed) == (
        "CommandError: forward mailbox fwd@contoso.test: --profile: "
        'there is no email server profile named "Nowhere".'
    )
    assert SECRET not in failed.stderr
    assert dump(database) == before


def test_apply_config_with_one_bad_record_writes_nothing(database, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        '{"users": [{"username": "alice", "email": "alice@contoso.test"},'
        ' {"username": "bob", "email": "bob@contoso.test"},'
        ' {"username": "carol", "email": "carol-at-contoso.test"}]}'
    )
    before = dump(database)

    failed = manage(database, "apply_config", str(config))

    assert failed.returncode == 1
    assert command_error(failed) == "CommandError: users[2] (carol): email: Enter a valid email address."
    assert dump(database) == before


def test_a_password_given_as_an_argument_is_refused_and_not_echoed(database):
    before = dump(database)

    refused = subprocess.run(
        [
            sys.executable,
            str(MANAGE),
            *PROFILE,
            "--auth",
            "profile-credentials",
            "--password",
            "hunter2-Secret",
        ],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mailboxadmin.settings_test",
            "DATABASE_URL": f"sqlite:///{database}",
        },
        cwd=MANAGE.parent,
        timeout=120,
    )

    assert refused.returncode == 2
    assert "unrecognized arguments: --password (values are not shown)" in refused.stderr
    assert "hunter2-Secret" not in refused.stdout + refused.stderr
    assert dump(database) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["set_mailbox_credentials", "a@b.test", "--username", "u", "--password-stdin=hunter2-Secret"],
        [
            "create_forward_mailbox",
            "--name",
            "F",
            "--email",
            "f@b.test",
            "--profile",
            "P",
            "--password-stdin=hunter2-Secret",
        ],
        [*PROFILE, "--auth", "oauth2", "--client-secret-stdin=hunter2-Secret"],
        ["bootstrap_admin", "--password-stdin=hunter2-Secret"],
        [*PROFILE, "--incoming-port", "hunter2-Secret"],
    ],
    ids=[
        "set_mailbox_credentials",
        "create_forward_mailbox",
        "create_server_profile",
        "bootstrap_admin",
        "invalid-int",
    ],
)
def test_a_value_given_to_an_option_is_not_echoed_in_its_error(database, argv):
    before = dump(database)

    refused = subprocess.run(
        [sys.executable, str(MANAGE), *argv],
        capture_output=True,
        text=True,
        env=environment(database),
        cwd=MANAGE.parent,
        timeout=120,
    )

    assert refused.returncode == 2
    assert "error: argument --" in refused.stderr
    assert (
        "(the value is not shown)" in refused.stderr or '(what followed "=" is not shown)' in refused.stderr
    )
    assert "hunter2" not in refused.stdout + refused.stderr
    assert dump(database) == before
