"""Specification of a PostgreSQL outage under load, against a real `reliability-studio serve`.

tests/db/test_outage.py covers an idle app in the test process (503 + Retry-After, recovery
within 5 s). Here writers and readers keep going (tests/support/load_writer.py) while
PostgreSQL is stopped, cleanly (`fast`) or as a crash (`immediate`), and started again:

- every answer is a 2xx or a 503 problem+json with `Retry-After`: never a 500, never a
  dropped connection, and none takes longer than the connect timeout (no hang);
- `/health` is 503 while PostgreSQL is down; the process stays up;
- within 5 s of PostgreSQL accepting connections again, `/health` is 200 and writes are
  acknowledged again, without a restart (the time is printed, for docs/reliability.md);
- no connection is left stuck: the pool has nothing checked out once the load stops, and
  PostgreSQL sees no session of ours idle in a transaction;
- the background jobs resume where they were: a notification queued before the outage is
  delivered after it, the SLO scheduler evaluates again, the alert correlator opens an
  incident for an alert received after it, and the live stream reconnects.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from reliability_studio.config import Settings
from tests.notify.conftest import PROCESS_SETTINGS
from tests.reliability.conftest import create_services, start_serve
from tests.support.api import ALERTMANAGER_WEBHOOK, alertmanager_alert, alertmanager_payload
from tests.support.load_writer import Ledger, LoadWriter
from tests.support.postgres import PostgresServer, free_port
from tests.support.webhook_receiver import Answer, WebhookReceiver

OUTAGE_SECONDS = 3.0
RECOVERY_SECONDS = 5.0  # the promise: service resumes within 5 s of PostgreSQL's return
CONNECT_TIMEOUT_SECONDS = 5.0  # DB_CONNECT_TIMEOUT_SECONDS' default, set explicitly here
# No request may take longer than a connection attempt, plus room for a slow shared machine.
HANG_BOUND_SECONDS = CONNECT_TIMEOUT_SECONDS + 2.0
WAIT_SECONDS = 15.0
SETTINGS = {
    **PROCESS_SETTINGS,  # dispatcher on, polling often; no Prometheus (port 1)
    "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32",  # the webhook receiver of the test
    "DB_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT_SECONDS),
    "SLO_ENGINE_ENABLED": "true",
    "SLO_SCHEDULER_TICK_SECONDS": "0.2",
    "SLO_EVALUATION_INTERVAL_SECONDS": "1",
    "PROMETHEUS_TIMEOUT_SECONDS": "1",
    "ALERT_CORRELATION_ENABLED": "true",
    "ALERT_CORRELATION_POLL_SECONDS": "0.1",
    "NOTIFY_POLL_SECONDS": "0.1",
    "NOTIFY_MAX_ATTEMPTS": "100",
    "NOTIFY_BACKOFF_BASE_SECONDS": "0.2",
    "NOTIFY_BACKOFF_MAX_SECONDS": "0.5",
    # A result that could not be recorded during the outage is retried after its lease.
    "NOTIFY_LEASE_SECONDS": "2",
}
RATIO_SLI = {
    "kind": "ratio",
    "errors": 'http_requests_total{job="checkout",code="500"}',
    "total": 'http_requests_total{job="checkout"}',
}


def wait_for(what: str, condition: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """The first true value of `condition()`; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.1)
    return value


