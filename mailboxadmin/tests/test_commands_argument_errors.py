"""A command's argument errors name the option, never a value given to it: a secret typed
on the command line by mistake must not reach a terminal's scrollback or a CI log."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mailboxadmin.commands import hide_argument_values

SECRET = "Hunter2-Argument-Secret-57"
PROFILE = ["create_server_profile", "--name", "X", "--server-type", "imap-smtp"]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (
            ["set_mailbox_credentials", "a@b.test", "--username", "u", f"--password-stdin={SECRET}"],
            "argument --password-stdin: takes no value",
        ),
        (
            [
                "create_forward_mailbox",
                "--name",
                "F",
                "--email",
                "f@b.test",
                "--profile",
                "P",
                f"--password-stdin={SECRET}",
            ],
            "argument --password-stdin: takes no value",
        ),
        (
            [*PROFILE, "--auth", "oauth2", f"--client-secret-stdin={SECRET}"],
            "argument --client-secret-stdin: takes no value",
        ),
        (["bootstrap_admin", f"--password-stdin={SECRET}"], "argument --password-stdin: takes no value"),
        (["approve_mailboxes", f"--all-pending={SECRET}"], "argument --all-pending: takes no value"),
        (["test_mailboxes", f"--all={SECRET}"], "argument --all: takes no value"),
        (
            ["create_server_profile", "--name", "X", "--server-type", SECRET],
            "argument --server-type: invalid choice",
        ),
        ([*PROFILE, "--auth", SECRET], "argument --auth: invalid choice"),
        ([*PROFILE, "--incoming-port", SECRET], "argument --incoming-port: invalid int value"),
        (["rotate_encryption_keys", "--batch-size", SECRET], "argument --batch-size: invalid int value"),
        (
            ["set_mailbox_credentials", "a@b.test", "--username", "u", SECRET],
            "unrecognized arguments (values",
        ),
        (["generate_encryption_key", f"--{SECRET}"], "unrecognized arguments (values"),
        (["export_config", f"-p{SECRET}"], "unrecognized arguments (values"),
        (
            ["set_mailbox_credentials", "a@b.test", "--username", "u", "--password", SECRET],
            "unrecognized arguments: --password (values",
        ),
    ],
)
def test_an_argument_error_names_the_option_without_the_value(argv, named):
    with pytest.raises(CommandError) as raised:
        call_command(*argv, stdout=StringIO(), stderr=StringIO())

    assert named in str(raised.value)
    assert SECRET not in str(raised.value)
    assert SECRET[:8] not in str(raised.value)


def test_an_invalid_choice_still_lists_the_choices():
    with pytest.raises(CommandError) as raised:
        call_command(*PROFILE, "--auth", SECRET, stdout=StringIO(), stderr=StringIO())

    assert str(raised.value).endswith(
        "choose from 'user-credentials', 'profile-credentials', "
        "'server-to-server', 'windows', 'anonymous', 'oauth2'."
    )


@pytest.mark.parametrize(
    "message",
    [
        "argument --username: expected one argument",
        "argument --password-env: not allowed with argument --password-stdin",
        "the following arguments are required: ADDRESS, --username",
        "one of the arguments --password-stdin --password-env is required",
    ],
)
def test_argument_errors_that_quote_no_value_are_kept(message):
    assert hide_argument_values(message) == message


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            f"unrecognized arguments: --password {SECRET} --token={SECRET}",
            "unrecognized arguments: --password --token (values are not shown).",
        ),
        (
            f"ambiguous option: --pass={SECRET} could match --password-stdin, --password-env",
            "ambiguous option: --pass could match --password-stdin, --password-env",
        ),
        (
            f"argument --incoming-port: invalid int value: '{SECRET}'",
            "invalid int value (the value is not shown).",
        ),
        (
            f"argument --name: {SECRET} is not a name",
            "argument --name: invalid value (the value is not shown).",
        ),
        (f"an error argparse may add one day: {SECRET!r}", "invalid arguments (values are not shown)"),
    ],
)
def test_argument_errors_that_quote_a_value_name_the_option_only(message, shown):
    hidden = hide_argument_values(message)

    assert shown in hidden
    assert SECRET not in hidden
