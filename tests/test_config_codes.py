"""The codes of SPEC section 5 are a contract: scripts and files outside the project use them."""

import pytest

from mailboxadmin.commands import hide_argument_values
from mailboxes.config import codes


@pytest.mark.parametrize(
    ("accepted", "spec"),
    [
        (codes.SERVER_TYPES, "exchange exchange-hybrid exchange-online pop3-smtp imap-smtp"),
        (
            codes.AUTH_METHODS,
            "user-credentials profile-credentials server-to-server windows anonymous oauth2",
        ),
        (codes.INCOMING_METHODS, "none outlook server-side-sync forward-mailbox"),
        (codes.OUTGOING_METHODS, "none outlook server-side-sync"),
        (codes.ACT_METHODS, "none outlook server-side-sync"),
        (codes.APPROVAL_STATUSES, "empty approved pending rejected"),
        (codes.QUEUE_TYPES, "public private"),
    ],
)
def test_codes_are_the_specs(accepted, spec):
    assert accepted == tuple(spec.split())


def test_an_unrecognised_argument_is_named_without_its_value():
    message = hide_argument_values("unrecognized arguments: --password hunter2 --token=abc123")

    assert "hunter2" not in message
    assert "abc123" not in message
    assert message.startswith("unrecognized arguments: --password --token (values are not shown).")


def test_other_argument_errors_are_left_alone():
    message = "argument --incoming-port: invalid int value: 'x'"

    assert hide_argument_values(message) == message