def _created(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _metric(text: str, name: str) -> float:
    """The value of an unlabelled sample of /metrics."""
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def _sessions(server: PostgresServer, database: str) -> dict[str, int]:
    """Our sessions in PostgreSQL by state (`active`, `idle`, `idle in transaction`...).

    A session idle in transaction for less than a second is a background job between two
    statements, not a leak: it is counted as `in a transaction now`.
    """

    async def read() -> dict[str, int]:
        connection = await asyncpg.connect(
            host="127.0.0.1", port=server.port, user="postgres", database=database
        )
        try:
            rows = await connection.fetch(
                "SELECT CASE WHEN state LIKE 'idle in transaction%'"
                " AND now() - state_change < interval '1 second'"
                " THEN 'in a transaction now' ELSE coalesce(state, '') END AS state,"
                " count(*) AS n FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid() GROUP BY 1",
                database,
            )
            return {row["state"]: row["n"] for row in rows}
        finally:
            await connection.close()

    return asyncio.run(read())


def _check_answers(ledger: Ledger) -> None:
    """2xx or a proper 503, each in bounded time."""
    wrong = ledger.unexpected(frozenset({200, 201, 503}))
    assert not wrong, f"{len(wrong)} answers neither 2xx nor 503: {wrong[:5]}"
    with ledger.lock:
        observations = list(ledger.observations)
    unavailable = [o for o in observations if o.status == 503]
    assert unavailable, "the outage produced no 503: did the load reach the database?"
    for observation in unavailable:
        assert observation.content_type.startswith("application/problem+json"), observation
        assert observation.retry_after is not None, observation
        assert int(observation.retry_after) > 0, observation
    slowest = max(observations, key=lambda o: o.seconds)
    assert slowest.seconds < HANG_BOUND_SECONDS, slowest


@pytest.mark.parametrize("mode", ["fast", "immediate"], ids=["clean stop", "crash"])
def test_under_load_a_postgres_outage_is_503s_then_recovery_within_5_seconds(
    durable_postgres: PostgresServer, tmp_path: Path, mode: str
) -> None:
    database = f"outage_{uuid.uuid4().hex[:8]}"
    durable_postgres.create_database(database)
    settings = {**SETTINGS, "DATABASE_URL": durable_postgres.url(database)}
    # The receiver refuses (503) until PostgreSQL is back: the notification queued before
    # the outage is still being retried when it starts.
    with WebhookReceiver(default=Answer(status=503)) as receiver:
        serve = start_serve(tmp_path, free_port(), "serve.log", **settings)
        try:
            with httpx.Client(base_url=serve.base_url, timeout=10) as api:
                checkout = _created(api, "/api/services", {"name": "checkout"})
                channel = _created(
                    api,
                    "/api/notification-channels",
                    {"name": "hook", "config": {"kind": "webhook", "url": receiver.url}},
                )
                _created(
                    api,
                    "/api/notification-policies",
                    {
                        "name": "checkout",
                        "events": ["incident.created"],
                        "services": ["checkout"],  # not the load's incidents
                        "channel_ids": [channel["id"]],
                    },
                )
                slo = _created(
                    api,
                    "/api/slos",
                    {
                        "service_id": checkout["id"],
                        "name": "availability",
                        "objective": 99.9,
                        "window_days": 30,
                        "sli": RATIO_SLI,
                    },
                )
                before = _created(
                    api,
                    "/api/incidents",
                    {"title": "Before the outage", "service_ids": [checkout["id"]]},
                )
                wait_for("a first, refused delivery attempt", lambda: receiver.received)
                service_ids = create_services(serve.base_url, 4)

                with LoadWriter(serve.base_url, service_ids, threads=3, reads=True) as writer:
                    time.sleep(1.5)
                    durable_postgres.stop(mode=mode)
                    down = time.monotonic()
                    while time.monotonic() - down < OUTAGE_SECONDS:
                        health = httpx.get(f"{serve.base_url}/health", timeout=HANG_BOUND_SECONDS)
                        assert health.status_code == 503, health.text
                        assert int(health.headers["retry-after"]) > 0
                        assert health.json()["checks"]["database"]["status"] == "unavailable"
                        time.sleep(0.2)
                    assert serve.process.poll() is None, serve.output_tail()

                    durable_postgres.start()  # returns once it accepts connections
                    back = time.monotonic()
                    log_offset = len(serve.output())
                    receiver.default = Answer()  # 204 from now on
                    wait_for(
                        "/health 200 after the outage",
                        lambda: (
                            httpx.get(f"{serve.base_url}/health", timeout=10).status_code == 200
                        ),
                    )
                    health_seconds = time.monotonic() - back
                    time.sleep(max(0.0, back + RECOVERY_SECONDS + 1.0 - time.monotonic()))

                ledger = writer.ledger
                with ledger.lock:
                    written_again = [
                        o.started + o.seconds - back
                        for o in ledger.observations
                        if o.started >= back and o.method != "GET" and o.status in (200, 201)
                    ]
                write_seconds = min(written_again, default=float("inf"))
                print(
                    f"outage ({mode}): /health 200 {health_seconds:.2f} s and first write "
                    f"acknowledged {write_seconds:.2f} s after PostgreSQL was back; statuses "
                    f"{dict(ledger.statuses())}"
                )
                _check_answers(ledger)
                assert health_seconds < RECOVERY_SECONDS
                assert write_seconds < RECOVERY_SECONDS

                # The background jobs resumed where they were.
                def delivered() -> bool:
                    items = api.get("/api/notifications", params={"limit": 100}).json()["items"]
                    return any(
                        i["incident_id"] == before["id"] and i["status"] == "delivered"
                        for i in items
                    )

                wait_for("the notification queued before the outage delivered", delivered)
                # No Prometheus answers, so the SLO is marked stale rather than evaluated: a
                # pass that claims it and writes that (both in the database) is the sign.
                wait_for(
                    "an SLO scheduler pass after the outage",
                    lambda: (
                        "prometheus unavailable; SLOs marked stale" in serve.output()[log_offset:]
                    ),
                )
                assert api.get(f"/api/slos/{slo['id']}").json()["stale"] is True
                ingested = api.post(
                    ALERTMANAGER_WEBHOOK,
                    json=alertmanager_payload(alertmanager_alert("CheckoutDown")),
                )
                assert ingested.status_code == 202, ingested.text
                wait_for(
                    "an incident opened by the correlator for an alert after the outage",
                    lambda: [
                        i
                        for i in api.get(
                            "/api/incidents", params={"service_id": checkout["id"]}
                        ).json()["items"]
                        if i["id"] != before["id"]
                    ],
                )
                wait_for(
                    "the live stream reconnected",
                    lambda: api.get("/health").json()["checks"]["live"]["status"] == "ok",
                )

                # Nothing stuck: no connection held by a request that failed mid-outage.
                wait_for(
                    "the pool with nothing checked out",
                    lambda: _metric(api.get("/metrics").text, "db_pool_checked_out") == 0,
                    timeout=5,
                )
                sessions = _sessions(durable_postgres, database)
                assert not {s for s in sessions if s.startswith("idle in transaction")}, sessions
                fields = Settings.model_fields  # serve runs with the default pool
                limit = fields["db_pool_size"].default + fields["db_max_overflow"].default + 1
                assert sum(sessions.values()) <= limit, sessions
            assert serve.process.poll() is None, serve.output_tail()
            assert "unhandled exception" not in serve.output()
        finally:
            serve.stop()
