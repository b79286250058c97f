"""What every management command shares: help with an example, reading secrets safely,
naming the actor (whose permissions are checked), one-line errors that never echo a
value given to the command (a database that cannot be used included), progress on a
terminal."""

import argparse
import os
import re
import sys
import textwrap
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter


def environment_variable(var: str) -> str:
    """How an error names the environment variable `var` that was to hold a secret: by its
    name when it is written as variable names are (upper case, digits, underscores), else
    not at all, since what was given may be the secret itself, typed in the name's place."""
    if re.fullmatch(r"[A-Z_][A-Z0-9_]*", var):
        return f"the environment variable {var}"
    return (
        "the environment variable named (its name is not repeated: it is not written as "
        "one, and may be a secret typed in its place)"
    )


def add_password_arguments(parser, *, what: str = "the password") -> None:
    """--password-stdin / --password-env VAR: a secret is never an argument."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"Read {what} from the first line of standard input.",
    )
    group.add_argument(
        "--password-env",
        metavar="VAR",
        help=f"Read {what} from the environment variable VAR.",
    )


def read_password(options, *, required: bool = False) -> str | None:
    """The password given through --password-stdin or --password-env, or None."""
    if options.get("password_stdin"):
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise CommandError("--password-stdin: standard input gave no password.")
        return password
    if options.get("password_env"):
        var = options["password_env"]
        password = os.environ.get(var)
        if not password:
            raise CommandError(f"--password-env: {environment_variable(var)} is not set or is empty.")
        return password
    if required:
        raise CommandError("A password is required: give --password-stdin or --password-env VAR.")
    return None


def add_secret_arguments(parser, *, name: str, what: str) -> None:
    """--NAME-stdin / --NAME-env VAR for another secret (an OAuth client secret, say)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(f"--{name}-stdin", action="store_true", help=f"Read {what} from standard input.")
    group.add_argument(f"--{name}-env", metavar="VAR", help=f"Read {what} from the environment variable VAR.")


def read_secret(options, *, name: str) -> str | None:
    """The secret given through --NAME-stdin (all of standard input: a JSON key spans
    lines) or --NAME-env, or None."""
    option = name.replace("-", "_")
    if options.get(f"{option}_stdin"):
        secret = sys.stdin.read().strip("\r\n")
        if not secret:
            raise CommandError(f"--{name}-stdin: standard input gave nothing.")
        return secret
    if var := options.get(f"{option}_env"):
        secret = os.environ.get(var)
        if not secret:
            raise CommandError(f"--{name}-env: {environment_variable(var)} is not set or is empty.")
        return secret
    return None


def add_actor_argument(parser) -> None:
    parser.add_argument(
        "--actor",
        metavar="USERNAME",
        default=os.environ.get("MAILBOXADMIN_ACTOR"),
        help="Record changes in history as this user (default: $MAILBOXADMIN_ACTOR, else the "
        "first superuser).",
    )


def resolve_actor(username: str | None):
    """The user history entries are recorded under when a command makes a change."""
    User = get_user_model()
    if username:
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"--actor: there is no user named {username!r}.") from None
    return User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()


def printable(text: str) -> str:
    """`text` on one line, with line breaks, terminal escapes and invisible characters
    (a NUL, a right-to-left override) written as escapes: a message that quotes a value
    from a file or an argument can neither span lines nor rewrite the terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def one_line(error: ValidationError, *, record: str) -> str:
    """A validation error as one line that names the record and each field."""
    if hasattr(error, "error_dict"):
        parts = []
        for field, errors in error.message_dict.items():
            label = "" if field == "__all__" else f"{field}: "
            parts.extend(f"{label}{message}" for message in errors)
        return f"{record}: " + "; ".join(parts)
    return f"{record}: " + "; ".join(error.messages)


def execute_from_command_line(argv: list[str]) -> None:
    """Run a management command as manage.py does, and report a database that cannot be
    reached or used (not running, a wrong DATABASE_URL, a connection cut mid-run) as one
    line with exit status 1 instead of a traceback. --traceback still shows it.

    The command's open transaction is rolled back by then, as with any other error.
    """
    from django.core.management import execute_from_command_line as execute
    from django.db import Error as DatabaseError

    from mailboxadmin.logging import redact

    try:
        execute(argv)
    except DatabaseError as error:
        if "--traceback" in argv:
            raise
        detail = " ".join(str(error).split()) or type(error).__name__
        sys.stderr.write(
            f"Database error: {printable(redact(detail))} "
            "(check DATABASE_URL and the database server; --traceback shows where it happened)\n"
        )
        sys.exit(1)


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the description and the example kept as written."""


