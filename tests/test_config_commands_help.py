"""Every scripted-setup command explains itself, with an example, under --help."""

import re

import pytest
from django.core.management import load_command_class

COMMANDS = {
    "create_server_profile": "serverprofiles",
    "create_forward_mailbox": "mailboxes",
    "set_mailbox_credentials": "mailboxes",
    "approve_mailboxes": "mailboxes",
    "export_config": "mailboxes",
    "apply_config": "mailboxes",
}


def help_text(name: str) -> str:
    command = load_command_class(COMMANDS[name], name)
    return command.create_parser("manage.py", name).format_help()


@pytest.mark.parametrize("name", COMMANDS)
def test_help_explains_the_command_with_an_example(name):
    text = help_text(name)

    assert f"usage: manage.py {name}" in text
    assert "\nexample:\n" in text
    assert f"manage.py {name}" in text.split("\nexample:\n")[1]


@pytest.mark.parametrize(
    "name", ["create_server_profile", "create_forward_mailbox", "set_mailbox_credentials"]
)
def test_passwords_are_read_only_from_standard_input_or_the_environment(name):
    text = help_text(name)

    assert "--password-stdin" in text
    assert "--password-env VAR" in text
    assert re.search(r"--password(?![-\w])", text) is None


def test_the_flags_are_the_specs():
    text = help_text("create_server_profile")

    for flag in (
        "--name",
        "--server-type {exchange,exchange-hybrid,exchange-online,pop3-smtp,imap-smtp}",
        "--incoming-server HOST",
        "--incoming-port N",
        "--outgoing-server HOST",
        "--outgoing-port N",
        "--auth {user-credentials,profile-credentials,server-to-server,windows,anonymous,oauth2}",
        "--oauth-provider {microsoft,google,other}",
        "--oauth-tenant-id T",
        "--oauth-token-url URL",
        "--oauth-client-id ID",
        "--oauth-scope S",
        "--client-secret-stdin",
        "--client-secret-env VAR",
        "--no-ssl",
        "--username U",
        "--max-connections N",
        "--default",
    ):
        assert flag in text
    assert "--profile PROFILE_NAME" in help_text("create_forward_mailbox")
    assert "--delete-after-processing" in help_text("create_forward_mailbox")
    assert "--all-pending" in help_text("approve_mailboxes")
    assert "--output FILE" in help_text("export_config")
    assert "--dry-run" in help_text("apply_config")
