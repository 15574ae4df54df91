"""Which addresses a user-supplied URL may reach: the pure half of the SSRF guard (no I/O).

A notification channel's URL is chosen by a user, but the request is sent by the server,
from inside its network. Without a check, "send my webhook to http://169.254.169.254/..." reads
the cloud's instance credentials, and "http://10.0.0.5:5432/" probes the database. So every
destination is classified, and only globally routable unicast addresses pass unless the
configuration allows more (`OutboundPolicy`).

The table follows IANA's IPv4 and IPv6 special-purpose address registries rather than
`ipaddress.is_global`, whose answers changed between Python releases. Addresses that carry an
IPv4 address inside an IPv6 one (IPv4-mapped `::ffff:127.0.0.1`, IPv4-compatible, NAT64,
6to4) are judged by the IPv4 address they lead to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Category = Literal[
    "cloud metadata",
    "loopback",
    "link-local",
    "private",
    "unspecified",
    "multicast",
    "broadcast",
    "documentation",
    "reserved",
]

# Instance metadata services: the prize of most SSRF attacks, so denied even when private
# addresses are allowed. 169.254.169.254: AWS, GCP, Azure, OCI, DigitalOcean, OpenStack;
# fd00:ec2::254: AWS over IPv6; 100.100.100.200: Alibaba Cloud; 168.63.129.16: Azure's
# WireServer (a public address that only Azure hosts can reach).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(text)
    for text in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
# Names that reach a metadata service without DNS saying so (the platform's resolver
# answers them), judged as the address they stand for.
METADATA_HOSTNAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data.ec2.internal"}
)
_GCP_METADATA = ipaddress.ip_address("169.254.169.254")
_LOCALHOST = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def _table(rows: Iterable[tuple[str, Category]]) -> tuple[tuple[IPNetwork, Category], ...]:
    return tuple((ipaddress.ip_network(network), category) for network, category in rows)


# First match wins: narrower networks come before the ones that contain them.
_IPV4 = _table(
    [
        ("0.0.0.0/32", "unspecified"),
        ("0.0.0.0/8", "reserved"),  # "this network"; Linux connects 0.x to the host itself
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "private"),  # shared address space (carrier-grade NAT)
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved"),  # former 6to4 relay anycast
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved"),  # benchmarking
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    ]
)
_IPV6 = _table(
    [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0:0/96", "reserved"),  # IPv4-translated (SIIT)
        ("64:ff9b:1::/48", "private"),  # local-use NAT64
        ("100::/64", "reserved"),  # discard-only
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo among them
        ("3fff::/20", "documentation"),
        ("fc00::/7", "private"),  # unique local addresses
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private"),  # deprecated site-local
        ("ff00::/8", "multicast"),
    ]
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Characters of the numeric IPv4 forms inet_aton accepts (decimal, octal, hex, 1 to 4 parts).
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, compatible, NAT64, 6to4), if any."""
    if isinstance(address, IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def canonical(address: IPAddress) -> IPAddress:
    """`address` as the connection really goes: the embedded IPv4 address when there is one."""
    return embedded_ipv4(address) or address


def category_of(address: IPAddress) -> Category | None:
    """The special-purpose category of `address`, or None when it is globally routable."""
    inner = embedded_ipv4(address)
    if inner is not None:
        found = category_of(inner)
        if found is not None:
            return found
        if address in _IPV4_COMPATIBLE:  # deprecated, never routed, whatever it embeds
            return "reserved"
        return None
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    rows = _IPV4 if isinstance(address, IPv4Address) else _IPV6
    for network, category in rows:
        if address in network:
            return category
    if isinstance(address, IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "reserved"  # outside 2000::/3, nothing is assigned for unicast use
    return None


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL's host names literally, in any form a resolver would accept.

    Besides `127.0.0.1` and `[::1]`, C resolvers take `2130706433`, `0177.0.0.1`,
    `0x7f.1` and `127.1` for 127.0.0.1: checking only the dotted form lets those through.
    """
    text = host.strip().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if text and _NUMERIC_HOST.fullmatch(text):
        try:
            return IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def assumed_addresses(host: str) -> tuple[IPAddress, ...]:
    """Addresses a name must be assumed to have whatever DNS says now.

    `localhost` and `*.localhost` are loopback by definition (RFC 6761), and the metadata
    names reach the metadata service through the platform's own resolver.
    """
    name = host.strip().rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return _LOCALHOST
    if name in METADATA_HOSTNAMES:
        return (_GCP_METADATA,)
    return ()


@dataclass(frozen=True)
class OutboundPolicy:
    """Which special-purpose addresses user-supplied URLs may reach.

    By default none: only globally routable unicast addresses. `allowed_networks` allows the
    addresses in those networks whatever they are (an internal webhook receiver, a test's
    loopback server). `allow_private` allows every address except cloud metadata, which
    only `allowed_networks` can open.
    """

    allowed_networks: tuple[IPNetwork, ...] = ()
    allow_private: bool = False

    @classmethod
    def of(cls, networks: Iterable[str], *, allow_private: bool = False) -> OutboundPolicy:
        """A policy from CIDR texts such as `10.20.0.0/16` or `127.0.0.1`."""
        return cls(
            tuple(ipaddress.ip_network(network.strip(), strict=False) for network in networks),
            allow_private,
        )

    def refusal(self, address: IPAddress) -> Category | None:
        """None when `address` may be reached; otherwise the category that denies it."""
        for candidate in {address, canonical(address)}:
            for network in self.allowed_networks:
                if candidate.version == network.version and candidate in network:
                    return None
        category = category_of(address)
        if category is None:
            return None
        if self.allow_private and category != "cloud metadata":
            return None
        return category


class DestinationDeniedError(Exception):
    """A user-supplied URL leads to an address the outbound policy denies.

    Not an `httpx.HTTPError` on purpose: callers that retry transport errors must not retry
    this one. The message names the host, the address and why, never the rest of the URL
    (webhook URLs carry secrets in their paths).
    """

    def __init__(self, host: str, address: IPAddress | None, category: str) -> None:
        self.host = host
        self.address = address
        self.category = category
        if address is None:
            message = f"{host} is not an allowed destination ({category})"
        elif ip_literal(host) is not None:
            message = f"{address} is a {category} address"
        else:
            message = f"{host} resolves to {address}, a {category} address"
        super().__init__(
            f"{message}; outbound requests to it are denied "
            "(OUTBOUND_ALLOWED_NETWORKS or OUTBOUND_ALLOW_PRIVATE can allow it)"
        )


def check_addresses(host: str, addresses: Iterable[IPAddress], policy: OutboundPolicy) -> None:
    """Raise `DestinationDeniedError` unless every one of `addresses` is allowed.

    Every one, not any one: a name that resolves to a public and a private address would
    otherwise reach the private one whenever the connection happens to pick it.
    """
    for address in addresses:
        category = policy.refusal(address)
        if category is not None:
            raise DestinationDeniedError(host, address, category)


def check_host(host: str, policy: OutboundPolicy) -> IPAddress | None:
    """Check what can be known of `host` without DNS; its address when it is a literal one.

    Raises `DestinationDeniedError` for a denied literal address or a name that must be
    assumed to lead to one (`localhost`, the metadata names).
    """
    literal = ip_literal(host)
    if literal is not None:
        check_addresses(host, [literal], policy)
        return literal
    check_addresses(host, assumed_addresses(host), policy)
    return None
