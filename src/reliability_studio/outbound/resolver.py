"""Resolving and connecting to user-supplied hosts, checked against the outbound policy.

Checking a URL when it is saved is not enough: DNS can answer a public address then and a
loopback one a second later (DNS rebinding). So the address is checked where the connection
is made: the host is resolved here, every address checked, and the socket connected to a
checked address, never to the name (which would be resolved again).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from reliability_studio.outbound.addresses import (
    IPAddress,
    OutboundPolicy,
    check_addresses,
    check_host,
)

# Checks at create/update time must not keep a user waiting on a slow resolver; what cannot
# be resolved then is checked again at send time anyway.
SAVE_TIME_RESOLVE_SECONDS = 2.0


async def lookup(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order, without repeats.

    The one place names are resolved: tests replace it to play a rebinding DNS server.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


async def resolve_checked(
    host: str, port: int, policy: OutboundPolicy, *, timeout_seconds: float | None
) -> list[IPAddress]:
    """The addresses to connect to for `host`, every one allowed by `policy`.

    Raises `DestinationDeniedError` when any is denied; `socket.gaierror` when the name does
    not resolve; `TimeoutError` when the resolver takes longer than `timeout_seconds`.
    """
    literal = check_host(host, policy)
    if literal is not None:
        return [literal]
    try:
        async with asyncio.timeout(timeout_seconds):
            addresses = await lookup(host, port)
    except UnicodeError:
        # getaddrinfo encodes the name with IDNA first, and a name it cannot encode (a
        # control character, an empty label, one over 63 octets) raises UnicodeError, not
        # gaierror: found by the fuzzer as a 500 on POST /api/notification-channels.
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not a valid host name") from None
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    check_addresses(host, addresses, policy)
    return addresses


async def check_destination(host: str, port: int, policy: OutboundPolicy) -> None:
    """The save-time check of a user-supplied host: raises `DestinationDeniedError`.

    A name that does not resolve (yet, or from here) passes: the send-time check, made on
    the address actually connected to, is the one that protects.
    """
    try:
        await resolve_checked(host, port, policy, timeout_seconds=SAVE_TIME_RESOLVE_SECONDS)
    except (OSError, TimeoutError):  # gaierror is an OSError
        return


async def connect_checked(
    host: str, port: int, policy: OutboundPolicy, *, timeout_seconds: float
) -> socket.socket:
    """A non-blocking TCP socket connected to an allowed address of `host` (for SMTP).

    Tries each address in turn, as `socket.create_connection` does. Raises
    `DestinationDeniedError`, or an `OSError` when none can be reached in time.
    """
    loop = asyncio.get_running_loop()
    addresses = await resolve_checked(host, port, policy, timeout_seconds=timeout_seconds)
    failure: OSError = OSError(f"cannot connect to {host}:{port}")
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout_seconds):
                await loop.sock_connect(sock, (str(address), port))
        except OSError as exc:  # TimeoutError included
            sock.close()
            failure = exc
            continue
        return sock
    raise failure
