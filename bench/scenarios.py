"""The measurements of `make bench`, one function per budget group; each returns rows."""

import json
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from bench.measure import MB, median_run, ms, p50, rate, run_process, say, timed
from bench.report import Row
from mailboxadmin import encryption
from mailboxes.models import ApprovalStatus, Mailbox
from serverprofiles.models import EmailServerProfile

ROOT = Path(__file__).resolve().parent.parent
SEARCH_PREFIX = "olivia.king"  # the start of 1 in 400 user mailboxes' addresses
CONTAINS_SEARCHES = {  # issue 16: parts of names and addresses, not their starts
    "a domain": "@bench7.test",  # 1 in 50 user mailboxes
    "the middle of a name": "king 12",  # "Olivia King 12…": names of 1 in 400, a few thousand
}
CONTAINS_INDEXES = {  # what serves each on PostgreSQL (mailboxes.models.search)
    "a domain": "the index on the address's domain part, migration 0014",
    "the middle of a name": "a trigram index of MailboxSearchText",
}
PICKER_SEARCHES = {
    "a full name's start": "Olivia K",
    "an address's start": "olivia.king1",
    "a user name's start": "bench12",
}
SAVED_VIEWS = {
    "Active Mailboxes": "active",
    "Forward Mailboxes": "forward",
    "Pending Approval": "pending",
    "Failed Tests": "failed",
    "Inactive Mailboxes": "inactive",
}
WARMUP = 3
ADMIN_USERNAME = "bench-admin"

facts: dict = {}
_state: dict = {}


# Preparing ---------------------------------------------------------------------------


def prepare(size: int) -> None:
    """Migrate, seed `size` mailboxes through COPY, create the administrator.

    With BENCH_KEEP, a cluster already seeded with `size` is reused: migrated (a new
    migration runs on the seeded rows), vacuumed, and its administrator given a new password.
    """
    from bench import keep
    from bench.seed import seed
    from mailboxes.models import User
    from mailboxes.services.users import user_create

    say("migrating")
    call_command("migrate", interactive=False, verbosity=0)
    # The production static storage serves hashed names from a manifest.
    call_command("collectstatic", interactive=False, verbosity=0)
    kept = keep.load()
    if kept:
        if kept["facts"]["mailboxes"] != size:
            held = kept["facts"]["mailboxes"]
            raise SystemExit(f"bench: BENCH_KEEP holds {held:,} mailboxes, not SIZE={size:,}.")
        say(f"reusing the kept cluster of {size:,} mailboxes (BENCH_KEEP); vacuuming it")
        with connection.cursor() as cursor:
            cursor.execute(
                "VACUUM ANALYZE mailboxes_mailbox, mailboxes_mailbox_search, mailboxes_user, mailboxes_queue"
            )
            cursor.execute("SHOW server_version")
            kept["facts"]["postgresql"] = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
        facts.update(kept["facts"])
        admin = User.objects.get(username=ADMIN_USERNAME)
        password = secrets.token_urlsafe(18)
        admin.set_password(password)
        admin.save(update_fields=["password"])
        _state.update(admin=admin, admin_password=password)
        return
    say(f"seeding {size:,} mailboxes through COPY, each with stored credentials")
    started = time.perf_counter()
    # One token for every seeded credential: encrypting a million passwords one by one
    # would only slow the seeding down; rotation decrypts and re-encrypts each all the same.
    counts = seed(size, credential_token=encryption.encrypt(secrets.token_urlsafe(12)))
    # What autovacuum would do to a settled database (visibility map, hint bits,
    # statistics), done now rather than in the middle of the measurements.
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM ANALYZE mailboxes_mailbox, mailboxes_mailbox_search, mailboxes_user, mailboxes_queue"
        )
    facts.update(counts, seed_seconds=time.perf_counter() - started)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        facts["postgresql"] = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    say(f"seeded and vacuumed in {facts['seed_seconds']:.1f} s")
    password = secrets.token_urlsafe(18)
    admin = user_create(
        username=ADMIN_USERNAME,
        email="bench-admin@bench.invalid",
        password=password,
        full_name="Bench Administrator",
        is_staff=True,
        is_superuser=True,
    )
    _state.update(admin=admin, admin_password=password)
    keep.save({"keys": os.environ["FIELD_ENCRYPTION_KEYS"], "facts": facts})


