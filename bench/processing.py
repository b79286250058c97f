"""`make bench` for mail processing (issue 17, SCENARIOS=mail_processing): two
mail-processing workers (`manage.py process_mailboxes`, as `make serve` runs them) against
the bench's Dovecot, from the moment they start until every message is recorded.

The mail, APPENDed before the workers start (one IMAP connection per account):
- 100 own mailboxes × 100 messages of ≈20 KB (multipart/alternative, text and HTML). They
  are queue mailboxes: M6 lets only forward and queue mailboxes delete, and the issue's
  budget counts the delete, so every one has Delete Emails After Processing on.
- 2,000 messages through one forward mailbox (Delete Emails After Processing on), each
  forwarding one original of ≈20 KB as a message/rfc822 attachment to one of 1,000 user
  mailboxes whose Incoming Email is Forward Mailbox: two originals a user mailbox.

The size is the issue's, not SIZE: the seeded database lends the mailboxes (SIZE ≥ 2,000
has the 100 queue and 1,000 user mailboxes needed). Dovecot's accounts are lines added to
the passwd-file the suite's Dovecot reads (it reads the file again when it changes): one
account a mailbox, no per-account set-up. Every other mailbox is kept out of the run
(not enabled for incoming email) and enabled again after it.

Measured: messages per second end to end (12,000 messages ÷ the time from starting the
workers until the last is recorded, counted in the database), and each worker's memory
sampled from /proc (VmRSS every 50 ms, VmHWM for the peak): its RSS when a quarter of the
messages are recorded and when all are; flat when it grew by at most FLAT_MARGIN between.
Checked, else the bench stops: each message recorded exactly once (the count of each
mailbox), no pass failed, and every INBOX empty afterwards (all delete).
"""

import imaplib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.db import connection
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from bench.measure import MB, busy_share, cpu_times, process_memory, rate, say
from bench.report import Row
from mailboxadmin import encryption
from mailboxes.models import ApprovalStatus, Email, Mailbox
from mailboxes.processing.scheduler import mailboxes_enabled

ROOT = Path(__file__).resolve().parent.parent
OWN_MAILBOXES, OWN_MESSAGES = 100, 100
FORWARDED, FORWARD_TARGETS = 2000, 1000
WORKERS = 2
BUDGET = 300  # messages per second, end to end
FLAT_MARGIN = 16 * MB  # the RSS at 100 % of the messages over the RSS at 25 %
MESSAGE_BYTES = 20_000
SAMPLE_SECONDS = 0.05
COUNT_SECONDS = 0.2
TIMEOUT_SECONDS = 1800

_WORDS = (
    "order invoice delivery account customer please regards thank you meeting schedule "
    "update request support ticket question answer attached report quarter payment review "
    "shipping address contract renewal team project status follow up next week"
).split()


# The mail -------------------------------------------------------------------------------


