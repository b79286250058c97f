"""Mail-processing workers against the suite's Dovecot (SPEC section 8).

In this process: `process_mailboxes --once` (named and due mailboxes, --json, exit
codes, an unknown address), ten authentication failures in a row disabling a mailbox
for incoming email and Test & Enable enabling it again, a refused connection backing off.

In processes of their own, on one database (the suite's PostgreSQL test database when
the suite runs on PostgreSQL, as hosts would share it; else a copy of the test's SQLite
database in a file, copied back afterwards): a `process_mailboxes --once` killed with
SIGKILL in the middle of a mailbox, then a second pass that records every message
exactly once; a worker killed while holding leases, whose mailboxes the other workers
process once the leases expire; a running worker picking up Process Now within seconds;
and (PostgreSQL only) three workers over 50 mailboxes of one profile capped at 3
connections, counted server-side by a proxy, each message recorded once.

Each test gets Dovecot accounts of its own, added to the running server's password file
(Dovecot reads it again when it changes), and APPENDs its messages over IMAP.
"""

import contextlib
import imaplib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from io import StringIO
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from mailboxes.models import Email, Mailbox, MailboxAlert, MailboxSync
from mailboxes.processing import scheduler
from mailboxes.processing.worker import process_once
from tests.fixtures.faults import BASE_DIR, TEST_SETTINGS, sqlite_env
from tests.fixtures.mailservers import MAIL_PASSWORD, PLAIN_LOOPBACK, ConnectionCounter, CountingProxy

pytestmark = pytest.mark.servers

ON_POSTGRESQL = django_settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
ACCOUNT_PASSWORD = "Proc-7-'kiwi'-pass"
# Short leases and intervals for the processes these tests start.
LEASE_SECONDS = 3


# Dovecot accounts and messages ---------------------------------------------------------


def add_accounts(dovecot, count: int) -> list[str]:
    """`count` new accounts (password ACCOUNT_PASSWORD), their INBOXes created one at a
    time (Dovecot races when two sessions create one INBOX)."""
    tag = uuid.uuid4().hex[:8]
    names = [f"proc-{tag}-{n}@example.test" for n in range(count)]
    with open(dovecot.directory / "passwd", "a", encoding="utf-8") as passwd:
        for name in names:
            passwd.write(f"{name}:{{PLAIN}}{ACCOUNT_PASSWORD}::::::\n")
    for name in names:
        with imap(dovecot, name) as client:
            client.select("INBOX")
    return names


