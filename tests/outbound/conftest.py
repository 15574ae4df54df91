"""Fixtures of the outbound-safety tests: a DNS resolver the test controls."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable

import pytest

from reliability_studio.outbound import resolver
from reliability_studio.outbound.addresses import IPAddress


class FakeDNS:
    """Answers for names ending in `.test`; each name's answers are used in turn (the last
    one repeats), which is how a rebinding DNS server behaves. Other names resolve for real.
    `asked` counts the lookups of each name."""

    def __init__(self, real: Callable[[str, int], Awaitable[list[IPAddress]]]) -> None:
        self.answers: dict[str, list[list[IPAddress]]] = {}
        self.asked: dict[str, int] = {}
        self._real = real

    def set(self, name: str, *answers: list[str]) -> None:
        """`name` resolves to `answers[0]` first, then `answers[1]`, ..."""
        self.answers[name] = [[ipaddress.ip_address(a) for a in answer] for answer in answers]

    async def lookup(self, host: str, port: int) -> list[IPAddress]:
        if not host.endswith(".test"):
            return await self._real(host, port)
        count = self.asked.get(host, 0)
        self.asked[host] = count + 1
        answers = self.answers.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answers[min(count, len(answers) - 1)])


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """Replace the resolver every outbound check and connection uses."""
    fake = FakeDNS(resolver.lookup)
    monkeypatch.setattr(resolver, "lookup", fake.lookup)
    return fake
