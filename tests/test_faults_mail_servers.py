"""Mail servers that misbehave mid-test: Test & Enable records a classified failure on the
mailbox (status, cause, alert), through the service, the page and the command, and no
exception escapes.

serverprofiles/tests/test_connectors.py already proves each connector classifies a
server that never answers, answers garbage or hangs up mid-dialogue; these tests follow
such failures (and a few nastier ones) up to what the administrator sees.
"""

import socket
import struct
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mailboxes.models import Mailbox, MailboxAlert, TestStatus
from mailboxes.services.testing import mailbox_test_and_enable
from serverprofiles.connectors import Cause
from serverprofiles.models import AuthenticationMethod, ServerType

pytestmark = pytest.mark.django_db

GREETINGS = {
    "imap": b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n",
    "smtp": b"220 localhost ESMTP ready\r\n",
}
CAUSE_LABELS = tuple(f"{label}:" for label in Cause.labels)


def hang_up_at_once(protocol):
    def script(connection, stopping):
        connection.close()

    return script


def reset_after_greeting(protocol):
    """Greet, read the first command, then abort the connection (a TCP reset)."""

    def script(connection, stopping):
        connection.sendall(GREETINGS[protocol])
        connection.recv(1024)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    return script


def binary_noise(protocol):
    """A greeting of NUL bytes, invalid UTF-8, escapes and markup."""

    def script(connection, stopping):
        connection.sendall(b"\x00\xff\xfe\x1b[2J<script>alert(1)</script>\x00\r\n")
        connection.recv(1024)

    return script


def flood(protocol):
    """Two megabytes without a line break, then nothing."""

    def script(connection, stopping):
        connection.sendall(b"* " + b"A" * 2_000_000)

    return script


def garbage(protocol):
    def script(connection, stopping):
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    return script


MISBEHAVIOURS = [hang_up_at_once, reset_after_greeting, binary_noise, flood, garbage]


@pytest.fixture
def misbehaving_profile(make_profile, scripted_server):
    """A profile whose incoming (IMAP) and outgoing (SMTP) servers follow `behaviour`."""

    def make(behaviour):
        return make_profile(
            server_type=ServerType.IMAP_SMTP,
            incoming_server="127.0.0.1",
            incoming_port=scripted_server(behaviour("imap")),
            incoming_ssl=False,
            outgoing_server="127.0.0.1",
            outgoing_port=scripted_server(behaviour("smtp")),
            outgoing_ssl=False,
            incoming_auth=AuthenticationMethod.USER_CREDENTIALS,
            outgoing_auth=AuthenticationMethod.USER_CREDENTIALS,
            timeout_ms=1500,
        )

    return make


def assert_failed_with_a_cause(mailbox: Mailbox) -> None:
    saved = Mailbox.objects.get(pk=mailbox.pk)
    assert (saved.incoming_status, saved.outgoing_status) == (TestStatus.FAILURE, TestStatus.FAILURE)
    assert not (saved.enabled_incoming or saved.enabled_outgoing)
    assert saved.test_completed_on is not None
    alerts = {alert.workload: alert for alert in saved.alerts.all()}
    for workload, error in (("incoming", saved.incoming_error), ("outgoing", saved.outgoing_error)):
        assert error.startswith(CAUSE_LABELS), error
        assert error.isprintable() and len(error) < 1000, error
        assert alerts[workload].message == error
        assert alerts[workload].severity == MailboxAlert.Severity.ERROR


@pytest.mark.parametrize("behaviour", MISBEHAVIOURS, ids=lambda b: b.__name__)
def test_test_and_enable_records_a_classified_failure(
    misbehaving_profile, make_test_mailbox, no_approval_required, behaviour
):
    mailbox = make_test_mailbox(misbehaving_profile(behaviour))

    result = mailbox_test_and_enable(mailbox)

    assert result.failed
    assert_failed_with_a_cause(mailbox)


def test_the_page_shows_the_failure_of_a_server_that_hangs_up(
    client, sysadmin, misbehaving_profile, make_test_mailbox, no_approval_required
):
    mailbox = make_test_mailbox(misbehaving_profile(reset_after_greeting))
    client.force_login(sysadmin)

    response = client.post(
        "/mailboxes/commands/",
        {"command": "test-enable", "selected": [mailbox.pk], "next": mailbox.get_absolute_url()},
        follow=True,
    )

    assert response.status_code == 200
    assert_failed_with_a_cause(mailbox)
    page = response.content.decode()
    assert Mailbox.objects.get(pk=mailbox.pk).incoming_error.split(":")[0] in page


def test_the_command_prints_each_failure_and_carries_on(
    misbehaving_profile, make_test_mailbox, no_approval_required, sysadmin
):
    mailboxes = [make_test_mailbox(misbehaving_profile(behaviour)) for behaviour in MISBEHAVIOURS]
    out = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("test_mailboxes", *[m.email for m in mailboxes], stdout=out)

    assert str(raised.value) == f"{len(mailboxes)} of {len(mailboxes)} mailboxes failed the test."
    lines = dict(line.split("\t", 1) for line in out.getvalue().splitlines())
    assert set(lines) == {m.email for m in mailboxes}
    for mailbox in mailboxes:
        assert lines[mailbox.email].startswith("incoming=Failure\toutgoing=Failure\tact=Not Run\t")
        assert_failed_with_a_cause(mailbox)
    assert all(part.isprintable() for line in out.getvalue().splitlines() for part in line.split("\t"))
