"""`make bench`: seed PostgreSQL, measure every budget of issues 3–6 and print one table.

Run through `scripts/bench`, which starts a throwaway PostgreSQL cluster and sets
DATABASE_URL. Configuration (environment):

    SIZE              mailboxes to seed (default 1,000,000)
    LOAD_SECONDS      wrk's duration per page (default 30)
    LOAD_CONNECTIONS  wrk's open connections (default 4); LOAD_THREADS its threads (2)
    RUNS              timed runs per page (default 15, after 3 warm-up runs)
    EMAILS            emails to seed for /emails/ (default SIZE)
    SQLITE_SIZE       mailboxes of the SQLite search scenario (default 100,000)
    UNTUNED_RUNS      timed runs of the untuned admin changelist (default 5)
    BULK_RUNS         runs of Set Server Profile (default 3)
    SCENARIOS         only these, comma-separated (list_pages, contains_search_and_picker,
                      admin_changelist, load_test, bulk_set_server_profile,
                      test_and_enable, test_and_enable_oauth, commands — or one of
                      its three: apply_config, export_config, rotate_encryption_keys —
                      emails_list, mail_processing, sqlite_search);
                      default all. SIZE=2000 SCENARIOS=test_and_enable is a quick check.
    BENCH_KEEP        a folder that keeps the seeded cluster and reuses it on the next
                      run of the same SIZE (bench/keep.py): before/after on the same data.

Every timing is the median (p50) of its runs; the list and its untuned comparison are
measured in the same run, interleaved. A budget missed is a MISS in the table and exit
status 0; the bench itself breaking (a page not answering 200, a server not starting)
is a traceback and a non-zero exit. The table is also written to var/bench-results.txt.
"""

import os
import platform
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet

from bench.measure import elapsed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "var" / "bench-results.txt"


def int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def configure() -> dict[str, str]:
    """The environment of the whole run: the production settings, keys made for the run."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("bench: DATABASE_URL must name a PostgreSQL database (run it with scripts/bench).")
    from bench import keep

    kept = keep.load()
    first_key = kept.get("keys") or Fernet.generate_key().decode()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "mailboxadmin.settings",
            "ENV_FILE": "",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEYS": first_key,
            # Plain HTTP on loopback: no redirect to HTTPS (the rest of the production
            # security settings stay as they are).
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,testserver",
            # The bench's Dovecot and SMTP server listen on loopback, refused by default.
            "MAIL_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
            "LOG_LEVEL": "WARNING",
            # In-process timings should not include reconnecting every minute.
            "CONN_MAX_AGE": "3600",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return dict(os.environ)


def main() -> int:
    size = int_env("SIZE", 1_000_000)
    env = configure()
    load_start = os.getloadavg()

    import django

    django.setup()
    from bench import scenarios

    chosen = {name.strip() for name in os.environ.get("SCENARIOS", "").split(",") if name.strip()}

    def wanted(name: str) -> bool:
        return not chosen or name in chosen

    scenarios.prepare(size)
    rows, load_rows = [], []
    if wanted("list_pages"):
        rows += scenarios.list_pages(runs=int_env("RUNS", 15))
    if wanted("contains_search_and_picker"):
        rows += scenarios.contains_search_and_picker(runs=int_env("RUNS", 15))
    if wanted("sqlite_search"):
        from bench.sqlite_search import sqlite_rows

        rows += sqlite_rows(sys.executable, int_env("SQLITE_SIZE", 100_000))
    if wanted("emails_list"):
        from bench.emails import emails_list

        rows += emails_list(int_env("EMAILS", size), runs=int_env("RUNS", 15))
    if wanted("admin_changelist"):
        rows += scenarios.admin_changelist(runs=int_env("RUNS", 15), untuned_runs=int_env("UNTUNED_RUNS", 5))
    # The pages (in-process, then under load) first, on the freshly vacuumed database;
    # then the bulk writes; key rotation last, as it changes the key everything uses.
    if wanted("load_test"):
        load_rows = scenarios.load_test(
            env,
            seconds=int_env("LOAD_SECONDS", 30),
            connections=int_env("LOAD_CONNECTIONS", 4),
            threads=int_env("LOAD_THREADS", 2),
        )
    if wanted("bulk_set_server_profile"):
        rows += scenarios.bulk_set_server_profile(size, runs=int_env("BULK_RUNS", 3))
    if wanted("test_and_enable"):
        rows += scenarios.test_and_enable(runs=int_env("RUNS", 15))
    if wanted("test_and_enable_oauth"):
        from bench.oauth import test_and_enable_oauth

        rows += test_and_enable_oauth()
    if wanted("mail_processing"):
        from bench.processing import mail_processing

        rows += mail_processing(env)
    for command in ("apply_config", "export_config", "rotate_encryption_keys"):
        if wanted("commands") or wanted(command):
            rows += scenarios.commands(env, command)
    rows += load_rows

    from bench.report import render

    title = [
        f"Mailbox Admin benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"{scenarios.facts['mailboxes']:,} mailboxes ({scenarios.facts['users']:,} users, "
        f"{scenarios.facts['queues']:,} queues) on {scenarios.facts['postgresql']}; "
        f"seeded (COPY, then VACUUM ANALYZE) in {scenarios.facts['seed_seconds']:.0f} s",
        f"{os.cpu_count()} CPU cores; load average {load_start[0]:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end; Python {platform.python_version()}, "
        f"Django {django.get_version()}; whole run {elapsed():.0f} s",
        "Timings are p50 (median) of the runs stated; server time is measured in-process "
        "(Django test Client, DEBUG off, logged-in superuser).",
    ]
    table = render(title, rows)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(table)
    print()
    print(table, end="")
    print(f"\n(written to {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
