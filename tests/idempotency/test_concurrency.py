"""Specification: concurrent retries with one key make exactly one row.

Real concurrency: the app served by uvicorn on a socket, and 24 threads that each send
the same request with the same key at the same moment (a barrier lines them up). On
PostgreSQL, two apps share the database as two replicas would: nothing but the database
coordinates them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.incidents.models import Incident
from tests.idempotency.helpers import count, keyed
from tests.support.threaded_server import served_in_thread

CONCURRENT = 24
INCIDENT = {"title": "Checkout down", "severity": "critical"}


def _post_together(base_urls: Sequence[str], headers: dict[str, str]) -> list[httpx.Response]:
    """`CONCURRENT` POSTs of one incident with `headers`, released at once, spread over
    `base_urls` in turn."""
    barrier = threading.Barrier(CONCURRENT)
    limits = httpx.Limits(max_connections=CONCURRENT)
    with ExitStack() as stack:
        apis = [
            stack.enter_context(httpx.Client(base_url=url, timeout=30, limits=limits))
            for url in base_urls
        ]
        for api in apis:  # FastAPI prepares a route at its first request: not in the race
            assert api.post("/api/incidents", json={}).status_code == 422

        def post(number: int) -> httpx.Response:
            barrier.wait()
            return apis[number % len(apis)].post("/api/incidents", json=INCIDENT, headers=headers)

        with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
            return list(pool.map(post, range(CONCURRENT)))


def _assert_one_incident_for_all(responses: list[httpx.Response], settings: Settings) -> None:
    assert [response.status_code for response in responses] == [201] * CONCURRENT, [
        response.text for response in responses if response.status_code != 201
    ]
    assert len({response.json()["id"] for response in responses}) == 1
    replayed = [response for response in responses if "idempotent-replayed" in response.headers]
    assert len(replayed) == CONCURRENT - 1
    assert count(settings, Incident) == 1


def test_concurrent_retries_with_one_key_create_one_incident(settings: Settings) -> None:
    with served_in_thread(create_app(settings)) as base_url:
        responses = _post_together([base_url], keyed())

    _assert_one_incident_for_all(responses, settings)


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_concurrent_retries_across_two_replicas_create_one_incident(settings: Settings) -> None:
    with ExitStack() as replicas:
        base_urls = [replicas.enter_context(served_in_thread(create_app(settings))) for _ in "ab"]
        responses = _post_together(base_urls, keyed())

    _assert_one_incident_for_all(responses, settings)
