"""Where this deployment may connect to: the outbound policy (SPEC 9).

Mail servers (and token endpoints) are reached only at addresses the policy allows. The
host is resolved once, each address is checked, and the connection goes to a checked
address itself: resolving the name again to connect could answer with another address
(DNS rebinding). TLS still verifies the certificate against the configured host name.

Refused by default: loopback, link-local, cloud metadata services, unspecified, multicast
and reserved addresses, in any form (0x7f.1, 2130706433, ::ffff:127.0.0.1 all resolve to
a refused address). Private ranges are allowed: self-hosted mail servers live there.
`settings.MAIL_ALLOWED_NETWORKS` lifts the refusals for the networks it lists;
`settings.MAIL_BLOCKED_NETWORKS` refuses more, and wins over both.
"""

import ipaddress
import socket
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED_BY_DEFAULT = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches this machine
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, with the metadata service of most clouds at 169.254.169.254
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "192.0.0.192/32",  # Oracle Cloud metadata
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/96",  # unspecified (::), loopback (::1) and the deprecated IPv4-compatible forms
        "fe80::/10",  # link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "ff00::/8",  # multicast
    )
)
POLICY_SETTINGS = "MAIL_ALLOWED_NETWORKS / MAIL_BLOCKED_NETWORKS"
# IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it: an address
# is checked as itself and as that IPv4 address. (IPv4-mapped ::ffff:0:0/96 is read by
# ipaddress itself.)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Address(NamedTuple):
    """One address to connect to, as getaddrinfo gave it."""

    family: int
    sockaddr: tuple

    @property
    def ip(self) -> str:
        return self.sockaddr[0]


class DestinationNotAllowed(Exception):
    """Every address of the host is refused by the outbound policy; nothing was contacted."""

    def __init__(self, host: str, refused: list[str]):
        self.host, self.refused = host, refused
        addresses = " and ".join(refused)
        subject = f"the address {addresses}" if len(refused) == 1 else f"the addresses {addresses}"
        of_host = "" if refused == [host] else f" of {host}"
        verb = "is" if len(refused) == 1 else "are"
        super().__init__(
            f"{subject}{of_host} {verb} not allowed by this deployment's outbound policy ({POLICY_SETTINGS})"
        )


def allowed_addresses(host: str, port: int) -> list[Address]:
    """The addresses of `host` that this deployment allows connecting to, in resolver order.

    Raises socket.gaierror when the host does not resolve, and DestinationNotAllowed when
    none of its addresses is allowed. Connect to these addresses themselves: resolving
    `host` again could give other ones.
    """
    host = host.strip().removeprefix("[").removesuffix("]")
    allowed, refused = [], []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = Address(family, sockaddr)
        if address in allowed or address.ip in refused:
            continue
        if address_allowed(address.ip):
            allowed.append(address)
        else:
            refused.append(address.ip)
    if not allowed:
        raise DestinationNotAllowed(host, refused)
    return allowed


def connect(host: str, port: int, *, timeout: float) -> socket.socket:
    """A TCP connection to the first allowed address of `host` that accepts one.

    Like socket.create_connection, but only to addresses the policy allows, connected by
    address (no second resolution). Raises the first connection error when none accepts.
    """
    errors = []
    for address in allowed_addresses(host, port):
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address.sockaddr)
        except OSError as exc:
            sock.close()
            errors.append(exc)
        else:
            return sock
    raise errors[0]


def address_allowed(ip: str) -> bool:
    """Whether the policy allows connecting to `ip` (in every form it takes on the network)."""
    allowed, blocked = _networks(tuple(settings.MAIL_ALLOWED_NETWORKS), tuple(settings.MAIL_BLOCKED_NETWORKS))
    forms = _forms(ipaddress.ip_address(ip.partition("%")[0]))  # without an IPv6 zone (%eth0)
    if any(_within(form, blocked) for form in forms):
        return False
    return all(_within(form, allowed) or not _within(form, REFUSED_BY_DEFAULT) for form in forms)


def _forms(address: IPAddress) -> list[IPAddress]:
    """The address, and the IPv4 address it reaches when it is an IPv6 form of one."""
    forms = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        elif address in _NAT64:
            forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return forms


def _within(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...], blocked: tuple[str, ...]):
    return (
        tuple(ipaddress.ip_network(network) for network in allowed),
        tuple(ipaddress.ip_network(network) for network in blocked),
    )