def _client() -> Client:
    client = Client()
    client.force_login(_state["admin"])
    return client


def _get(client: Client, path: str):
    response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered HTTP {response.status_code}, not 200.")
    return response


def _timed(client: Client, path: str) -> float:
    started = time.perf_counter()
    _get(client, path)
    return time.perf_counter() - started


def _time_paths(client: Client, paths: list[str], runs: int) -> dict[str, list[float]]:
    """Time each path `runs` times, interleaved (after warm-up runs)."""
    for _ in range(WARMUP):
        for path in paths:
            _get(client, path)
    samples: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(runs):
        for path in paths:
            samples[path].append(_timed(client, path))
    return samples


def _queries(client: Client, path: str) -> tuple[int, str]:
    """How many queries serving `path` takes, and the page's next-page link."""
    with CaptureQueriesContext(connection) as captured:
        response = _get(client, path)
    match = re.search(r'href="(\?[^"]*after=[^"]*)"', response.content.decode())
    next_path = f"{path.split('?')[0]}{match.group(1).replace('&amp;', '&')}" if match else ""
    return len(captured.captured_queries), next_path


# Issue 3: the mailbox list -------------------------------------------------------------


def list_pages(*, runs: int) -> list[Row]:
    say(f"mailbox list, search and saved views: {runs} runs each")
    client = _client()
    search = f"/mailboxes/?q={SEARCH_PREFIX}"
    views = {label: f"/mailboxes/?view={key}" for label, key in SAVED_VIEWS.items()}
    samples = _time_paths(client, ["/mailboxes/", search, *views.values()], runs)

    counts = []
    path = "/mailboxes/"
    for _page in range(3):
        count, path = _queries(client, path)
        counts.append(count)
        if not path:
            break
    search_count, _ = _queries(client, search)
    view_counts = {label: _queries(client, path)[0] for label, path in views.items()}
    all_counts = {*counts, search_count, *view_counts.values()}
    fixed = len(all_counts) == 1 and len(counts) == 3
    matches = Mailbox.objects.filter(state="active", email__istartswith=SEARCH_PREFIX).count()

    first = p50(samples["/mailboxes/"])
    rows = [
        Row(
            "/mailboxes/ p50 server time ≤ 30 ms, fixed query count",
            f"{ms(first)}; {'/'.join(map(str, counts))} queries on pages 1/2/3",
            first <= 0.030 and fixed,
            f"p50 of {runs} runs. Query count is {'the same' if fixed else 'NOT the same'} on the first "
            "three "
            f"pages, the search and every saved view ({', '.join(map(str, sorted(all_counts)))}).",
        ),
        Row(
            "search by address prefix p50 ≤ 60 ms",
            f"{ms(p50(samples[search]))}; {search_count} queries",
            p50(samples[search]) <= 0.060,
            f'q="{SEARCH_PREFIX}": {matches:,} active mailboxes match; p50 of {runs} runs.',
        ),
    ]
    for label, path in views.items():
        value = p50(samples[path])
        rows.append(
            Row(
                f"saved view {label} p50 ≤ 60 ms",
                f"{ms(value)}; {view_counts[label]} queries",
                value <= 0.060,
            )
        )
    return rows


# Issue 16: the "contains" search and the owner picker -------------------------------------


def contains_search_and_picker(*, runs: int) -> list[Row]:
    say(f'mailbox list "contains" search and the owner picker: {runs} runs each')
    client = _client()
    searches = {label: f"/mailboxes/?q={quote(q)}" for label, q in CONTAINS_SEARCHES.items()}
    pickers = {label: f"/users/autocomplete/?q={quote(q)}" for label, q in PICKER_SEARCHES.items()}
    samples = _time_paths(client, [*searches.values(), *pickers.values()], runs)
    rows = []
    for label, path in searches.items():
        value = p50(samples[path])
        count, _ = _queries(client, path)
        rows.append(
            Row(
                f"/mailboxes/ contains search, {label}, p50 ≤ 60 ms",
                f"{ms(value)}; {count} queries",
                value <= 0.060,
                f'q="{CONTAINS_SEARCHES[label]}" ({CONTAINS_INDEXES[label]}); p50 of {runs} runs.',
            )
        )
    for label, path in pickers.items():
        value = p50(samples[path])
        found = len(_get(client, path).json()["results"])
        rows.append(
            Row(
                f"owner picker, {label}, p50 ≤ 60 ms",
                f"{ms(value)}; {found} users",
                value <= 0.060,
                f'/users/autocomplete/?q="{PICKER_SEARCHES[label]}"; p50 of {runs} runs.',
            )
        )
    return rows


