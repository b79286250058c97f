"""The mail-processing worker: `manage.py process_mailboxes` (SPEC section 8).

Why a long-running command of its own rather than a task in django-tasks' `db_worker`:

- Its only state is the leases in the database (scheduler.py). Kill it anywhere, on any
  host, and its mailboxes are taken over when its leases expire. A self-re-enqueuing task
  would not survive that: django-tasks-db leaves the task of a killed `db_worker` RUNNING
  for ever, the chain of tasks ends there, and restarting it would need cron or a
  watchdog — the very thing workers must not depend on.
- `db_worker` runs one task at a time: a pass over a large mailbox would hold up the
  Test & Enable and bulk actions queued behind it, and those would delay the mail.
- Scaling out is starting more of them: `manage.py process_mailboxes` on any host with
  the same DATABASE_URL, FIELD_ENCRYPTION_KEYS and emails storage (README "Mail
  processing: workers"). `make run` and `make serve` start one beside the `db_worker`.

A worker processes up to MAIL_PROCESSING_THREADS mailboxes at once, one thread each;
every connection still holds one of its profile's connection slots (the engine claims
it), so Maximum Concurrent Connections holds across all workers together. On SIGTERM or
SIGINT it claims nothing more, finishes the passes it is in and gives its leases back; a
second signal stops it at once (its leases then expire).
"""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from mailboxes.models import Mailbox
from mailboxes.processing import scheduler
from mailboxes.processing.eligibility import not_processed_reason
from mailboxes.processing.engine import process_mailbox
from mailboxes.processing.results import PassResult

logger = logging.getLogger(__name__)

# Missing MailboxSync rows are looked for this often (seconds): Test & Enable makes them
# at once; this catches mailboxes enabled any other way.
SWEEP_SECONDS = 300
# `process_mailboxes --once ADDRESS` waits at most this long (seconds) for another worker's
# pass over the mailbox to end (its lease renewed all along), then fails with the reason.
NAMED_WAIT_SECONDS = 600


def run_pass(mailbox_id: int, holder: str) -> PassResult | None:
    """One pass over a mailbox leased to `holder`, recorded (scheduler.finish_pass).
    None if the mailbox is no longer processed (deleted, disabled meanwhile)."""
    mailbox = Mailbox.objects.select_related("server_profile").filter(pk=mailbox_id).first()
    if mailbox is None:
        scheduler.release(mailbox_id, holder)
        return None
    if not_processed_reason(mailbox):
        scheduler.postpone(mailbox, holder)
        return None
    try:
        result = process_mailbox(mailbox)
    except Exception as exc:  # the engine reports failures in its result; this is a last resort
        logger.error("Mail processing of mailbox %s stopped: %s", mailbox_id, type(exc).__name__)
        result = PassResult(
            mailbox.email,
            failed=1,
            cause=f"the pass stopped unexpectedly ({type(exc).__name__}); it is tried again later",
            transient=True,
        )
    if result.skipped:  # not processed after all (an Exchange Server profile, say)
        scheduler.postpone(mailbox, holder)
    else:
        scheduler.finish_pass(mailbox, holder, result)
    return result


def _in_thread(mailbox_id: int, holder: str) -> PassResult | None:
    """A pass in one of the worker's threads, on that thread's own database connection,
    kept from pass to pass as a request's is (CONN_MAX_AGE), dropped when broken."""
    close_old_connections()
    try:
        return run_pass(mailbox_id, holder)
    finally:
        close_old_connections()


