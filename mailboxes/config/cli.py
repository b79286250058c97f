"""What the scripted-setup commands share: help with an example, one-line errors that never
echo a stray argument, an actor whose permissions are checked, progress on a terminal."""

import argparse
import textwrap
import time

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from mailboxadmin.commands import printable, resolve_actor


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description and the example kept as written."""


def hide_argument_values(message: str) -> str:
    """argparse's error, without the values of arguments it did not recognise.

    Someone who types `--password secret` must not find the secret echoed in a CI log.
    """
    prefix = "unrecognized arguments:"
    if not message.startswith(prefix):
        return message
    options = [token.split("=", 1)[0] for token in message[len(prefix) :].split() if token.startswith("-")]
    shown = " ".join(options) if options else "(values not shown)"
    return (
        f"{prefix} {shown} (values are not shown). A password is never an argument: "
        "use --password-stdin or --password-env VAR."
    )


class ScriptCommand(BaseCommand):
    """A management command for scripted setup."""

    example = ""  # shown at the end of --help

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except CommandError as error:
            # An error may quote a value from the file or the command line.
            raise CommandError(printable(str(error)), returncode=error.returncode) from error

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        # No abbreviations: "--password=…" must not be echoed as an ambiguous "--password-…".
        kwargs.setdefault("allow_abbrev", False)
        if self.example:
            kwargs.setdefault(
                "epilog", "example:\n" + textwrap.indent(textwrap.dedent(self.example).strip(), "  ")
            )
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        report = parser.error
        parser.error = lambda message: report(hide_argument_values(message))
        return parser


def command_actor(options, *permissions: str):
    """The user history records the change under; refused without the permissions needed."""
    actor = resolve_actor(options.get("actor"))
    if actor is not None and permissions and not (actor.is_active and actor.has_perms(permissions)):
        missing = ", ".join(p for p in permissions if not actor.has_perm(p)) or "an active account"
        raise CommandError(f"--actor: {actor.username} may not make this change (needs {missing}).")
    return actor


class Progress:
    """Progress of a long run on standard error — only when that is a terminal, so a
    pipeline's log holds nothing but the results."""

    def __init__(self, stream, *, interval: float = 0.5):
        self.stream = stream
        self.enabled = stream.isatty()
        self.interval = interval
        self.shown_at = 0.0
        self.shown = False

    def __call__(self, section: str, done: int, total: int | None = None) -> None:
        if not self.enabled or time.monotonic() - self.shown_at < self.interval:
            return
        self.shown_at = time.monotonic()
        self.shown = True
        of = f" of {total:,}" if total else ""
        self.stream.write(f"\r{section}: {done:,}{of} records\033[K", ending="")
        self.stream.flush()

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K", ending="")
            self.stream.flush()
