"""Specification of the shared TLS context: the outbound clients load the CA bundle once
per process, not once each (about 20 ms a time, at every start and OIDC request)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reliability_studio.outbound.addresses import OutboundPolicy
from reliability_studio.outbound.http import guarded_client
from reliability_studio.outbound.tls import default_ssl_context
from reliability_studio.telemetry.loki import LokiClient
from reliability_studio.telemetry.prometheus import PrometheusClient
from reliability_studio.telemetry.tempo import TempoClient


@pytest.fixture
def contexts_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ssl.SSLContext]]:
    """Every CA-loading TLS context made from now on (httpx makes them with this call)."""
    made: list[ssl.SSLContext] = []
    original: Callable[..., ssl.SSLContext] = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = original(*args, **kwargs)
        made.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", counting)
    default_ssl_context.cache_clear()
    yield made
    default_ssl_context.cache_clear()


async def _make_and_close_the_clients() -> None:
    clients: list[PrometheusClient | LokiClient | TempoClient] = [
        PrometheusClient("https://prometheus.example"),
        PrometheusClient("https://other-prometheus.example"),
        LokiClient("https://loki.example"),
        TempoClient("https://tempo.example"),
    ]
    async with (
        guarded_client(OutboundPolicy(), timeout=5),
        guarded_client(OutboundPolicy(), timeout=5),
    ):
        pass
    for client in clients:
        await client.close()


def test_the_outbound_clients_load_the_ca_bundle_once(contexts_made: list[ssl.SSLContext]) -> None:
    asyncio.run(_make_and_close_the_clients())
    assert len(contexts_made) == 1