# Issue 5: the admin ----------------------------------------------------------------------


@override_settings(ROOT_URLCONF="bench.urls")  # the product's URLs and /untuned-admin/
def admin_changelist(*, runs: int, untuned_runs: int) -> list[Row]:
    say(f"admin mailbox changelist ({runs} runs) against the untuned ModelAdmin ({untuned_runs} runs)")
    client = _client()
    tuned, untuned = "/admin/mailboxes/mailbox/", "/untuned-admin/mailboxes/mailbox/"
    for _ in range(WARMUP):
        _get(client, tuned)
    _get(client, untuned)
    tuned_samples, untuned_samples = [], []
    # Interleaved, so both see the same machine and the same cache.
    for i in range(max(runs, untuned_runs)):
        if i < runs:
            tuned_samples.append(_timed(client, tuned))
        if i < untuned_runs:
            untuned_samples.append(_timed(client, untuned))
    tuned_count, _ = _queries(client, tuned)
    untuned_count, _ = _queries(client, untuned)
    ours, theirs = p50(tuned_samples), p50(untuned_samples)
    speedup = theirs / ours
    return [
        Row(
            "admin mailbox changelist p50 ≤ 60 ms",
            f"{ms(ours)}; {tuned_count} queries",
            ours <= 0.060,
            f"p50 of {runs} runs.",
        ),
        Row(
            "admin changelist ≥ 3× faster than an untuned ModelAdmin",
            f"{speedup:.1f}× ({ms(ours)} vs {ms(theirs)}; {untuned_count} queries)",
            speedup >= 3,
            f"Untuned: Django's defaults on /untuned-admin/ (COUNT(*) per page, a query per row "
            f"for related columns), p50 of {untuned_runs} runs interleaved with ours, same data.",
        ),
    ]


