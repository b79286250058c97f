"""The search budgets on SQLite: `python -m bench.sqlite_search [SIZE]` (default 100,000).

Seeds a fresh SQLite file with SIZE mailboxes (and as many users for the owner picker)
through bulk_create, then times the mailbox list's "contains" searches and the picker's
suggestions through the test client: p50 of 15 runs after 3 warm-up runs. Budget: 100 ms
at 100,000. (`make bench` measures PostgreSQL; this is its SQLite counterpart.)
"""

import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    # BENCH_SQLITE_FILE keeps the seeded database for another run (seeding takes a minute).
    database = os.environ.get("BENCH_SQLITE_FILE") or str(
        Path(tempfile.mkdtemp(prefix="mailboxadmin-sqlite-bench-")) / "bench.sqlite3"
    )
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "mailboxadmin.settings_test"
    os.environ["ALLOWED_HOSTS"] = "testserver"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from bench.measure import ms, p50, say
    from mailboxes.models import Mailbox, User

    setup_test_environment()  # the client keeps each response's context
    say(f"migrating {os.environ['DATABASE_URL']}")
    call_command("migrate", interactive=False, verbosity=0)
    if not Mailbox.objects.filter(kind=Mailbox.Kind.FORWARD).exists():
        seed(size)
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        username="bench-admin", email="admin@bench.invalid", is_staff=True
    )
    client = Client()
    client.force_login(admin)

    paths = {
        "list, domain (contains)": "/mailboxes/?view=all&q=%40bench7.test",
        "list, middle of a name (contains)": "/mailboxes/?view=all&q=king+12",
        "list, domain, page 2": None,
        "owner picker, full name prefix": "/users/autocomplete/?q=Olivia+K",
        "owner picker, address prefix": "/users/autocomplete/?q=olivia.king1",
    }
    first = client.get(paths["list, domain (contains)"])
    paths["list, domain, page 2"] = (
        f"/mailboxes/?view=all&q=%40bench7.test&after={first.context['page'].next_cursor}"
    )
    failed = False
    for label, path in paths.items():
        for _ in range(3):
            assert client.get(path).status_code == 200, path
        samples = []
        for _ in range(15):
            started = time.perf_counter()
            response = client.get(path)
            samples.append(time.perf_counter() - started)
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        rows = len(response.context["page"]) if response.context else len(response.json()["results"])
        value = p50(samples)
        failed |= value > 0.100
        verdict = "ok" if value <= 0.100 else "MISS"
        print(f"{label:38} p50 {ms(value):>9}  {len(queries)} queries, {rows} rows  {verdict}")
    return 1 if failed else 0


def seed(size: int) -> None:
    """SIZE users and SIZE forward mailboxes with the bench's names and addresses."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from bench.measure import say
    from bench.seed import FIRST, LAST
    from mailboxes.models import Mailbox, User
    from serverprofiles.models import EmailServerProfile, ServerType

    profile = EmailServerProfile.objects.create(
        name="Bench",
        server_type=ServerType.IMAP_SMTP,
        incoming_server="imap.bench.test",
        outgoing_server="smtp.bench.test",
    )
    say(f"seeding {size:,} users and {size:,} mailboxes")
    started = time.perf_counter()

    def person(i):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        return f"{first} {last} {i}", f"{first.lower()}.{last.lower()}{i}@bench{i % 50}.test"

    password = make_password(None)
    User.objects.bulk_create(
        (
            User(username=f"bench{i}", email=person(i)[1], full_name=person(i)[0], password=password)
            for i in range(size)
        ),
        batch_size=5000,
    )
    Mailbox.objects.bulk_create(
        (
            Mailbox(
                kind=Mailbox.Kind.FORWARD,
                name=person(i)[0],
                email=person(i)[1],
                server_profile=profile,
                incoming_method="server-side-sync",
            )
            for i in range(size)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    say(f"seeded in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
