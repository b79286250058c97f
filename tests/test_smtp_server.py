"""The suite's and the benchmark's aiosmtpd builds the same tables as aiosmtpd's own SMTP."""

import asyncio

import pytest
from aiosmtpd.smtp import SMTP

from tests.fixtures.mailservers import MAIL_PASSWORD, MAIL_USERNAME, _AcceptNothing, _authenticator
from tests.fixtures.smtp_server import ListedSMTP


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _tables(server: SMTP) -> dict:
    return {
        "auth": {
            name: (impl.method.__func__, impl.is_builtin) for name, impl in server._auth_methods.items()
        },
        "commands": {name: method.__func__ for name, method in server._smtp_methods.items()},
        "hooks": {name: hook.__func__ for name, hook in server._handle_hooks.items()},
    }


def test_listed_smtp_builds_the_same_auth_command_and_hook_tables(loop):
    kwargs = {"loop": loop, "authenticator": _authenticator((MAIL_USERNAME, MAIL_PASSWORD))}

    stock, listed = SMTP(_AcceptNothing(), **kwargs), ListedSMTP(_AcceptNothing(), **kwargs)

    assert _tables(listed) == _tables(stock)
    assert {"EHLO", "AUTH", "QUIT", "STARTTLS"} <= set(_tables(listed)["commands"])
    assert {"PLAIN", "LOGIN"} <= set(_tables(listed)["auth"])
    assert set(_tables(listed)["hooks"]) == {"MAIL"}
