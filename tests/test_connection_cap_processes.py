"""Maximum Concurrent Connections across processes, counted by the server's side.

A profile allows 2 connections; its servers (the test Dovecot and aiosmtpd, over TLS)
are reached through a proxy that counts how many connections are open at once. Three
`manage.py test_mailboxes` processes and a process running Test Connections go at the
same time on one database: the suite's PostgreSQL test database when the suite runs on
PostgreSQL (as many hosts would share it), else an SQLite file (WAL, as on a single
host). The proxy must never see more than 2. A process killed while it holds a slot keeps it only until its
lease expires; then another process takes it over.

The helpers below run inside the child processes (Django set up on the SQLite file).
"""

import json
import os
import signal
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from django.db import connection

from tests.fixtures.faults import BASE_DIR, TEST_SETTINGS, sqlite_env
from tests.fixtures.mailservers import (
    LOOPBACK,
    MAIL_PASSWORD,
    MAIL_USERNAME,
    ConnectionCounter,
    CountingProxy,
)

# On PostgreSQL the children share the test database, so the test's data is committed
# (and the data migrations' rows restored afterwards); on SQLite it is unused.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PROFILE = "Capped IMAP"
PASSWORD_ENV = "CAP_TEST_MAILBOX_PASSWORD"
WORKERS = 3
MAILBOXES_PER_WORKER = 8
TEST_CONNECTIONS = 4


def address(n: int) -> str:
    return f"capped{n}@example.test"


def set_up(imap_port: int, smtp_port: int, mailboxes: int, max_connections: int) -> None:
    """Child: a profile on the proxies and `mailboxes` mailboxes with the test account."""
    from mailboxes.models import IncomingMethod, OrganizationSettings, OutgoingMethod
    from mailboxes.services.mailboxes import mailbox_save
    from mailboxes.services.users import user_create
    from serverprofiles.models import EmailServerProfile, ServerType
    from serverprofiles.services import profile_create

    org = OrganizationSettings.load()
    org.approval_required_for_users = org.approval_required_for_queues = False
    org.save()
    profile = profile_create(
        EmailServerProfile(
            name=PROFILE,
            server_type=ServerType.IMAP_SMTP,
            incoming_server=LOOPBACK,
            incoming_port=imap_port,
            outgoing_server=LOOPBACK,
            outgoing_port=smtp_port,
            max_connections=max_connections,
            timeout_ms=2000,
        )
    )
    for n in range(mailboxes):
        mailbox = user_create(username=f"capped{n}", email=address(n)).mailbox
        mailbox.server_profile = profile
        mailbox.incoming_method = IncomingMethod.SERVER_SIDE_SYNC
        mailbox.outgoing_method = OutgoingMethod.SERVER_SIDE_SYNC
        mailbox.allow_credentials = True
        mailbox.username = MAIL_USERNAME
        mailbox.set_password(os.environ[PASSWORD_ENV])
        mailbox_save(mailbox)


def run_test_connections(count: int) -> None:
    """Child: `count` Test Connections of the saved profile at once, one thread each."""
    import threading

    from django.db import connection

    from serverprofiles.connection_tests import profile_test_connection
    from serverprofiles.models import EmailServerProfile

    failures = []

    def run() -> None:
        try:
            result = profile_test_connection(EmailServerProfile.objects.get(name=PROFILE))
            if not result.ok:
                failures.append((result.incoming.message, result.outgoing.message))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    print("test connections done")


def hold_a_slot(lease_seconds: float) -> None:
    """Child: claim a slot of the profile with a short lease, say so, and hang."""
    from datetime import timedelta

    from serverprofiles.connection_cap import connection_slot_claim
    from serverprofiles.models import EmailServerProfile

    held = connection_slot_claim(
        EmailServerProfile.objects.get(name=PROFILE), lease=timedelta(seconds=lease_seconds)
    )
    assert held is not None
    print(f"held {held.number}", flush=True)
    time.sleep(600)


