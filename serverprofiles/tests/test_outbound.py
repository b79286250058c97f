"""The outbound policy: connection tests reach only addresses the deployment allows (SPEC 9).

The suite's settings allow loopback (its mail servers live there); these tests take that
away where they need the production default.
"""

import contextlib
import runpy
import socket
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from serverprofiles.connectors import Cause, Endpoint, check_incoming, check_outgoing
from serverprofiles.connectors.outbound import (
    DestinationNotAllowed,
    address_allowed,
    allowed_addresses,
    connect,
)

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "mailboxadmin" / "settings.py"
POLICY = "is not allowed by this deployment's outbound policy (MAIL_ALLOWED_NETWORKS / MAIL_BLOCKED_NETWORKS)"

# Every way of writing "this machine" that the resolver turns into a loopback address.
LOOPBACK_FORMS = [
    "127.0.0.1",
    "127.0.0.2",
    "127.1",
    "0x7f.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "localhost",
    "::1",
    "::ffff:127.0.0.1",
    "0.0.0.0",
    "::",
]


@pytest.fixture
def production_policy(settings):
    """The policy as a deployment has it out of the box: loopback refused."""
    settings.MAIL_ALLOWED_NETWORKS = []
    settings.MAIL_BLOCKED_NETWORKS = []
    return settings


class Listener:
    """Listening sockets on 127.0.0.1 and ::1 at one port that never accept: a connection
    made to either waits in its backlog, where `connections()` finds it."""

    def __init__(self):
        self.sockets = [socket.create_server(("127.0.0.1", 0), backlog=16)]
        self.port = self.sockets[0].getsockname()[1]
        with contextlib.suppress(OSError):  # a machine without IPv6 loopback tests IPv4 only
            self.sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6, backlog=16))
        for sock in self.sockets:
            sock.setblocking(False)

    def connections(self) -> int:
        count = 0
        for sock in self.sockets:
            while True:
                try:
                    connection, _ = sock.accept()
                except BlockingIOError:
                    break
                connection.close()
                count += 1
        return count

    def close(self):
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.close()


# Refused before any connection -------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACK_FORMS)
@pytest.mark.parametrize(("check", "protocol"), [(check_incoming, "imap"), (check_outgoing, "smtp")])
def test_every_form_of_loopback_is_refused_before_any_connection(
    production_policy, listener, check, protocol, host
):
    outcome = check(Endpoint(protocol, host, listener.port, False, username="u", password="p", timeout=2))

    assert outcome.cause == Cause.DESTINATION_NOT_ALLOWED
    assert outcome.message.startswith("Destination not allowed: ")
    assert POLICY in outcome.message
    assert "Nothing was contacted." in outcome.message
    assert listener.connections() == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "localhost", "::1"])
def test_the_same_forms_reach_the_listener_where_loopback_is_allowed(listener, host):
    # The suite's own policy: proves the listener would have seen the connections refused above.
    connect(host, listener.port, timeout=2).close()

    assert listener.connections() == 1


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254", "fe80::1"]
)
def test_link_local_and_cloud_metadata_addresses_are_refused(production_policy, host):
    outcome = check_incoming(Endpoint("imap", host, 80, False, timeout=2))

    assert outcome.cause == Cause.DESTINATION_NOT_ALLOWED
    assert f"the address {host} {POLICY}" in outcome.message


def test_the_message_names_the_address_the_host_resolved_to(production_policy, listener):
    outcome = check_incoming(Endpoint("pop3", "0x7f.1", listener.port, False, timeout=2))

    assert outcome.message.startswith(
        f"Destination not allowed: 0x7f.1:{listener.port} (POP3) cannot be tested: "
        f"the address 127.0.0.1 of 0x7f.1 {POLICY}. "
    )


def test_a_bracketed_ipv6_address_is_refused_as_the_address_it_is(production_policy, listener):
    with pytest.raises(ValueError, match="is not a host name"):  # a profile cannot hold it either
        Endpoint("imap", "[::1]", listener.port, False)
    with pytest.raises(DestinationNotAllowed, match=r"the address ::1 is not allowed"):
        allowed_addresses("[::1]", listener.port)
    assert listener.connections() == 0


def test_a_host_that_does_not_resolve_is_still_host_not_found(production_policy):
    outcome = check_incoming(Endpoint("imap", "nonexistent.invalid", 143, False, timeout=2))

    assert outcome.cause == Cause.HOST_NOT_FOUND


# What the policy allows and refuses --------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "::1",
        "0.0.0.0",
        "0.1.2.3",
        "::",
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "fe80::1%lo",
        "febf::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "192.0.0.192",
        "224.0.0.1",
        "239.255.255.250",
        "ff02::1",
        "255.255.255.255",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_refused_by_default(production_policy, address):
    assert not address_allowed(address)


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.10",
        "100.64.0.1",
        "fd12:3456::1",
        "fc00::1",
        "93.184.216.34",
        "2001:db8::25",
        "::ffff:10.1.2.3",
        "64:ff9b::5db8:d822",  # NAT64 of a public address
        "169.255.0.1",
        "126.255.255.255",
        "128.0.0.1",
    ],
)
def test_private_and_public_addresses_are_allowed_by_default(production_policy, address):
    assert address_allowed(address)


