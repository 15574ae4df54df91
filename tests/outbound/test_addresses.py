"""Specification of the address classification behind the SSRF guard (pure, no I/O)."""

from __future__ import annotations

import ipaddress

import pytest

from reliability_studio.outbound.addresses import (
    DestinationDeniedError,
    OutboundPolicy,
    category_of,
    check_host,
    ip_literal,
)

STRICT = OutboundPolicy()

# Hosts as they appear in URLs, and what the default policy says of each.
DENIED_HOSTS = {
    "127.0.0.1": "loopback",
    "127.1": "loopback",  # short form: inet_aton fills the middle with zeros
    "2130706433": "loopback",  # 127.0.0.1 as one decimal number
    "0177.0.0.1": "loopback",  # octal
    "0x7f.0.0.1": "loopback",  # hexadecimal
    "0x7f000001": "loopback",
    "017700000001": "loopback",  # octal, one number
    "127.0.0.1.": "loopback",  # trailing dot
    "[::1]": "loopback",
    "::1": "loopback",
    "[::ffff:127.0.0.1]": "loopback",  # IPv4-mapped IPv6
    "[::ffff:7f00:1]": "loopback",  # the same, written in hex
    "[0:0:0:0:0:ffff:127.0.0.1]": "loopback",
    "[::127.0.0.1]": "loopback",  # IPv4-compatible (deprecated)
    "[64:ff9b::127.0.0.1]": "loopback",  # NAT64
    "[2002:7f00:1::]": "loopback",  # 6to4
    "localhost": "loopback",
    "LOCALHOST.": "loopback",
    "anything.localhost": "loopback",
    "0.0.0.0": "unspecified",
    "0": "unspecified",
    "[::]": "unspecified",
    "0.1.2.3": "reserved",
    "169.254.169.254": "cloud metadata",
    "2852039166": "cloud metadata",  # 169.254.169.254 as a number
    "[::ffff:169.254.169.254]": "cloud metadata",
    "[fd00:ec2::254]": "cloud metadata",
    "metadata.google.internal": "cloud metadata",
    "metadata.google.internal.": "cloud metadata",
    "100.100.100.200": "cloud metadata",
    "169.254.1.1": "link-local",
    "[fe80::1]": "link-local",
    "[fe80::1%25eth0]": "link-local",
    "10.0.0.1": "private",
    "10.255.255.255": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "[::ffff:10.0.0.1]": "private",
    "[::ffff:192.168.0.1]": "private",
    "100.64.0.1": "private",  # carrier-grade NAT
    "[fc00::1]": "private",
    "[fd12:3456::1]": "private",
    "224.0.0.1": "multicast",
    "[ff02::1]": "multicast",
    "255.255.255.255": "broadcast",
    "240.0.0.1": "reserved",
    "192.0.2.10": "documentation",
    "[2001:db8::1]": "documentation",
    "[2001::1]": "reserved",  # Teredo
    "[100::1]": "reserved",
}
PUBLIC_HOSTS = [
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",  # just past 172.16.0.0/12
    "11.0.0.1",
    "[2606:4700:4700::1111]",
    "[::ffff:8.8.8.8]",
    "[64:ff9b::8.8.8.8]",  # NAT64 of a public address is how IPv6-only hosts reach it
    "hooks.slack.com",
    "events.pagerduty.com",
    "localhost.example.com",
    "127.0.0.1.nip.io",  # a name: DNS decides, and the send-time check sees its answer
]


@pytest.mark.parametrize(("host", "category"), DENIED_HOSTS.items(), ids=list(DENIED_HOSTS))
def test_special_addresses_in_every_spelling_are_denied_by_default(
    host: str, category: str
) -> None:
    literal_host = host.replace("%25", "%")  # a URL's escaped zone id, as the parser hands it
    with pytest.raises(DestinationDeniedError) as denied:
        check_host(literal_host, STRICT)
    assert denied.value.category == category
    assert category in str(denied.value)
    assert "OUTBOUND_ALLOWED_NETWORKS" in str(denied.value)


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_public_addresses_and_names_pass(host: str) -> None:
    check_host(host, STRICT)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("10.1", "10.0.0.1"),
        ("example.com", None),
        ("deadbeef", None),  # letters only: a name, even though they are hex digits
        ("1e100.net", None),
        ("", None),
    ],
)
def test_literal_addresses_are_read_as_a_resolver_reads_them(
    host: str, address: str | None
) -> None:
    found = ip_literal(host)
    assert (str(found) if found is not None else None) == address


def test_the_denial_names_the_host_and_the_address_but_not_the_rest_of_the_url() -> None:
    error = DestinationDeniedError("hooks.evil.test", ipaddress.ip_address("10.0.0.7"), "private")
    assert "hooks.evil.test resolves to 10.0.0.7, a private address" in str(error)


def test_allowed_networks_open_exactly_those_addresses() -> None:
    policy = OutboundPolicy.of(["10.20.0.0/16", "127.0.0.1"])
    check_host("10.20.3.4", policy)
    check_host("127.0.0.1", policy)
    check_host("[::ffff:10.20.3.4]", policy)  # the mapped form reaches the same host
    for host in ("10.21.0.1", "127.0.0.2", "192.168.0.1", "[::1]"):
        with pytest.raises(DestinationDeniedError):
            check_host(host, policy)


def test_allow_private_opens_everything_but_cloud_metadata() -> None:
    policy = OutboundPolicy(allow_private=True)
    for host in ("127.0.0.1", "10.0.0.1", "[fd12::1]", "169.254.1.1", "localhost"):
        check_host(host, policy)
    for host in ("169.254.169.254", "[fd00:ec2::254]", "metadata.google.internal"):
        with pytest.raises(DestinationDeniedError) as denied:
            check_host(host, policy)
        assert denied.value.category == "cloud metadata"


def test_metadata_can_be_allowed_only_by_naming_it() -> None:
    check_host("169.254.169.254", OutboundPolicy.of(["169.254.169.254/32"]))


def test_every_address_outside_ipv6_global_unicast_is_denied() -> None:
    assert category_of(ipaddress.ip_address("4000::1")) == "reserved"
    assert category_of(ipaddress.ip_address("2a00:1450::1")) is None