def print_slots() -> None:
    """Child: the profile's slots, as JSON."""
    from serverprofiles.models import ConnectionSlot

    slots = ConnectionSlot.objects.filter(profile__name=PROFILE).values_list(
        "number", "holder", "lease_expires_on"
    )
    print(json.dumps(sorted([number, holder, expires is not None] for number, holder, expires in slots)))


def child(code: str, env: dict) -> subprocess.Popen:
    script = f"import django; django.setup(); from tests.test_connection_cap_processes import *; {code}"
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def manage(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


@pytest.fixture
def capped_servers(dovecot, smtp_servers, mail_certificates):
    """Counting proxies in front of Dovecot's IMAPS and aiosmtpd's SMTPS ports."""
    counter = ConnectionCounter()
    imap = CountingProxy((dovecot.host, dovecot.imaps_port), counter)
    smtp = CountingProxy((smtp_servers.host, smtp_servers.tls_port), counter)
    yield counter, imap.port, smtp.port
    imap.close()
    smtp.close()


@pytest.fixture
def child_env(request, mail_certificates) -> dict:
    """The environment of the child processes, all on one database."""
    extra = {
        "MAIL_CA_BUNDLE": str(mail_certificates.cert),
        "MAIL_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        PASSWORD_ENV: MAIL_PASSWORD,
    }
    if connection.vendor != "postgresql":
        return sqlite_env(request.getfixturevalue("sqlite_file"), **extra)
    db = connection.settings_dict
    credentials = f"{quote(db['USER'], safe='')}:{quote(db['PASSWORD'] or '', safe='')}"
    url = f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_CURRENT_TEST")}
    env.update(DJANGO_SETTINGS_MODULE=TEST_SETTINGS, DATABASE_URL=url, **extra)
    return env


def test_three_worker_processes_and_test_connections_never_open_more_than_the_cap(capped_servers, child_env):
    counter, imap_port, smtp_port = capped_servers
    env = child_env
    mailboxes = WORKERS * MAILBOXES_PER_WORKER
    assert finish(child(f"set_up({imap_port}, {smtp_port}, {mailboxes}, 2)", env))[0] == 0
    assert counter.total == 0

    workers = [
        manage(
            ["test_mailboxes", *(address(n) for n in range(w, mailboxes, WORKERS))],
            env,
        )
        for w in range(WORKERS)
    ]
    connection_tests = child(f"run_test_connections({TEST_CONNECTIONS})", env)
    outcomes = [finish(process) for process in [*workers, connection_tests]]

    for code, stdout, stderr in outcomes:
        assert code == 0, stdout + stderr
        assert MAIL_PASSWORD not in stdout + stderr
    tested = [line for _code, stdout, _stderr in outcomes[:WORKERS] for line in stdout.splitlines()]
    assert len(tested) == mailboxes
    assert all("incoming=Success\toutgoing=Success" in line for line in tested), tested
    assert counter.total == 2 * mailboxes + 2 * TEST_CONNECTIONS  # every connection was counted
    assert counter.maximum == 2  # the cap, reached and never passed
    code, stdout, stderr = finish(child("print_slots()", env))
    assert json.loads(stdout) == [[1, "", False], [2, "", False]], stderr  # both made, both given back


def test_a_slot_held_by_a_killed_process_is_taken_over_when_its_lease_expires(capped_servers, child_env):
    counter, imap_port, smtp_port = capped_servers
    env = child_env
    assert finish(child(f"set_up({imap_port}, {smtp_port}, 1, 1)", env))[0] == 0
    lease = 4.0
    holder = child(f"hold_a_slot({lease})", env)
    assert holder.stdout.readline().strip() == "held 1"
    claimed = time.monotonic()
    holder.send_signal(signal.SIGKILL)  # no chance to give the slot back
    holder.wait(10)

    code, stdout, stderr = finish(manage(["test_mailboxes", address(0)], env))
    waited = time.monotonic() - claimed

    assert code == 0, stdout + stderr
    assert "incoming=Success\toutgoing=Success" in stdout
    assert waited >= lease - 0.5  # it waited for the lease to expire
    assert (counter.total, counter.maximum) == (2, 1)
