import sys

from django.core.management.base import CommandError

from mailboxadmin.commands import ScriptCommand
from mailboxadmin.credentials import rotate_credentials


class Command(ScriptCommand):
    help = (
        "Re-encrypt every stored password with the first key of FIELD_ENCRYPTION_KEYS, in batches. "
        "Resumable: values already under the first key are left alone.\n\n"
        "Example: FIELD_ENCRYPTION_KEYS=NEW_KEY,OLD_KEY manage.py rotate_encryption_keys --dry-run"
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows read and written per committed transaction (default 1000).",
        )

    def handle(self, *args, dry_run, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be a positive whole number.")
        progress = None
        if sys.stderr.isatty():

            def progress(report):
                sys.stderr.write(f"\r{report.examined} examined, {report.changed} to re-encrypt")

        report = rotate_credentials(batch_size=batch_size, dry_run=dry_run, progress=progress)
        if progress:
            sys.stderr.write("\n")
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        summary = f"{report.examined} stored passwords examined; {verb} {report.changed} with the first key."
        if report.undecryptable:
            listed = ", ".join(report.undecryptable[:20])
            more = f" and {len(report.undecryptable) - 20} more" if len(report.undecryptable) > 20 else ""
            raise CommandError(
                f"{summary} {len(report.undecryptable)} could not be decrypted with any configured key and "
                f"were left unchanged: {listed}{more}."
            )
        self.stdout.write(summary)