# An unrecognised token shown as the option someone meant: words in lower case joined by
# hyphens, as every option here is named. Any other token (a stray value, a secret) is
# never shown.
_OPTION_NAME = re.compile(r"--[a-z]+(-[a-z]+)*|-[A-Za-z]")
# argparse's errors about an option that quote no value: kept as they are.
_VALUE_FREE_DETAIL = re.compile(
    r"expected (one|at most one|at least one|[0-9]+) arguments?|not allowed with argument .*"
)
_VALUE_FREE_MESSAGE = ("the following arguments are required:", "one of the arguments ")
_NEVER_AN_ARGUMENT = "A password is never an argument: use --password-stdin or --password-env VAR."


def _option_names(tokens: str) -> str:
    names = [token.split("=", 1)[0] for token in tokens.split()]
    return " ".join(name for name in names if _OPTION_NAME.fullmatch(name))


def hide_argument_values(message: str) -> str:
    """argparse's error, naming the options concerned but never a value given to them.

    Someone who types `--password secret` or `--password-stdin=secret` must not find the
    secret echoed in a CI log, and argparse quotes what it refuses: an unrecognised
    argument, a value given to a flag that takes none, an invalid choice or number. Only
    the errors known to quote nothing are kept as they are.
    """
    prefix = "unrecognized arguments:"
    if message.startswith(prefix):
        shown = _option_names(message[len(prefix) :])
        named = f"{prefix} {shown}" if shown else "unrecognized arguments"
        return f"{named} (values are not shown). {_NEVER_AN_ARGUMENT}"
    if message.startswith(_VALUE_FREE_MESSAGE):
        return message
    prefix = "ambiguous option:"
    if message.startswith(prefix):
        typed, _, matches = message[len(prefix) :].partition(" could match ")
        shown = _option_names(typed) or "(not shown)"
        return f"{prefix} {shown} could match {matches}"
    argument = re.fullmatch(r"argument (?P<names>[^:]+): (?P<detail>.*)", message, re.DOTALL)
    if argument is None:
        return f"invalid arguments (values are not shown); see --help. {_NEVER_AN_ARGUMENT}"
    names, detail = argument["names"], argument["detail"]
    if _VALUE_FREE_DETAIL.fullmatch(detail):
        return message
    if detail.startswith("ignored explicit argument"):
        where = " It reads the value from standard input." if names.endswith("-stdin") else ""
        return f'argument {names}: takes no value (what followed "=" is not shown).{where}'
    if detail.startswith("invalid choice:"):
        _, found, choices = detail.rpartition(" (choose from ")
        listed = f"; choose from {choices[:-1]}" if found and choices.endswith(")") else ""
        return f"argument {names}: invalid choice (the value is not shown){listed}."
    if kind := re.match(r"invalid ([A-Za-z_]+) value: ", detail):
        return f"argument {names}: invalid {kind[1]} value (the value is not shown)."
    return f"argument {names}: invalid value (the value is not shown)."


class ScriptCommand(BaseCommand):
    """A management command for scripted setup (every command of the project): help with
    an example, argument errors that quote no value, errors on one printable line."""

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
