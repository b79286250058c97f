"""The suite's own mail servers start in the state the tests rely on."""

import pytest

from tests.fixtures.mailservers import MAIL_USERNAME, UTF8_USERNAME, free_ports, running_dovecot


def test_free_ports_hands_out_different_ports():
    ports = free_ports(64)

    assert len(set(ports)) == 64


@pytest.mark.servers
def test_every_account_has_its_inbox_before_the_first_test_logs_in(mail_certificates):
    # Created at the first opening otherwise, and two first openings at once race.
    with running_dovecot(mail_certificates) as server:
        for username in (MAIL_USERNAME, UTF8_USERNAME):
            inbox = server.directory / "mail" / username / "mailboxes" / "INBOX" / "dbox-Mails"
            assert inbox.is_dir(), username
