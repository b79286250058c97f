import json
import os
import signal

from django.core.management.base import CommandError

from mailboxadmin.commands import ScriptCommand, printable
from mailboxes.models import Mailbox
from mailboxes.processing.results import PassResult
from mailboxes.processing.worker import Worker, process_once


class Command(ScriptCommand):
    help = (
        "Fetch, route and record mail (SPEC section 8). With --once: one pass now over the "
        "mailboxes named by ADDRESS (due or not), else over every mailbox that is due, then "
        "exit. Without --once: run as a mail-processing worker until SIGTERM or SIGINT (it "
        "finishes the passes it is in); any number of workers on any number of hosts share "
        "one database, each mailbox processed by one worker at a time (each worker needs the "
        "same DATABASE_URL, FIELD_ENCRYPTION_KEYS and emails storage; README: Mail "
        "processing: workers). Prints one line per "
        "mailbox processed (--json: one JSON object per line: mailbox, fetched, recorded, "
        "unmatched, deleted, failed, cause). Exits 1 if any mailbox failed; an unknown "
        "ADDRESS stops it before anything is processed."
    )
    example = """
        manage.py process_mailboxes --once alice@contoso.test support@contoso.test
        manage.py process_mailboxes --once --json
        manage.py process_mailboxes            # a worker, until stopped
    """

    def add_arguments(self, parser):
        parser.add_argument(
            "addresses",
            metavar="ADDRESS",
            nargs="*",
            help="Email address of a mailbox to process (with --once; default: every due mailbox).",
        )
        parser.add_argument("--once", action="store_true", help="One pass now, then exit.")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="Print one JSON object per mailbox processed."
        )

    def handle(self, *args, addresses, once, as_json, **options):
        self.as_json = as_json
        if addresses and not once:
            raise CommandError("ADDRESS needs --once: a worker processes every due mailbox.")
        if not once:
            self.run_worker()
            return
        results = process_once(self.named(addresses) if addresses else None)
        if not results and not self.as_json:
            self.stdout.write("No mailbox is due.")
        for result in results:
            self.show(result)
        failed = [result for result in results if result.failed]
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(results)} mailbox{'' if len(results) == 1 else 'es'} failed.",
                returncode=1,
            )

    def named(self, addresses: list[str]) -> list[int]:
        """The mailboxes named, each once, in order; an unknown address stops everything."""
        ids: list[int] = []
        for address in addresses:
            pk = Mailbox.objects.with_email(address).values_list("pk", flat=True).first()
            if pk is None:
                raise CommandError(f"There is no mailbox with the address {address}; nothing was processed.")
            if pk not in ids:
                ids.append(pk)
        return ids

    def show(self, result: PassResult) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(result.as_json(), ensure_ascii=False))
            self.stdout.flush()
            return
        counts = (
            f"fetched={result.fetched}\trecorded={result.recorded}\tunmatched={result.unmatched}"
            f"\tdeleted={result.deleted}\tfailed={result.failed}"
        )
        self.stdout.write(f"{result.mailbox}\t{counts}\t{printable(result.cause or '-')}")
        self.stdout.flush()

    def run_worker(self) -> None:
        worker = Worker(on_result=self.show)
        stops = []

        def stop(signum, frame):
            if stops:  # a second signal: stop now (not even waiting for the passes' threads);
                # what they had not committed is rolled back, and their leases expire
                self.stderr.write(f"{signal.strsignal(signum)}: stopping now.")
                self.stderr.flush()
                os._exit(1)
            stops.append(signum)
            self.stderr.write(
                f"{signal.strsignal(signum)}: finishing the passes under way (again to stop now)."
            )
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        worker.run()