def bulk_set_server_profile(size: int, *, runs: int) -> list[Row]:
    """Set Server Profile through the background path: the admin action schedules a job,
    and the worker (`db_worker --batch`) runs it; timed from scheduling to the result."""
    from django.core.management import call_command

    from mailboxes.models import BulkJob
    from mailboxes.services.bulk_jobs import mailboxes_bulk_action

    count = min(100_000, size // 2)
    ids = list(Mailbox.objects.filter(kind="user").order_by("pk").values_list("pk", flat=True)[:count])
    profiles = list(EmailServerProfile.objects.filter(name__startswith="Bench profile").order_by("name")[1:])
    say(f"Set Server Profile on {len(ids):,} mailboxes (background job), {runs} runs")
    rates, refused, updated = [], 0, []
    for run in range(runs):
        profile = profiles[run % len(profiles)]
        started = time.perf_counter()
        job = mailboxes_bulk_action(
            action=BulkJob.Action.SET_SERVER_PROFILE,
            mailbox_ids=ids,
            parameters={"server_profile": profile.pk},
            actor=_state["admin"],
        )
        if isinstance(job, BulkJob):  # else a selection small enough for the request (a small SIZE)
            call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0", verbosity=0)
            job.refresh_from_db()
        outcome_updated, outcome_refused = job.updated, len(job.refused)
        elapsed = time.perf_counter() - started
        rates.append(rate(len(ids), elapsed))
        refused += outcome_refused
        updated.append(outcome_updated)
        say(f"  run {run + 1}: {elapsed:.1f} s, {outcome_updated:,} updated, {outcome_refused} refused")
    # The runs left dead rows behind them (each changed row is a new version, plus its
    # history): settle them now, as after seeding, rather than have autovacuum take a core
    # from the timed scenarios that follow (Test & Enable, mail processing).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE mailboxes_mailbox, mailboxes_mailbox_search, django_admin_log")
    value = p50(rates)
    label = "100,000" if count == 100_000 else f"{count:,} (SIZE/2)"
    return [
        Row(
            f"Set Server Profile on {label} mailboxes ≥ 2,000 records/s (background)",
            f"{value:,.0f} records/s",
            value >= 2000 and refused == 0,
            f"p50 of {runs} runs, each to another profile ({', '.join(f'{u:,}' for u in updated)} rows "
            f"changed; {refused} refused), scheduled as a bulk job and run by db_worker --batch, "
            "every rule checked, with history written.",
        )
    ]


# Issue 4: Test & Enable ------------------------------------------------------------------


# Issue 15: the servers share the two cores with the client, so the budget is wall time
# (the hand-written connectors took 1.56 s).
TEST_AND_ENABLE_BUDGET = 2.5
# The thousand are tested this many times, and the median run is the figure: this machine's
# CPU speed wanders (the same pure-Python loop takes 0.65 to 1.13 s minutes apart), and one
# run of 2.5 s is at its mercy.
THOUSAND_RUNS = 3


def test_and_enable(*, runs: int) -> list[Row]:
    from bench.mailservers import mail_servers
    from mailboxes.services.testing import run_mailbox_tests
    from serverprofiles.bindings import mailbox_password_destinations
    from serverprofiles.models import ServerType
    from serverprofiles.services import profile_create

    count, cap = 1000, 10
    say(f"Test & Enable: {count:,} mailboxes against Dovecot and aiosmtpd, max_connections={cap}")
    with mail_servers(sys.executable) as servers:
        profile = profile_create(
            EmailServerProfile(
                name=f"Bench Test & Enable {os.getpid()}",  # a kept cluster keeps earlier runs' profiles
                server_type=ServerType.IMAP_SMTP,
                incoming_server=servers.imap_host,
                incoming_port=servers.imap_port,
                incoming_ssl=False,
                outgoing_server=servers.smtp_host,
                outgoing_port=servers.smtp_port,
                outgoing_ssl=False,
                max_connections=cap,
                timeout_ms=10_000,
                allow_unencrypted_credentials=True,  # the bench's servers speak plain text
            )
        )
        ids = list(
            Mailbox.objects.filter(kind="user", state="active")
            .order_by("-pk")
            .values_list("pk", flat=True)[: count + 1]
        )
        Mailbox.objects.filter(pk__in=ids).update(
            server_profile=profile,
            allow_credentials=True,
            username=servers.username,
            password_ciphertext=encryption.encrypt_bound(
                servers.password, mailbox_password_destinations(profile)
            ),
            incoming_method="server-side-sync",
            outgoing_method="server-side-sync",
            act_method="none",
            approval_status=ApprovalStatus.APPROVED,
        )
        single, many = ids[0], ids[1:]
        for _ in range(WARMUP):
            check_results(run_mailbox_tests([single]))
        one = []
        for _ in range(runs):
            started = time.perf_counter()
            check_results(run_mailbox_tests([single]))
            one.append(time.perf_counter() - started)
        thousands = []
        for _ in range(THOUSAND_RUNS):
            run, results = timed(lambda: run_mailbox_tests(many))
            check_results(results, expected=count)
            thousands.append(run)
    median = median_run(thousands)
    ideal = count * p50(one) / cap
    cores = os.cpu_count() or 1
    return [
        Row(
            f"Test & Enable {count:,} mailboxes (cap {cap}), library clients ≤ {TEST_AND_ENABLE_BUDGET:g} s",
            f"{median.wall:.2f} s; {ms(median.process_cpu / count)} CPU per mailbox (testing process)",
            median.wall <= TEST_AND_ENABLE_BUDGET,
            f"p50 of {len(thousands)} runs ({', '.join(f'{run.wall:.2f}' for run in thousands)} s). IMAP "
            f"through IMAPClient, SMTP through smtplib. One mailbox: {ms(p50(one))} (p50 of {runs} runs; "
            f"IMAP and SMTP login, results recorded); {count:,} × that ÷ {cap} = {ideal:.2f} s. Dovecot "
            f"(plain IMAP) and aiosmtpd (own process) on loopback, sharing the machine with the client. "
            f"During the median run: the {cores} CPU cores were {median.busy:.0%} busy (client, servers, "
            f"PostgreSQL and whatever else runs): {median.machine_cpu:.2f} s of CPU "
            f"({ms(median.machine_cpu / count)} per mailbox); the testing process used "
            f"{median.process_cpu:.2f} s of it.",
        )
    ]


def check_results(results, *, expected: int = 1) -> None:
    failed = [r for r in results if r.failed or not r.tested]
    if len(results) != expected or failed:
        detail = failed[0].causes or [failed[0].note] if failed else []
        raise RuntimeError(
            f"Test & Enable: {len(results)} results, {len(failed)} failed (expected {expected} successes): "
            f"{detail}"
        )


# Issue 6: the commands -------------------------------------------------------------------


def _manage(args: list[str], env: dict[str, str]):
    run = run_process([sys.executable, "manage.py", *args], env=env, cwd=str(ROOT))
    if run.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed (exit {run.returncode}): {run.stderr[-1000:]}")
    return run


def _memory_note(run) -> str:
    return (
        f"peak RSS {run.peak_rss / MB:.0f} MB; RSS at half-time {run.rss_at(0.5) / MB:.0f} MB, "
        f"grew {run.growth_after(0.5) / MB:.0f} MB after it"
    )


def commands(env: dict[str, str], command: str) -> list[Row]:
    """One command's budget: apply_config, export_config or rotate_encryption_keys."""
    measure = {
        "apply_config": _apply_config,
        "export_config": _export_config,
        "rotate_encryption_keys": _rotate_keys,
    }
    return measure[command](env)


def _apply_config(env: dict[str, str]) -> list[Row]:
    users = 10_000
    say(f"apply_config: {users:,} users + {users:,} mailboxes with credentials")
    profile = EmailServerProfile.objects.filter(name__startswith="Bench profile").order_by("name").first()
    document = {
        "users": [
            {
                "username": f"applied{i}",
                "full_name": f"Applied User {i}",
                "email": f"applied{i}@apply{i % 50}.test",
                "active": True,
            }
            for i in range(users)
        ],
        "mailboxes": [
            {
                "email": f"applied{i}@apply{i % 50}.test",
                "server_profile": profile.name,
                "incoming": "server-side-sync",
                "outgoing": "server-side-sync",
                "allow_credentials": True,
                "username": f"applied{i}@apply{i % 50}.test",
                "password_env": "BENCH_APPLY_PASSWORD",
            }
            for i in range(users)
        ],
    }
    with tempfile.TemporaryDirectory(prefix="mailboxadmin-bench-") as directory:
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(document))
        run = _manage(["apply_config", str(path)], {**env, "BENCH_APPLY_PASSWORD": secrets.token_urlsafe(12)})
    records = 2 * users
    created = Mailbox.objects.filter(email__startswith="applied", allow_credentials=True).count()
    if created != users:
        raise RuntimeError(f"apply_config: {created} mailboxes with credentials, expected {users}.")
    value = rate(records, run.seconds)
    return [
        Row(
            "apply_config 10,000 users + 10,000 mailboxes ≥ 1,000 records/s, < 300 MB",
            f"{value:,.0f} records/s; peak RSS {run.peak_rss / MB:.0f} MB",
            value >= 1000 and run.peak_rss < 300 * MB,
            f"{records:,} records in {run.seconds:.1f} s (the whole command in a subprocess, start-up "
            f"included); peak RSS is the command's high-water mark (VmHWM).",
        )
    ]