def _text(seed: int, size: int) -> str:
    """Plain words, lines of about 70 characters, `size` characters in all."""
    words, lines, line, total = _WORDS, [], [], 0
    i = seed
    while total < size:
        word = words[(i * 7919 + i // 3) % len(words)]
        i += 1
        line.append(word)
        if sum(len(w) + 1 for w in line) > 70:
            text = " ".join(line)
            lines.append(text)
            total += len(text) + 2
            line = []
    return "\r\n".join(lines)


def _message(*, token: str, number: int, sender: str, to: str, subject: str, size: int) -> bytes:
    """A multipart/alternative message of about `size` bytes (text and HTML halves)."""
    half = size // 2 - 400
    text = _text(number, half)
    html = (
        "<html><body><p>" + _text(number + 1, half - 40).replace("\r\n", "</p>\r\n<p>") + "</p></body></html>"
    )
    boundary = f"=_alt_{token}_{number}"
    return (
        f"From: {sender}\r\n"
        f"To: {to}\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Fri, 04 Dec 2026 10:{number % 60:02d}:00 +0000\r\n"
        f"Message-ID: <procbench-{token}-{number}@client.test>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{text}\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{html}\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def _forwarding(*, token: str, number: int, forward: str, original: bytes) -> bytes:
    """A message forwarding `original` as a message/rfc822 attachment, as mail clients do."""
    boundary = f"=_fwd_{token}_{number}"
    return (
        (
            "From: Forwarding Rule <rules@bench.test>\r\n"
            f"To: {forward}\r\n"
            f"Subject: Fwd: original {number}\r\n"
            "Date: Fri, 04 Dec 2026 11:00:00 +0000\r\n"
            f"Message-ID: <procbench-fwd-{token}-{number}@bench.test>\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
            "\r\n"
            f"--{boundary}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "\r\n"
            "Forwarded message attached.\r\n"
            f"--{boundary}\r\n"
            "Content-Type: message/rfc822\r\n"
            'Content-Disposition: attachment; filename="original.eml"\r\n'
            "\r\n"
        ).encode()
        + original
        + f"\r\n--{boundary}--\r\n".encode()
    )


@dataclass
class Plan:
    """The mailboxes of the run and the messages each account gets."""

    token: str
    own: list[Mailbox]
    forward: Mailbox
    targets: list[Mailbox]
    expected: dict[int, int] = field(default_factory=dict)  # mailbox id -> new Emails
    appended_from: datetime | None = None  # before the first APPEND (its INTERNALDATE)

    def recorded(self):
        """This run's Emails: received (APPENDed) since the run began, in its mailboxes.
        A kept cluster's earlier runs, and the emails the /emails/ scenario seeded, are
        older: through the (mailbox, received_on) index, only this run's rows are read."""
        return Email.objects.filter(mailbox_id__in=list(self.expected), received_on__gte=self.appended_from)

    @property
    def total(self) -> int:
        return sum(self.expected.values())

    def accounts(self) -> list[str]:
        return [m.email for m in self.own] + [self.forward.email]

    def messages(self, address: str):
        """The messages APPENDed to `address`'s INBOX (made as they are sent)."""
        if address == self.forward.email:
            for k in range(FORWARDED):
                target = self.targets[k % len(self.targets)]
                original = _message(
                    token=self.token,
                    number=1_000_000 + k,
                    sender=f"Customer {k} <customer{k}@client{k % 50}.test>",
                    to=target.email,
                    subject=f"Question {k} for {target.name}",
                    size=MESSAGE_BYTES - 700,
                )
                yield _forwarding(token=self.token, number=k, forward=address, original=original)
            return
        base = next(i for i, m in enumerate(self.own) if m.email == address) * OWN_MESSAGES
        for k in range(OWN_MESSAGES):
            yield _message(
                token=self.token,
                number=base + k,
                sender=f"Customer {base + k} <customer{base + k}@client{k % 50}.test>",
                to=address,
                subject=f"Order {base + k}",
                size=MESSAGE_BYTES,
            )


# Preparing ------------------------------------------------------------------------------


def _prepare_mailboxes(servers, password: str) -> tuple[Plan, list[int]]:
    """Borrow the seeded mailboxes the run needs, point them at the bench's Dovecot, approved
    and enabled for incoming (the fields Test & Enable sets, set here set-wise); keep every
    other mailbox out of the run. Returns the plan and the ids of the mailboxes taken out
    (enabled again afterwards)."""
    from serverprofiles.bindings import mailbox_password_destinations
    from serverprofiles.models import EmailServerProfile, ServerType
    from serverprofiles.services import profile_create

    profile = profile_create(
        EmailServerProfile(
            name=f"Bench mail processing {secrets.token_hex(3)}",
            server_type=ServerType.IMAP_SMTP,
            incoming_server=servers.plain_host,
            incoming_port=servers.imap_port,
            incoming_ssl=False,
            outgoing_server=servers.plain_host,
            outgoing_port=25,
            outgoing_ssl=False,
            # Room for every worker thread (2 × MAIL_PROCESSING_THREADS): the cap is not
            # what is measured here.
            max_connections=20,
            timeout_ms=30_000,
            allow_unencrypted_credentials=True,  # the bench's Dovecot speaks plain text
        )
    )
    active = Mailbox.objects.filter(state=Mailbox.State.ACTIVE).order_by("pk")
    own = list(active.filter(kind=Mailbox.Kind.QUEUE)[:OWN_MAILBOXES])
    forward = active.filter(kind=Mailbox.Kind.FORWARD).first()
    targets = list(active.filter(kind=Mailbox.Kind.USER)[:FORWARD_TARGETS])
    if len(own) < OWN_MAILBOXES or forward is None or len(targets) < FORWARD_TARGETS:
        raise SystemExit(
            f"bench: mail_processing needs {OWN_MAILBOXES} active queue mailboxes, a forward mailbox "
            f"and {FORWARD_TARGETS} active user mailboxes among the seeded ones: run it with SIZE ≥ 2000."
        )
    ours = [m.pk for m in own] + [forward.pk] + [m.pk for m in targets]
    taken_out = list(
        Mailbox.objects.filter(enabled_incoming=True).exclude(pk__in=ours).values_list("pk", flat=True)
    )
    _set_incoming(taken_out, enabled=False)
    ciphertext = encryption.encrypt_bound(password, mailbox_password_destinations(profile))
    enabled = {
        "server_profile": profile,
        "incoming_method": "server-side-sync",
        "incoming_status": "success",
        "incoming_error": "",
        "enabled_incoming": True,
        "delete_after_processing": True,
        "process_email_after": None,
        "allow_credentials": True,
        "password_ciphertext": ciphertext,
    }
    for mailbox in [*own, forward]:  # its own account name: its address
        Mailbox.objects.filter(pk=mailbox.pk).update(username=mailbox.email, **enabled)
    Mailbox.objects.filter(pk__in=[m.pk for m in own]).update(approval_status=ApprovalStatus.APPROVED)
    # As Test & Enable leaves them: due now, no failures (a kept cluster's earlier run left
    # them due later, each at its own time).
    mailboxes_enabled([m.pk for m in own] + [forward.pk])
    Mailbox.objects.filter(pk__in=[m.pk for m in targets]).update(
        incoming_method="forward-mailbox", approval_status=ApprovalStatus.APPROVED, enabled_incoming=False
    )
    plan = Plan(token=secrets.token_hex(4), own=own, forward=forward, targets=targets)
    plan.expected = {m.pk: OWN_MESSAGES for m in own}
    for k in range(FORWARDED):
        target = targets[k % len(targets)]
        plan.expected[target.pk] = plan.expected.get(target.pk, 0) + 1
    return plan, taken_out


def _set_incoming(ids: list[int], *, enabled: bool) -> None:
    """Enabled for incoming email or not, a batch at a time (at a million mailboxes, a
    few hundred thousand are enabled); then the dead rows this leaves are vacuumed, as
    after seeding: else autovacuum goes through the mailbox table and its indexes during
    the timed run (in a full run it took a core from it: 34 s of the database's and
    Dovecot's CPU against 7 s without it)."""
    for start in range(0, len(ids), 10_000):
        Mailbox.objects.filter(pk__in=ids[start : start + 10_000]).update(enabled_incoming=enabled)
    if ids:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE mailboxes_mailbox")


def _add_accounts(dovecot, accounts: list[str], password: str) -> None:
    """One passwd-file line an account, added to the file the suite's Dovecot reads; returns
    when Dovecot takes them."""
    passwd = dovecot.directory / "passwd"
    with passwd.open("a", encoding="utf-8") as file:
        for address in accounts:
            file.write(f"{address}:{{PLAIN}}{password}::::::\n")
    # Dovecot notices the change when it next looks at the file (within a few seconds).
    deadline = time.monotonic() + 30
    while True:
        with imaplib.IMAP4(dovecot.plain_host, dovecot.imap_port, timeout=60) as client:
            try:
                client.login(accounts[-1], password)
                return
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.5)


def _append_all(dovecot, plan: Plan, password: str) -> float:
    """APPEND every message, one connection an account, a few accounts at once; seconds."""
    started = time.perf_counter()

    def fill(address: str) -> int:
        with imaplib.IMAP4(dovecot.plain_host, dovecot.imap_port, timeout=60) as client:
            client.login(address, password)
            count = 0
            for message in plan.messages(address):
                status, reply = client.append("INBOX", None, None, message)
                if status != "OK":
                    raise RuntimeError(f"APPEND to {address} answered {status} {reply}")
                count += 1
            return count

    # The forward account first: its 2,000 are the longest single account to fill.
    accounts = [plan.forward.email] + [m.email for m in plan.own]
    with ThreadPoolExecutor(4) as pool:
        appended = sum(pool.map(fill, accounts))
    if appended != OWN_MAILBOXES * OWN_MESSAGES + FORWARDED:
        raise RuntimeError(f"APPENDed {appended} messages")
    return time.perf_counter() - started


def _inbox_counts(dovecot, accounts: list[str], password: str) -> dict[str, int]:
    """EXISTS of each account's INBOX (and of Unprocessed, where there is one)."""
    left = {}
    for address in accounts:
        with imaplib.IMAP4(dovecot.plain_host, dovecot.imap_port, timeout=60) as client:
            client.login(address, password)
            for folder in ("INBOX", "Unprocessed"):
                status, data = client.select(folder, readonly=True)
                if status == "OK" and int(data[0]) > 0:
                    left[f"{address} {folder}"] = int(data[0])
    return left


# Running the workers --------------------------------------------------------------------


@dataclass
class WorkerRun:
    process: subprocess.Popen
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, VmRSS bytes)
    peak: int = 0  # VmHWM, bytes
    cpu: float = 0.0  # seconds of CPU (user and system) when the last message was recorded
    output: list[str] = field(default_factory=list)

    def rss_at(self, moment: float) -> int:
        """The RSS sampled last at or before `moment` (seconds from the start)."""
        earlier = [rss for at, rss in self.samples if at <= moment]
        return earlier[-1] if earlier else 0


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (all its threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_workers(env: dict[str, str], plan: Plan) -> tuple[float, float, list[WorkerRun], float]:
    """Start the workers, wait until every message is recorded, stop them. Returns the
    seconds to the last message, the moment a quarter was recorded, the workers, and how
    busy the machine's cores were meanwhile."""
    recorded = plan.recorded()
    if recorded.exists():
        raise RuntimeError("mail_processing: messages were recorded before the workers started")
    started, cpu_before = time.perf_counter(), cpu_times()
    workers = [
        WorkerRun(
            subprocess.Popen(  # noqa: S603 (this Python, our manage.py)
                [sys.executable, "manage.py", "process_mailboxes", "--json"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        for _ in range(WORKERS)
    ]
    done = threading.Event()

    def sample():
        while not done.is_set():
            at = time.perf_counter() - started
            for worker in workers:
                memory = process_memory(worker.process.pid)
                if memory is not None:
                    worker.samples.append((at, memory[0]))
                    worker.peak = max(worker.peak, memory[1])
            done.wait(SAMPLE_SECONDS)

    def drain(worker: WorkerRun):
        for line in worker.process.stdout:
            worker.output.append(line)

    threads = [threading.Thread(target=sample, daemon=True)]
    threads += [threading.Thread(target=drain, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    quarter = None
    try:
        while True:
            count = recorded.count()
            now = time.perf_counter() - started
            if quarter is None and count >= plan.total / 4:
                quarter = now
            if count >= plan.total:
                seconds = now
                break
            if now > TIMEOUT_SECONDS or any(w.process.poll() is not None for w in workers):
                errors = "".join(
                    w.process.stderr.read()[-2000:] for w in workers if w.process.poll() is not None
                )
                raise RuntimeError(
                    f"mail_processing: {count:,} of {plan.total:,} recorded after {now:.0f} s. {errors}"
                )
            time.sleep(COUNT_SECONDS)
        busy = busy_share(cpu_before, cpu_times())
        for worker in workers:
            worker.cpu = _cpu_seconds(worker.process.pid)
        done.set()  # the last samples are the ones at 100 %
    finally:
        done.set()
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        for thread in threads:
            thread.join(timeout=10)
    return seconds, quarter, workers, busy


def _timeline(plan: Plan, workers_started: datetime) -> str:
    """When the own mailboxes' messages and the forwarded ones were recorded, in seconds
    from the workers' start: the forward mailbox is one pass, in one thread."""
    this_run = plan.recorded()
    spans = this_run.aggregate(
        own_first=Min("recorded_on", filter=Q(forward_mailbox__isnull=True)),
        own_last=Max("recorded_on", filter=Q(forward_mailbox__isnull=True)),
        fwd_first=Min("recorded_on", filter=Q(forward_mailbox=plan.forward)),
        fwd_last=Max("recorded_on", filter=Q(forward_mailbox=plan.forward)),
    )
    at = {name: (moment - workers_started).total_seconds() for name, moment in spans.items()}
    return (
        f"Own mailboxes' messages recorded from {at['own_first']:.1f} s to {at['own_last']:.1f} s after the "
        f"workers started; the forward mailbox's (one pass, one thread) from {at['fwd_first']:.1f} s to "
        f"{at['fwd_last']:.1f} s."
    )


def _failures(workers: list[WorkerRun]) -> list[str]:
    import json

    failed = []
    for worker in workers:
        for line in worker.output:
            line = line.strip()
            if line.startswith("{"):
                result = json.loads(line)
                if result.get("failed") or result.get("unmatched"):
                    failed.append(f"{result['mailbox']}: {result.get('cause')}")
    return failed


# The scenario ---------------------------------------------------------------------------


def mail_processing(env: dict[str, str]) -> list[Row]:
    from bench.mailservers import _dovecot

    total = OWN_MAILBOXES * OWN_MESSAGES + FORWARDED
    password = secrets.token_urlsafe(18)
    emails_dir = Path(tempfile.mkdtemp(prefix="mailboxadmin-bench-emails-"))
    worker_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "bench.processing_settings",
        "BENCH_EMAILS_DIR": str(emails_dir),
    }
    load = os.getloadavg()[0]
    taken_out: list[int] = []
    try:
        with _dovecot() as dovecot:
            plan, taken_out = _prepare_mailboxes(dovecot, password)
            _add_accounts(dovecot, plan.accounts(), password)
            say(
                f"mail_processing: APPENDing {total:,} messages of ≈20 KB "
                f"into {len(plan.accounts())} accounts"
            )
            # INTERNALDATE has whole seconds; the Python, Dovecot and PostgreSQL clocks are one.
            plan.appended_from = timezone.now() - timedelta(seconds=2)
            appended_in = _append_all(dovecot, plan, password)
            say(
                f"APPENDed in {appended_in:.1f} s; {WORKERS} workers (manage.py process_mailboxes) "
                "until all are recorded"
            )
            ids = list(plan.expected)
            load = os.getloadavg()[0]
            workers_started = timezone.now()
            seconds, quarter, workers, busy = _run_workers(worker_env, plan)
            counts = dict(plan.recorded().values_list("mailbox_id").annotate(n=Count("id")))
            wrong = {pk: counts.get(pk, 0) for pk in ids if counts.get(pk, 0) != plan.expected[pk]}
            if wrong:
                raise RuntimeError(
                    f"mail_processing: mailboxes recorded other counts than sent: {list(wrong.items())[:5]}"
                )
            failures = _failures(workers)
            if failures:
                raise RuntimeError(f"mail_processing: passes failed or left mail unprocessed: {failures[:5]}")
            timeline = _timeline(plan, workers_started)
            left = _inbox_counts(dovecot, plan.accounts(), password)
            if left:
                raise RuntimeError(f"mail_processing: messages left on the server: {list(left.items())[:5]}")
    finally:
        _set_incoming(taken_out, enabled=True)
        shutil.rmtree(emails_dir, ignore_errors=True)
    per_second = rate(total, seconds)
    memory = []
    flat = True
    for n, worker in enumerate(workers, 1):
        at_quarter, at_end = worker.rss_at(quarter), worker.rss_at(seconds)
        flat = flat and at_end - at_quarter <= FLAT_MARGIN
        memory.append(
            f"worker {n}: peak {worker.peak / MB:.0f} MB, "
            f"RSS {at_quarter / MB:.0f} MB at 25 % → {at_end / MB:.0f} MB at 100 %"
        )
    cores = os.cpu_count() or 1
    worker_cpu = sum(worker.cpu for worker in workers)
    how = (
        f"{OWN_MAILBOXES} queue mailboxes × {OWN_MESSAGES} messages of ≈20 KB and {FORWARDED:,} forwarded "
        f"(message/rfc822) through one forward mailbox to {FORWARD_TARGETS:,} user mailboxes, all deleted "
        f"after recording; {WORKERS} workers × MAIL_PROCESSING_THREADS threads, Dovecot (plain IMAP) and "
        f"PostgreSQL on the same {cores} cores, {busy:.0%} busy ({busy * cores * seconds:.0f} s of CPU, "
        f"{worker_cpu:.0f} s of it the workers': {worker_cpu / total * 1000:.1f} ms a message); "
        f"load average {load:.2f} at the start. "
        f"{timeline} "
        f"Each message recorded exactly once (counts by mailbox), no pass failed, every INBOX empty after. "
        f"APPENDing them took {appended_in:.0f} s (not counted)."
    )
    return [
        Row(
            f"mail processing, 2 workers ≥ {BUDGET} messages/s end to end",
            f"{per_second:,.0f} messages/s ({total:,} in {seconds:.1f} s)",
            per_second >= BUDGET,
            how,
        ),
        Row(
            f"mail processing, worker RSS flat (25 % → 100 % of the messages ≤ +{FLAT_MARGIN // MB} MB)",
            "; ".join(memory),
            flat,
            "VmRSS sampled every 50 ms from /proc, the peak from VmHWM.",
        ),
    ]