@contextlib.contextmanager
def imap(dovecot, account: str):
    deadline = time.monotonic() + 10
    while True:  # Dovecot notices the new password file at its next lookup
        client = imaplib.IMAP4(PLAIN_LOOPBACK, dovecot.imap_port, timeout=10)
        try:
            credentials = f"\0{account}\0{ACCOUNT_PASSWORD}".encode()
            client.authenticate("PLAIN", lambda _challenge: credentials)
            break
        except imaplib.IMAP4.error:
            client.shutdown()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def message(account: str, n: int, *, size: int = 300) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"sender{n}@example.org"
    mail["To"] = account
    mail["Subject"] = f"Message {n} for {account}"
    mail["Date"] = format_datetime(timezone.now())
    mail["Message-ID"] = make_msgid(f"m{n}", domain="workers.example.test")
    mail.set_content(("Line of the body. " * (size // 18 + 1))[:size])
    return bytes(mail)


def deliver(dovecot, account: str, count: int, *, start: int = 0, size: int = 300) -> None:
    with imap(dovecot, account) as client:
        for n in range(start, start + count):
            status, _ = client.append(
                "INBOX", None, imaplib.Time2Internaldate(time.time()), message(account, n, size=size)
            )
            assert status == "OK"


def server_count(dovecot, account: str) -> int:
    with imap(dovecot, account) as client:
        status, data = client.select("INBOX", readonly=True)
        return int(data[0])


class SlowProxy:
    """Forwards LOOPBACK:port to Dovecot's plain IMAP port, passing the server's bytes on
    at `rate` bytes a second: a pass takes seconds whatever the machine's load, so a test
    can act while it is under way."""

    def __init__(self, dovecot, rate: int):
        self.upstream, self.rate = (PLAIN_LOOPBACK, dovecot.imap_port), rate
        self.counter = ConnectionCounter()  # connections open at once, and in all
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.counter.opened()
            closed = threading.Lock()  # whichever side ends first uncounts the connection
            for source, target, rate in ((client, upstream, 0), (upstream, client, self.rate)):
                threading.Thread(target=self._pump, args=(source, target, rate, closed), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, rate: int, closed: threading.Lock) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(4096):
                target.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        if closed.acquire(blocking=False):
            self.counter.closed()
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def slow_profile(dovecot, make_test_server_profile):
    """A profile whose IMAP server answers at 256 KB/s (see SlowProxy)."""
    proxy = SlowProxy(dovecot, rate=256 * 1024)
    profile = make_test_server_profile(incoming_server="127.0.0.1", incoming_port=proxy.port)
    profile.proxy = proxy
    yield profile
    proxy.close()


# Mailboxes -------------------------------------------------------------------------------


@pytest.fixture
def make_processed_mailbox(make_user, make_queue, no_approval_required):
    """A user (or queue) mailbox on `profile` logging in as `account` with its own
    credentials, enabled for incoming email as a successful Test & Enable leaves it."""
    from mailboxes.models import IncomingMethod, OutgoingMethod
    from mailboxes.services.mailboxes import mailbox_save

    def make(
        profile, account: str, *, password: str = ACCOUNT_PASSWORD, queue: bool = False, **fields
    ) -> Mailbox:
        mailbox = (make_queue() if queue else make_user()).mailbox
        mailbox.server_profile = profile
        mailbox.incoming_method = IncomingMethod.SERVER_SIDE_SYNC
        mailbox.outgoing_method = OutgoingMethod.NONE  # the accounts exist on Dovecot only
        mailbox.allow_credentials = True
        mailbox.username = account
        mailbox.set_password(password)
        for name, value in fields.items():
            setattr(mailbox, name, value)
        mailbox_save(mailbox)
        Mailbox.objects.filter(pk=mailbox.pk).update(enabled_incoming=True, incoming_status="success")
        return Mailbox.objects.select_related("server_profile").get(pk=mailbox.pk)

    return make


def recorded(mailbox) -> list[str]:
    return list(Email.objects.filter(mailbox=mailbox).values_list("message_id", flat=True))


def sync(mailbox) -> MailboxSync:
    return MailboxSync.objects.get(pk=mailbox.pk)


def run_command(*args) -> tuple[int, list, str]:
    """`process_mailboxes ARGS` in this process: (exit status, JSON lines, error)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("process_mailboxes", *args, stdout=out, stderr=err)
        status, error = 0, ""
    except CommandError as exc:
        status, error = exc.returncode, str(exc)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return status, lines, error


# The command, in this process ----------------------------------------------------------------


def test_once_processes_the_named_mailbox_and_prints_one_json_object(
    dovecot, make_test_server_profile, make_processed_mailbox
):
    (account,) = add_accounts(dovecot, 1)
    deliver(dovecot, account, 3)
    mailbox = make_processed_mailbox(make_test_server_profile(min_polling_interval=30), account)

    status, lines, error = run_command(mailbox.email, "--once", "--json")

    assert (status, error) == (0, "")
    assert lines == [
        {
            "mailbox": mailbox.email,
            "fetched": 3,
            "recorded": 3,
            "unmatched": 0,
            "deleted": 0,
            "failed": 0,
            "cause": None,
        }
    ]
    assert len(set(recorded(mailbox))) == 3
    after = sync(mailbox)
    assert after.last_sync_on is not None and after.lease_holder == ""

    # Named, it is processed again at once, though not due; nothing is recorded twice.
    status, lines, _ = run_command(mailbox.email, "--once", "--json")
    assert status == 0 and lines[0]["recorded"] == 0 and lines[0]["failed"] == 0
    assert len(recorded(mailbox)) == 3


def test_once_processes_a_pop3_mailbox_too(dovecot, make_test_server_profile, make_processed_mailbox):
    (account,) = add_accounts(dovecot, 1)
    deliver(dovecot, account, 2)
    mailbox = make_processed_mailbox(make_test_server_profile(incoming="pop3"), account)

    status, lines, _ = run_command(mailbox.email, "--once", "--json")
    assert status == 0 and (lines[0]["recorded"], lines[0]["cause"]) == (2, None)
    status, lines, _ = run_command(mailbox.email, "--once", "--json")
    assert status == 0 and lines[0]["recorded"] == 0  # by UIDL: never twice
    assert len(recorded(mailbox)) == 2


def test_once_without_addresses_processes_every_due_mailbox_and_only_those(
    dovecot, make_test_server_profile, make_processed_mailbox
):
    due_account, later_account = add_accounts(dovecot, 2)
    deliver(dovecot, due_account, 1)
    deliver(dovecot, later_account, 1)
    profile = make_test_server_profile(min_polling_interval=30)
    due = make_processed_mailbox(profile, due_account)
    later = make_processed_mailbox(profile, later_account)
    scheduler.create_missing_syncs()
    MailboxSync.objects.filter(pk=later.pk).update(next_poll_on=Now() + timezone.timedelta(minutes=10))

    status, lines, _ = run_command("--once", "--json")

    assert status == 0
    assert [line["mailbox"] for line in lines] == [due.email]
    assert len(recorded(due)) == 1 and recorded(later) == []
    # The interval holds: right away, nothing is due.
    assert run_command("--once", "--json")[1] == []
    out = StringIO()
    call_command("process_mailboxes", "--once", stdout=out)
    assert out.getvalue() == "No mailbox is due.\n"


def test_an_unknown_address_stops_the_command_before_anything_is_processed(
    dovecot, make_test_server_profile, make_processed_mailbox
):
    (account,) = add_accounts(dovecot, 1)
    deliver(dovecot, account, 1)
    mailbox = make_processed_mailbox(make_test_server_profile(), account)

    status, lines, error = run_command(mailbox.email, "nobody@example.test", "--once", "--json")

    assert status != 0
    assert error == "There is no mailbox with the address nobody@example.test; nothing was processed."
    assert lines == [] and recorded(mailbox) == []
    assert not MailboxSync.objects.filter(pk=mailbox.pk).exists()

    status, _lines, error = run_command(mailbox.email)  # a worker takes no addresses
    assert status != 0 and error == "ADDRESS needs --once: a worker processes every due mailbox."


def test_a_failed_mailbox_makes_the_command_exit_1_with_its_cause_and_no_secret(
    dovecot, make_test_server_profile, make_processed_mailbox, capfd
):
    good_account, bad_account = add_accounts(dovecot, 2)
    deliver(dovecot, good_account, 2)
    profile = make_test_server_profile()
    good = make_processed_mailbox(profile, good_account)
    bad = make_processed_mailbox(profile, bad_account, password=MAIL_PASSWORD)  # not its password

    status, lines, error = run_command(good.email, bad.email, "--once", "--json")

    assert status == 1 and error == "1 of 2 mailboxes failed."
    by_mailbox = {line["mailbox"]: line for line in lines}
    assert by_mailbox[good.email]["recorded"] == 2 and by_mailbox[good.email]["cause"] is None
    assert by_mailbox[bad.email]["failed"] == 1
    assert by_mailbox[bad.email]["cause"].startswith("Authentication failed: ")
    output = json.dumps(lines) + error + "".join(capfd.readouterr())
    assert MAIL_PASSWORD not in output and ACCOUNT_PASSWORD not in output


def test_a_named_mailbox_that_is_not_processed_says_why(
    make_test_server_profile, make_processed_mailbox, dovecot
):
    (account,) = add_accounts(dovecot, 1)
    mailbox = make_processed_mailbox(make_test_server_profile(), account)
    Mailbox.objects.filter(pk=mailbox.pk).update(state=Mailbox.State.INACTIVE)

    status, lines, _ = run_command(mailbox.email, "--once", "--json")

    assert lines[0]["cause"] == "Not processed: the mailbox is inactive."
    assert (lines[0]["failed"], status) == (0, 0)  # nothing failed: there was nothing to do
    assert not MailboxSync.objects.filter(pk=mailbox.pk).exists()


def test_help_documents_the_command():
    from django.core.management import load_command_class

    command = load_command_class("mailboxes", "process_mailboxes")
    out = StringIO()
    command.create_parser("manage.py", "process_mailboxes").print_help(out)
    text = " ".join(out.getvalue().split())
    for words in ("ADDRESS", "--once", "--json", "SIGTERM", "Exits 1 if any mailbox failed", "example:"):
        assert words in text


# Failures, in this process ---------------------------------------------------------------


def test_ten_authentication_failures_disable_the_mailbox_and_test_and_enable_enables_it_again(
    dovecot, make_test_server_profile, make_processed_mailbox
):
    from mailboxes.services.mailboxes import mailbox_save
    from mailboxes.services.testing import mailbox_test_and_enable

    (account,) = add_accounts(dovecot, 1)
    deliver(dovecot, account, 2)
    mailbox = make_processed_mailbox(make_test_server_profile(), account, password="not-the-password")

    for attempt in range(1, 11):
        (result,) = process_once([mailbox.pk])
        assert result.failed == 1 and not result.transient, result
        assert sync(mailbox).consecutive_failures == attempt

    disabled = Mailbox.objects.get(pk=mailbox.pk)
    assert not disabled.enabled_incoming and disabled.incoming_status == "failure"
    alerts = list(
        MailboxAlert.objects.filter(mailbox=mailbox).order_by("pk").values_list("severity", "message")
    )
    assert len(alerts) == 10 and {severity for severity, _ in alerts} == {"error"}
    assert alerts[0][1].startswith("Mail processing failed: Authentication failed: ")
    assert "failed 10 times in a row" in alerts[-1][1] and "Test & Enable Mailbox" in alerts[-1][1]
    assert alerts[-1][1] == disabled.incoming_error
    assert scheduler.due_ids() == []
    assert process_once()[:1] == []  # not due, not processed

    # The administrator fixes the password and runs Test & Enable.
    disabled.set_password(ACCOUNT_PASSWORD)
    mailbox_save(disabled)
    assert mailbox_test_and_enable(disabled).status("incoming") == "Success"

    enabled = sync(mailbox)
    assert Mailbox.objects.get(pk=mailbox.pk).enabled_incoming
    assert (enabled.consecutive_failures, enabled.last_error) == (0, "")
    assert scheduler.due_ids() == [mailbox.pk]
    (result,) = process_once()
    assert (result.recorded, result.cause) == (2, None)


def test_a_refused_connection_backs_off_later_than_the_interval(
    make_test_server_profile, make_processed_mailbox, closed_port, dovecot
):
    (account,) = add_accounts(dovecot, 1)
    profile = make_test_server_profile(min_polling_interval=5, incoming_port=closed_port)
    mailbox = make_processed_mailbox(profile, account)

    (first,) = process_once([mailbox.pk])
    after_one = sync(mailbox)
    (_second,) = process_once([mailbox.pk])
    after_two = sync(mailbox)

    assert first.transient and first.failed == 1
    assert after_one.last_error == first.cause
    interval = timezone.timedelta(minutes=5)
    assert after_one.next_poll_on - after_one.last_attempt_on > interval
    assert (
        after_two.next_poll_on - after_two.last_attempt_on
        > after_one.next_poll_on - after_one.last_attempt_on
    )
    assert not MailboxAlert.objects.filter(mailbox=mailbox).exists()  # transient: no alert yet
    assert Mailbox.objects.get(pk=mailbox.pk).enabled_incoming


# Processes on one database -----------------------------------------------------------------


class SharedDatabase:
    """The database the child processes share with the test (see the module docstring):
    `env` for the children, `shared()` around their run, `counts()` read while they run."""

    def __init__(self, env: dict, path=None):
        self.env, self.path = env, path

    @contextlib.contextmanager
    def shared(self):
        if self.path is None:  # PostgreSQL: the test's data is committed; nothing to copy
            yield
            return
        connection.ensure_connection()
        with contextlib.closing(sqlite3.connect(self.path)) as file_db:
            connection.connection.backup(file_db)
        try:
            yield
        finally:
            with contextlib.closing(sqlite3.connect(self.path)) as file_db:
                file_db.backup(connection.connection)

    def counts(self) -> dict:
        """Emails recorded, mailboxes synchronised, leases held — now, as the children
        left them. (On SQLite read from the file with the sqlite3 module: the test's own
        connection holds the in-memory copy.)"""
        if self.path is None:
            return {
                "emails": Email.objects.count(),
                "synced": MailboxSync.objects.filter(last_sync_on__isnull=False).count(),
                "held": MailboxSync.objects.exclude(lease_holder="").count(),
            }
        email, sync = Email._meta.db_table, MailboxSync._meta.db_table
        with contextlib.closing(sqlite3.connect(self.path, timeout=20)) as file_db:
            return {
                "emails": file_db.execute(f"SELECT COUNT(*) FROM {email}").fetchone()[0],
                "synced": file_db.execute(
                    f"SELECT COUNT(*) FROM {sync} WHERE last_sync_on IS NOT NULL"
                ).fetchone()[0],
                "held": file_db.execute(f"SELECT COUNT(*) FROM {sync} WHERE lease_holder <> ''").fetchone()[
                    0
                ],
            }


@pytest.fixture
def shared_database(tmp_path) -> SharedDatabase:
    extra = {
        "MAIL_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        "MAIL_PROCESSING_LEASE_SECONDS": str(LEASE_SECONDS),
        "MAIL_PROCESSING_IDLE_SECONDS": "0.5",
        "MAIL_PROCESSING_THREADS": "2",
        "MAIL_PROCESSING_MIN_INTERVAL_SECONDS": "3600",
    }
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        credentials = f"{quote(db['USER'], safe='')}:{quote(db['PASSWORD'] or '', safe='')}"
        url = f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTEST_CURRENT_TEST")}
        env.update(DJANGO_SETTINGS_MODULE=TEST_SETTINGS, DATABASE_URL=url, **extra)
        return SharedDatabase(env)
    path = tmp_path / "shared.sqlite3"
    return SharedDatabase(sqlite_env(path, **extra), path)


def manage(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def child(code: str, env: dict) -> subprocess.Popen:
    script = f"import django; django.setup(); from tests.test_processing_workers import *; {code}"
    return manage(["shell", "--no-imports", "-c", script], env)


def stop(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def wait_until(condition, *, seconds: float = 120, processes=()) -> None:
    """Poll `condition()` until true; fail if a process exits meanwhile or time runs out."""
    deadline = time.monotonic() + seconds
    while not condition():
        for process in processes:
            if process.poll() is not None:
                output = (process.stderr or process.stdout).read()[-3000:]
                raise AssertionError(f"a process exited with {process.returncode}: {output}")
        if time.monotonic() > deadline:
            raise AssertionError("the workers did not finish in time")
        time.sleep(0.02)


def finish(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def hold_leases(count: int) -> None:
    """Child: lease `count` due mailboxes as a worker would, say so, and hang."""
    from mailboxes.processing import scheduler

    held = scheduler.claim_due(scheduler.new_holder(), count)
    print(json.dumps(held), flush=True)
    time.sleep(600)


def make_due_now_of(mailbox_id: int) -> None:
    """Child: Process Now on a mailbox."""
    from mailboxes.models import Mailbox
    from mailboxes.processing.scheduler import make_due_now

    make_due_now(Mailbox.objects.get(pk=mailbox_id))


transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@transactional
def test_a_pass_killed_mid_mailbox_is_finished_by_the_next_pass_recording_every_message_once(
    dovecot, slow_profile, make_processed_mailbox, shared_database
):
    db = shared_database
    (account,) = add_accounts(dovecot, 1)
    total = 400
    deliver(dovecot, account, total, size=2000)
    mailbox = make_processed_mailbox(slow_profile, account, queue=True, delete_after_processing=True)
    once = ["process_mailboxes", mailbox.email, "--once", "--json"]

    with db.shared():
        first = manage(once, db.env)
        # Killed once some of the messages are recorded, but not all.
        wait_until(lambda: db.counts()["emails"] > 0, processes=[first])
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        partly = db.counts()["emails"]
        # The next pass waits for the dead pass's lease to expire, then takes over.
        code, stdout, stderr = finish(manage(once, db.env), 120)

    assert 0 < partly < total, f"{partly} of {total} recorded when the pass was killed"
    assert code == 0, stdout + stderr
    assert json.loads(stdout)["recorded"] == total - partly
    ids = recorded(mailbox)
    assert len(ids) == total and len(set(ids)) == total  # every message, each once
    assert server_count(dovecot, account) == 0  # deleted once recorded: all of them by now
    assert ACCOUNT_PASSWORD not in stdout + stderr


@transactional
def test_a_worker_killed_while_holding_leases_has_its_mailboxes_processed_by_the_others(
    dovecot, make_test_server_profile, make_processed_mailbox, shared_database
):
    db = shared_database
    profile = make_test_server_profile()
    mailboxes = []
    for account in add_accounts(dovecot, 6):
        deliver(dovecot, account, 2)
        mailboxes.append(make_processed_mailbox(profile, account))
    scheduler.create_missing_syncs()

    with db.shared():
        holder = child("hold_leases(3)", db.env)
        held = json.loads(holder.stdout.readline())
        holder.send_signal(signal.SIGKILL)  # no chance to give the leases back
        holder.wait(10)
        assert len(held) == 3 and db.counts()["held"] == 3

        workers = [manage(["process_mailboxes"], db.env) for _ in range(2)]
        try:
            wait_until(lambda: db.counts()["synced"] == 6, processes=workers)
        finally:
            outcomes = [stop(worker) for worker in workers]
        final = db.counts()

    for code, stdout, stderr in outcomes:
        assert code == 0, stdout + stderr
        assert "Traceback" not in stderr
    assert final == {"emails": 12, "synced": 6, "held": 0}
    for mailbox in mailboxes:
        assert len(set(recorded(mailbox))) == 2 == len(recorded(mailbox))
    for pk in held:  # taken over: processed once the dead worker's leases expired
        assert MailboxSync.objects.get(pk=pk).last_sync_on is not None


@transactional
def test_a_running_worker_picks_up_process_now_within_seconds(
    dovecot, make_test_server_profile, make_processed_mailbox, shared_database
):
    db = shared_database
    (account,) = add_accounts(dovecot, 1)
    deliver(dovecot, account, 1)
    mailbox = make_processed_mailbox(make_test_server_profile(min_polling_interval=60), account)

    with db.shared():
        worker = manage(["process_mailboxes", "--json"], db.env)
        try:
            wait_until(lambda: db.counts()["emails"] == 1, processes=[worker])
            deliver(dovecot, account, 1, start=1)
            time.sleep(1.5)  # three idle turns of the worker
            assert db.counts()["emails"] == 1  # not due for an hour
            assert finish(child(f"make_due_now_of({mailbox.pk})", db.env))[0] == 0
            wait_until(lambda: db.counts()["emails"] == 2, seconds=20, processes=[worker])
        finally:
            code, stdout, stderr = stop(worker)

    assert code == 0, stderr
    assert [json.loads(line)["recorded"] for line in stdout.splitlines()] == [1, 1]


@transactional
@pytest.mark.skipif(not ON_POSTGRESQL, reason="many hosts share PostgreSQL; SQLite serves one host")
def test_three_workers_and_test_and_enable_over_fifty_mailboxes_never_open_more_connections_than_the_cap(
    dovecot, make_test_server_profile, make_processed_mailbox, shared_database
):
    db = shared_database
    counter = ConnectionCounter()
    proxy = CountingProxy((PLAIN_LOOPBACK, dovecot.imap_port), counter)
    try:
        profile = make_test_server_profile(
            incoming_server="127.0.0.1", incoming_port=proxy.port, max_connections=3
        )
        mailboxes = []
        for n, account in enumerate(add_accounts(dovecot, 50)):
            deliver(dovecot, account, 1 + n % 3)
            mailboxes.append(make_processed_mailbox(profile, account))
        expected = sum(1 + n % 3 for n in range(50))
        assert counter.total == 0

        with db.shared():
            workers = [manage(["process_mailboxes", "--json"], db.env) for _ in range(3)]
            # Test & Enable of ten of them meanwhile, holding the same slots (and making
            # those mailboxes due again: processed a second time, recording nothing new).
            tests = manage(["test_mailboxes", *(m.email for m in mailboxes[::5])], db.env)
            try:
                code, stdout, stderr = finish(tests, 240)
                assert code == 0, stdout + stderr
                # Every mailbox processed since its Test & Enable, none left due or held.
                settled = MailboxSync.objects.filter(last_sync_on__isnull=False, next_poll_on__gt=Now())
                wait_until(
                    lambda: settled.count() == 50 and not db.counts()["held"], seconds=240, processes=workers
                )
            finally:
                outcomes = [stop(worker) for worker in workers]
    finally:
        proxy.close()

    lines = []
    for code, stdout, stderr in outcomes:
        assert code == 0, stderr
        lines.extend(json.loads(line) for line in stdout.splitlines())
    assert all(line["cause"] is None for line in lines), lines
    assert {line["mailbox"] for line in lines} == {m.email for m in mailboxes}
    assert sum(line["recorded"] for line in lines) == expected  # each message once
    assert Email.objects.count() == expected
    assert Email.objects.values("mailbox", "message_id").distinct().count() == expected
    assert counter.total >= 50 + 10  # every connection went through the proxy
    assert counter.maximum == 3  # the cap, reached and never passed, across all the processes


@transactional
def test_the_serve_script_of_make_run_processes_mail_with_its_worker(
    dovecot, make_test_server_profile, make_processed_mailbox, shared_database
):
    from tests.fixtures.faults import free_port

    db = shared_database
    (account,) = add_accounts(dovecot, 1)
    deliver(dovecot, account, 2)
    mailbox = make_processed_mailbox(make_test_server_profile(), account)

    with db.shared():
        serve = subprocess.Popen(
            ["scripts/serve", sys.executable, f"127.0.0.1:{free_port()}"],
            cwd=BASE_DIR,
            env=db.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so that whatever it started can be stopped with it
        )
        try:
            wait_until(lambda: db.counts()["emails"] == 2, seconds=60, processes=[serve])
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                output, _ = serve.communicate(timeout=30)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(serve.pid, signal.SIGKILL)

    assert len(set(recorded(mailbox))) == 2
    assert "Traceback" not in output, output


@transactional
def test_a_worker_told_to_stop_finishes_the_pass_it_is_in_and_gives_its_leases_back(
    dovecot, slow_profile, make_processed_mailbox, shared_database
):
    db = shared_database
    (account,) = add_accounts(dovecot, 1)
    total = 300
    deliver(dovecot, account, total, size=2000)
    mailbox = make_processed_mailbox(slow_profile, account)

    with db.shared():
        worker = manage(["process_mailboxes", "--json"], db.env)
        wait_until(lambda: db.counts()["emails"] > 0, processes=[worker])
        code, stdout, stderr = stop(worker)  # SIGTERM in the middle of the pass
        final = db.counts()

    assert code == 0, stderr
    assert "finishing the passes under way" in stderr
    assert json.loads(stdout)["recorded"] == total
    assert final == {"emails": total, "synced": 1, "held": 0}
    assert len(set(recorded(mailbox))) == total


@transactional
def test_a_lease_renewed_during_a_long_pass_keeps_another_process_waiting(
    dovecot, slow_profile, make_processed_mailbox, shared_database
):
    db = shared_database
    db.env["MAIL_PROCESSING_LEASE_SECONDS"] = "1"  # far shorter than the pass
    (account,) = add_accounts(dovecot, 1)
    total = 400
    deliver(dovecot, account, total, size=2000)
    mailbox = make_processed_mailbox(slow_profile, account)
    once = ["process_mailboxes", mailbox.email, "--once", "--json"]

    with db.shared():
        first = manage(once, db.env)
        wait_until(lambda: db.counts()["emails"] > 0, processes=[first])
        second = manage(once, db.env)  # finds the lease held, and waits for it
        first_outcome, second_outcome = finish(first, 120), finish(second, 120)

    assert first_outcome[0] == 0 and second_outcome[0] == 0, first_outcome + second_outcome
    assert json.loads(first_outcome[1])["recorded"] == total  # never taken over mid-pass
    assert json.loads(second_outcome[1])["recorded"] == 0
    assert len(recorded(mailbox)) == total
    connections = slow_profile.proxy.counter
    assert (connections.total, connections.maximum) == (2, 1)  # one pass after the other


def _end_other_sessions() -> int:
    """End every other session on the test database (the workers'), as a database
    restart or a failover would; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return len(cursor.fetchall())


@transactional
@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite has no server sessions to end")
def test_a_worker_whose_database_sessions_are_ended_carries_on(
    dovecot, make_test_server_profile, make_processed_mailbox, shared_database
):
    db = shared_database
    (account,) = add_accounts(dovecot, 1)
    deliver(dovecot, account, 1)
    mailbox = make_processed_mailbox(make_test_server_profile(min_polling_interval=60), account)

    worker = manage(["process_mailboxes", "--json"], db.env)
    try:
        # The first pass wholly over (recorded and its lease given back), so that the
        # sessions end while the worker waits for its next turn, not mid-pass.
        first_pass_over = {"emails": 1, "synced": 1, "held": 0}
        wait_until(lambda: db.counts() == first_pass_over, processes=[worker])
        assert _end_other_sessions() >= 1
        time.sleep(1)  # the worker meets the ended session at its next turn
        deliver(dovecot, account, 1, start=1)
        scheduler.make_due_now(mailbox)
        wait_until(lambda: db.counts()["emails"] == 2, seconds=30, processes=[worker])
    finally:
        code, stdout, stderr = stop(worker)

    assert code == 0, stderr
    assert [json.loads(line)["recorded"] for line in stdout.splitlines()] == [1, 1]