class Worker:
    """Claims due mailboxes and processes them until stopped (see the module docstring)."""

    def __init__(self, *, threads: int | None = None, on_result: Callable[[PassResult], None] | None = None):
        self.threads = max(1, threads or settings.MAIL_PROCESSING_THREADS)
        self.holder = scheduler.new_holder()
        self.on_result = on_result
        self.stopping = threading.Event()
        self._next_sweep = 0.0
        # The mailboxes in a pass now, for the LeaseKeeper's thread: replaced whole (one
        # assignment) whenever a pass starts or ends, so that thread never sees it change.
        self._in_pass: frozenset[int] = frozenset()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        logger.info("Mail-processing worker %s started (%s at once)", self.holder, self.threads)
        running: dict[Future, int] = {}
        try:
            with (
                scheduler.LeaseKeeper(self.holder, lambda: self._in_pass),
                ThreadPoolExecutor(self.threads, thread_name_prefix="mail-pass") as pool,
            ):
                while not self.stopping.is_set():
                    claimed = self._claim(pool, running)
                    if running:  # free threads look again after the idle time, or when a pass ends
                        idle = settings.MAIL_PROCESSING_IDLE_SECONDS
                        self._collect(
                            wait(list(running), timeout=idle, return_when=FIRST_COMPLETED).done, running
                        )
                    elif not claimed:
                        self.stopping.wait(settings.MAIL_PROCESSING_IDLE_SECONDS)
                logger.info(
                    "Mail-processing worker %s stopping: finishing %s passes", self.holder, len(running)
                )
                self._collect(wait(list(running)).done, running)
        finally:
            try:
                scheduler.release_leases(self.holder)
            except DatabaseError:  # the leases expire by themselves
                logger.warning("Could not give back the leases of %s", self.holder)
            logger.info("Mail-processing worker %s stopped", self.holder)

    def _claim(self, pool: ThreadPoolExecutor, running: dict[Future, int]) -> list[int]:
        """Claim due mailboxes for the free threads and start their passes. A database
        that is away for a moment is waited for: the worker keeps running (it would
        otherwise stop the server beside it under `make serve`)."""
        try:
            close_old_connections()
            if time.monotonic() >= self._next_sweep:
                scheduler.create_missing_syncs()
                self._next_sweep = time.monotonic() + SWEEP_SECONDS
            claimed = scheduler.claim_due(self.holder, self.threads - len(running))
        except DatabaseError as error:
            logger.warning(
                "Mail processing could not reach the database (%s); trying again", type(error).__name__
            )
            connection.close()
            return []
        for mailbox_id in claimed:
            running[pool.submit(_in_thread, mailbox_id, self.holder)] = mailbox_id
        self._in_pass = frozenset(running.values())
        return claimed

    def _collect(self, done, running: dict[Future, int]) -> None:
        for future in done:
            if future not in running:
                continue
            mailbox_id = running.pop(future)
            self._in_pass = frozenset(running.values())
            try:
                result = future.result()
            except Exception:  # recording failed (the database away): the lease runs out
                logger.exception("Could not record the pass over mailbox %s", mailbox_id)
                continue
            if result is not None and self.on_result is not None:
                self.on_result(result)


def not_processed(address: str, reason: str) -> PassResult:
    """A named mailbox that is not processed: no failure of its server (the engine's
    convention), the reason in `cause`."""
    return PassResult(address, skipped=reason, cause=f"Not processed: {reason}.")


def process_once(mailbox_ids: list[int] | None = None) -> list[PassResult]:
    """`process_mailboxes --once`: one pass now over the given mailboxes (due or not),
    else over every mailbox due now, one after another in this thread; then return.

    A given mailbox that is not processed (inactive, unapproved, not enabled) comes back
    skipped, with the reason; one another worker is processing is waited for (at most
    NAMED_WAIT_SECONDS), then processed.
    """
    holder = scheduler.new_holder()
    results: list[PassResult] = []
    with scheduler.LeaseKeeper(holder):
        try:
            if mailbox_ids is None:
                scheduler.create_missing_syncs()
                due = scheduler.due_ids()
                for start in range(0, len(due), 100):
                    for mailbox_id in scheduler.claim_due(holder, 100, among=due[start : start + 100]):
                        if (result := run_pass(mailbox_id, holder)) is not None:
                            results.append(result)
            else:
                results.extend(_named(mailbox_ids, holder))
        finally:
            scheduler.release_leases(holder)
    return results


def _named(mailbox_ids: list[int], holder: str) -> list[PassResult]:
    mailboxes = Mailbox.objects.select_related("server_profile").in_bulk(mailbox_ids)
    results = {}
    waiting = []
    for pk in mailbox_ids:
        reason = not_processed_reason(mailboxes[pk])
        if reason:
            results[pk] = not_processed(mailboxes[pk].email, reason)
        else:
            waiting.append(pk)
    deadline = time.monotonic() + max(NAMED_WAIT_SECONDS, 2 * settings.MAIL_PROCESSING_LEASE_SECONDS)
    while waiting:
        claimed = scheduler.claim_named(holder, waiting)
        for pk in claimed:
            results[pk] = run_pass(pk, holder) or not_processed(mailboxes[pk].email, "it changed meanwhile")
        waiting = [pk for pk in waiting if pk not in claimed]
        if waiting and time.monotonic() > deadline:
            for pk in waiting:
                results[pk] = PassResult(
                    mailboxes[pk].email,
                    failed=1,
                    cause="another worker kept processing it; try again later",
                )
            break
        if waiting and not claimed:
            time.sleep(0.5)
    return [results[pk] for pk in mailbox_ids]