def test_allowed_networks_lift_the_refusal_of_those_networks_only(production_policy):
    production_policy.MAIL_ALLOWED_NETWORKS = ["169.254.0.0/16"]

    assert address_allowed("169.254.169.254")
    assert address_allowed("::ffff:169.254.169.254")
    assert not address_allowed("127.0.0.1")


def test_blocked_networks_refuse_more_in_every_form(production_policy):
    production_policy.MAIL_BLOCKED_NETWORKS = ["10.0.0.0/8", "2001:db8::/32"]

    assert not address_allowed("10.1.2.3")
    assert not address_allowed("::ffff:10.1.2.3")
    assert not address_allowed("2001:db8::25")
    assert address_allowed("192.168.1.10")


def test_blocked_wins_over_allowed(listener, settings):
    settings.MAIL_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.MAIL_BLOCKED_NETWORKS = ["127.0.0.1/32"]

    outcome = check_incoming(Endpoint("imap", "127.0.0.1", listener.port, False, timeout=2))

    assert outcome.cause == Cause.DESTINATION_NOT_ALLOWED
    assert listener.connections() == 0
    assert address_allowed("127.0.0.2")


def test_the_connection_goes_to_the_address_checked_not_to_a_second_answer(settings, monkeypatch):
    # DNS rebinding: a name that resolves to an allowed address when checked and to a
    # refused one a moment later. No resolver on this machine can be told to do that, so
    # this one stands in front of the real one for that name only.
    settings.MAIL_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    answers = iter(["127.0.0.1"])
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_getaddrinfo(host, *args, **kwargs):
        if host == "rebind.example.test":
            host = next(answers, "127.0.0.2")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    with socket.create_server(("127.0.0.1", 0)) as checked:
        port = checked.getsockname()[1]
        with socket.create_server(("127.0.0.2", port)) as rebound:
            checked.setblocking(False)
            rebound.setblocking(False)

            connect("rebind.example.test", port, timeout=2).close()

            checked.accept()[0].close()  # raises BlockingIOError if nothing connected here
            with pytest.raises(BlockingIOError):
                rebound.accept()


def test_only_checked_addresses_are_returned_to_connect_to(settings):
    settings.MAIL_ALLOWED_NETWORKS = ["127.0.0.0/8"]

    addresses = allowed_addresses("localhost", 143)

    assert addresses and all(address.ip == "127.0.0.1" for address in addresses)
    assert {address.sockaddr[1] for address in addresses} == {143}


# Settings ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MAIL_ALLOWED_NETWORKS", "MAIL_BLOCKED_NETWORKS"])
@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.0.0.1/8", "localhost", "fe80::/10,nonsense"])
def test_a_network_that_is_not_cidr_stops_the_start_naming_the_setting(monkeypatch, name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured, match=rf"^{name}: '.+' is not a network in CIDR notation"):
        runpy.run_path(str(SETTINGS_FILE))


def test_networks_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAIL_ALLOWED_NETWORKS", "127.0.0.0/8, ::1/128")
    monkeypatch.setenv("MAIL_BLOCKED_NETWORKS", "")

    values = runpy.run_path(str(SETTINGS_FILE))

    assert values["MAIL_ALLOWED_NETWORKS"] == ["127.0.0.0/8", "::1/128"]
    assert values["MAIL_BLOCKED_NETWORKS"] == []


# Through Test & Enable, for every role ------------------------------------------------


@pytest.mark.parametrize("role", ["anonymous", "readonly", "manager", "sysadmin"])
def test_no_role_gets_test_and_enable_to_connect_to_loopback(
    request, client, production_policy, listener, make_profile, make_test_mailbox, no_approval_required, role
):
    from mailboxes.models import Mailbox, TestStatus

    profile = make_profile(
        incoming_server="localhost",
        incoming_port=listener.port,
        outgoing_server="0x7f.1",
        outgoing_port=listener.port,
    )
    mailbox = make_test_mailbox(profile)
    if role != "anonymous":
        client.force_login(request.getfixturevalue(role))

    response = client.post("/mailboxes/commands/", {"command": "test-enable", "selected": [mailbox.pk]})

    assert listener.connections() == 0
    saved = Mailbox.objects.get(pk=mailbox.pk)
    if role in ("manager", "sysadmin"):
        assert response.status_code == 302
        assert (saved.incoming_status, saved.outgoing_status) == (TestStatus.FAILURE, TestStatus.FAILURE)
        assert f"the address 127.0.0.1 of localhost {POLICY}" in saved.incoming_error
        assert f"the address 127.0.0.1 of 0x7f.1 {POLICY}" in saved.outgoing_error
    else:
        assert response.status_code == (302 if role == "anonymous" else 403)
        assert saved.test_completed_on is None