def _export_config(env: dict[str, str]) -> list[Row]:
    say("export_config of the whole configuration")
    with tempfile.TemporaryDirectory(prefix="mailboxadmin-bench-") as directory:
        path = Path(directory) / "export.json"
        run = _manage(["export_config", "--output", str(path)], env)
        size = path.stat().st_size
    numbers = [
        int(n.replace(",", ""))
        for n in re.findall(r"([\d,]+) (?:server profile|user|queue|mailbox)", run.stdout)
    ]
    records = sum(numbers)
    mailboxes = Mailbox.objects.count()
    value = rate(records, run.seconds)
    flat = run.is_flat()
    return [
        Row(
            f"export_config of {mailboxes:,} mailboxes ≥ 20,000 records/s, memory flat",
            f"{value:,.0f} records/s; peak RSS {run.peak_rss / MB:.0f} MB{'' if flat else ' (growing)'}",
            value >= 20_000 and flat,
            f"{records:,} records (profiles, users, queues and {mailboxes:,} mailboxes; "
            f"{rate(mailboxes, run.seconds):,.0f} mailboxes/s) in {run.seconds:.1f} s, {size / MB:.0f} MB of "
            f"JSON; {_memory_note(run)} (flat: ≤ 16 MB).",
        )
    ]


def _rotate_keys(env: dict[str, str]) -> list[Row]:
    count = Mailbox.objects.exclude(password_ciphertext="").count()
    say(f"rotate_encryption_keys over {count:,} credentials")
    new_key = encryption.generate_key()
    keys = f"{new_key},{env['FIELD_ENCRYPTION_KEYS']}"
    run = _manage(["rotate_encryption_keys"], {**env, "FIELD_ENCRYPTION_KEYS": keys})
    match = re.search(r"([\d,]+) stored passwords examined; re-encrypted ([\d,]+)", run.stdout)
    if not match:
        raise RuntimeError(f"rotate_encryption_keys said: {run.stdout.strip()[:300]}")
    changed = int(match.group(2).replace(",", ""))
    if changed < count:
        raise RuntimeError(f"rotate_encryption_keys re-encrypted {changed:,} of {count:,} credentials.")
    # From now on the first key is the new one (the load test's server uses both). A kept
    # cluster remembers both: every credential is now under the new key, and anything
    # written earlier in this run under the one before.
    env["FIELD_ENCRYPTION_KEYS"] = keys
    from bench import keep

    if kept := keep.load():
        keep.save({**kept, "keys": keys})
    value = rate(changed, run.seconds)
    flat = run.is_flat()
    return [
        Row(
            f"rotate_encryption_keys over {count:,} credentials ≥ 5,000/s, memory flat",
            f"{value:,.0f} credentials/s; peak RSS {run.peak_rss / MB:.0f} MB{'' if flat else ' (growing)'}",
            value >= 5_000 and flat,
            f"{changed:,} re-encrypted under a new first key in {run.seconds:.1f} s (whole command, "
            f"start-up included); {_memory_note(run)} (flat: ≤ 16 MB).",
        )
    ]


