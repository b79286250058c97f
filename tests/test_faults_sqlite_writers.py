"""SQLite under concurrency: eight writers for ten seconds, and no "database is locked".

The writers run in a process of their own on an SQLite file with the production settings
(WAL, BEGIN IMMEDIATE, a busy timeout), each thread with its own connection, as the
threads of a web server would. Each one reads a mailbox (or a user), changes it and
saves it through the service with the version it read: the save lands or is refused as
stale. Whatever the suite's own database is, this test is about SQLite, so it always
runs on a file.

FAULTS_SQLITE_SECONDS sets how long the writers run (default 10).
"""

import json
import os
import sys
from collections import defaultdict

from tests.fixtures.faults import run_manage, sqlite_env

SECONDS = float(os.environ.get("FAULTS_SQLITE_SECONDS", "10"))
WRITERS = 8


def hammer(seconds: float, writers: int) -> None:
    """Run in the child process (Django set up on the SQLite file); prints a JSON report."""
    import random
    import threading
    import time

    from django.db import connection

    from mailboxadmin.exceptions import StaleEditError
    from mailboxes.models import Mailbox, User
    from mailboxes.services.mailboxes import forward_mailbox_create, mailbox_save
    from mailboxes.services.users import user_create, user_save
    from serverprofiles.models import AuthenticationMethod, EmailServerProfile, ServerType
    from serverprofiles.services import profile_create

    actor = user_create(username="writer", email="writer@example.test", is_staff=True, is_superuser=True)
    profile = profile_create(
        EmailServerProfile(
            name="Contoso IMAP",
            server_type=ServerType.IMAP_SMTP,
            incoming_server="imap.example.test",
            outgoing_server="smtp.example.test",
            incoming_auth=AuthenticationMethod.USER_CREDENTIALS,
        )
    )
    mailboxes = [
        forward_mailbox_create(name=f"fwd{n}", email=f"fwd{n}@example.test", server_profile=profile).pk
        for n in range(3)
    ]
    users = [user_create(username=f"user{n}", email=f"user{n}@example.test").pk for n in range(2)]
    mailboxes += list(Mailbox.objects.filter(user_id__in=users).values_list("pk", flat=True))
    connection.close()

    report = {"applied": [], "stale": 0, "errors": []}
    lock = threading.Lock()
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        rng = random.Random(n)
        try:
            start.wait()
            deadline = time.monotonic() + seconds
            count = 0
            while time.monotonic() < deadline:
                count += 1
                tag = f"w{n}.{count}"
                try:
                    if rng.random() < 0.75:
                        record = Mailbox.objects.get(pk=rng.choice(mailboxes))
                        seen = record.version
                        record.name = tag
                        mailbox_save(record, expected_version=seen, actor=actor)
                    else:
                        record = User.objects.get(pk=rng.choice(users))
                        seen = record.version
                        record.full_name = tag
                        user_save(record, expected_version=seen, actor=actor)
                except StaleEditError:
                    with lock:
                        report["stale"] += 1
                    continue
                except Exception as error:  # what the test is looking for: it must not happen
                    with lock:
                        report["errors"].append(f"{type(error).__name__}: {error}")
                    continue
                with lock:
                    report["applied"].append([type(record).__name__, record.pk, seen + 1, tag])
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report["final"] = {
        "Mailbox": {pk: [n, v] for pk, n, v in Mailbox.objects.values_list("pk", "name", "version")},
        "User": {pk: [n, v] for pk, n, v in User.objects.values_list("pk", "full_name", "version")},
    }
    from django.contrib.admin.models import CHANGE, LogEntry

    report["history"] = LogEntry.objects.filter(action_flag=CHANGE).count()
    sys.stdout.write(json.dumps(report))


def test_eight_writers_for_ten_seconds_never_see_database_is_locked(sqlite_file):
    code = (
        "import django; django.setup(); "
        "from tests.test_faults_sqlite_writers import hammer; "
        f"hammer({SECONDS!r}, {WRITERS})"
    )
    done = run_manage("shell", "--no-imports", "-c", code, env=sqlite_env(sqlite_file), timeout=SECONDS + 60)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["errors"] == []
    assert "database is locked" not in done.stderr
    applied = report["applied"]
    assert len(applied) >= WRITERS  # the writers did get through, not just wait
    # Every save that landed took the next version of its row, and no two took the same
    # one (a lost update would show as two saves of one version).
    landed = defaultdict(list)
    for model, pk, version, tag in applied:
        landed[model, str(pk)].append((version, tag))
    for model, rows in report["final"].items():
        for pk, (name, version) in rows.items():
            saves = landed[model, pk]
            assert sorted(v for v, _ in saves) == list(range(2, version + 1)), (model, pk)  # created at 1
            if saves:
                assert name == max(saves)[1]  # the row holds the last save that landed
    assert report["history"] == len(applied)
    print(f"{len(applied)} saves landed, {report['stale']} refused as stale, in {SECONDS:g} s")
