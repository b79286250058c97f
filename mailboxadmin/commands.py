"""What every management command shares: reading secrets safely, naming the actor,
one-line errors (a database that cannot be used included)."""

import os
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


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
            raise CommandError(f"--password-env: the environment variable {var} is not set or is empty.")
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
            raise CommandError(f"--{name}-env: the environment variable {var} is not set or is empty.")
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
    from mailboxes.models import User

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