# Issue 7: the load test ------------------------------------------------------------------


def load_test(env: dict[str, str], *, seconds: int, connections: int, threads: int) -> list[Row]:
    from bench.load import check_page, log_in, production_server, run_wrk

    serve_env = {**env, "ALLOWED_HOSTS": "127.0.0.1"}
    serve_env.pop("CONN_MAX_AGE", None)
    mailbox = Mailbox.objects.filter(kind="user", state="active").order_by("pk").first()
    pages = [
        ("mailbox list", "/mailboxes/"),
        ("mailbox form", f"/mailboxes/{mailbox.pk}/"),
        ("search", f"/mailboxes/?q={SEARCH_PREFIX}"),
    ]
    log_path = ROOT / "var" / "bench-serve.log"
    log_path.parent.mkdir(exist_ok=True)
    say(f"load test: scripts/serve-production (gunicorn, 2 workers); wrk {seconds} s per page")
    results = []
    with production_server(sys.executable, serve_env, log_path) as (host, port):
        cookie = log_in(host, port, ADMIN_USERNAME, _state["admin_password"])
        for _label, path in pages:
            check_page(host, port, path, cookie)
        for label, path in pages:
            result = run_wrk(
                host, port, label, path, cookie, seconds=seconds, connections=connections, threads=threads
            )
            say(f"  {label}: {result.per_second:.0f} requests/s, {result.non2xx} non-2xx")
            results.append(result)
    return [
        Row(
            f"load test, {r.label} ({r.path}): non-2xx responses = 0",
            f"{r.per_second:,.0f} req/s, p50 {ms(r.p50)}, p99 {ms(r.p99)}, {r.non2xx} non-2xx",
            r.non2xx == 0 and r.socket_errors == 0,
            f"{r.requests:,} requests in {r.seconds:.0f} s; {connections} connections, "
            f"{threads} wrk threads; "
            f"{r.socket_errors} socket errors.",
        )
        for r in results
    ]
