import os
import tempfile

from django.core.management.base import CommandError

from mailboxadmin.commands import Progress, ScriptCommand
from mailboxes.config.export import config_export


class _Raw:
    """self.stdout without the newline it adds to every write."""

    def __init__(self, wrapper):
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")


class Command(ScriptCommand):
    help = (
        "Write the whole configuration — organisation email settings, server profiles, users, "
        "queues and mailboxes — as one JSON object in the format apply_config reads. No secret "
        'is ever written: where a password is stored, the file says "password_set": true. '
        "Records are ordered by name, user name and address, so exporting the same "
        "configuration twice gives identical files."
    )
    example = """
        manage.py export_config --output config.json
        manage.py export_config | jq '.mailboxes | length'
    """

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            metavar="FILE",
            help="Write to FILE (replaced only once complete) instead of standard output.",
        )

    def handle(self, *args, **options):
        output = options["output"]
        progress = Progress(self.stderr)
        try:
            if output:
                counts = self.export_to_file(output, progress)
            else:
                counts = config_export(_Raw(self.stdout), progress=progress)
        finally:
            progress.finish()
        names = {
            "server_profiles": ("server profile", "server profiles"),
            "users": ("user", "users"),
            "queues": ("queue", "queues"),
            "mailboxes": ("mailbox", "mailboxes"),
        }
        parts = [f"{counts[s]:,} {names[s][counts[s] != 1]}" for s in names]
        summary = f"Exported the settings, {', '.join(parts[:-1])} and {parts[-1]}" + (
            f" to {output}." if output else "."
        )
        # Written to standard output, the summary would spoil the JSON.
        (self.stdout if output else self.stderr).write(summary)

    def export_to_file(self, output: str, progress) -> dict[str, int]:
        directory = os.path.dirname(os.path.abspath(output))
        try:
            handle = tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=directory, prefix=".export_config-", suffix=".json", delete=False
            )
        except OSError as error:
            raise CommandError(f"--output: cannot write {output}: {error.strerror}.") from None
        try:
            with handle:
                counts = config_export(handle, progress=progress)
            os.replace(handle.name, output)
        except BaseException:
            os.unlink(handle.name)
            raise
        return counts
