"""The codes of SPEC section 5 are a contract: scripts and files outside the project use them."""

import pytest

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
