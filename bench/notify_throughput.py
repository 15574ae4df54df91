"""Benchmark: notifications per second through the outbox to a local webhook receiver.

    python -m bench.notify_throughput [--notifications 6000] [--workers 1]
                                      [--live-seconds 10] [--live-rate 20] [--quick]

It starts a throwaway PostgreSQL with durable settings (fsync, synchronous_commit and
full_page_writes on, as in production), migrates it, and starts a webhook receiver in its
own process: a bare ASGI app under uvicorn (uvloop, httptools) that reads the body, checks
nothing heavy (only that an `Idempotency-Key` is there), counts requests per key and answers
200. Through the service layer it adds a service, a generic webhook channel (signed) pointing
at the receiver and a policy sending `incident.created` to it, then `--notifications`
incidents in transactions of 500 (`add_incidents`, the path alert storms take), so that the
outbox holds that many `pending` rows. Only then does a real `reliability-studio serve`
(`--workers` processes, notifications on; SLO engine, analysis and correlation off) start,
and its dispatcher delivers them. It measures:

- `drain`: notifications delivered per second, from the first request the receiver sees to
  the last `delivered_at` (and per whole second), with the CPU seconds of the server,
  PostgreSQL and the receiver, and the write transactions and WAL bytes per notification;
- `live`: with the backlog gone, a separate load-generator process opens incidents through
  `POST /api/incidents` at `--live-rate` a second (open loop) for `--live-seconds`, and the
  latency of their notifications from the outbox row's `created_at` to its `delivered_at`
  (p50, p99). The rate is fixed rather than a share of the drain rate: the API and the
  dispatcher share `serve`'s CPU, and near the drain rate the figure would only measure a
  growing queue. The backlog's own rows are not used for latency: they waited behind the
  whole backlog and for `serve` to start;
- `ceiling`: a separate process drives the same receiver with a bare httpx client loop, as
  many requests in flight as the dispatchers have (one per channel and process: a channel's
  rows are sent one after the other), with bodies and headers built as the webhook sender
  builds them. That is what the receiver and an httpx client manage on this machine; the
  ratio says what share of it the dispatcher reaches. The CPU per request of the client and
  of the receiver say which of the two sets that limit;
- `receiver`: duplicates by idempotency key (must be 0), and the delivered rows the receiver
  never saw (must be 0).

The result goes to `bench/results/<date>-notify-throughput.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from tests.support.postgres import PostgresServer, free_port
from tests.support.served import ServedProcess, serving

from bench.alert_ingest import (
    MachineCPU,
    percentile,
    postgres_settings,
    postmaster_pid,
    psql,
    tree_cpu_seconds,
)
from bench.machine import machine
from bench.report import postgres_row, print_figures, warn_if_busy_elsewhere, write_result
from reliability_studio.catalog.schemas import ServiceCreate
from reliability_studio.catalog.service import create_service
from reliability_studio.config import Settings
from reliability_studio.db.engine import create_engine, create_sessionmaker
from reliability_studio.db.migrate import upgrade_to_head
from reliability_studio.incidents.lifecycle import SEVERITIES
from reliability_studio.incidents.schemas import IncidentCreate
from reliability_studio.incidents.service import add_incidents
from reliability_studio.notify.channels.webhook import USER_AGENT, body_of, sign
from reliability_studio.notify.delivery import Notification
from reliability_studio.notify.schemas import ChannelCreate, PolicyCreate, WebhookConfig
from reliability_studio.notify.service import create_channel, create_policy
from reliability_studio.organizations.models import DEFAULT_ORGANIZATION_ID

ROOT = Path(__file__).resolve().parent.parent
# The spec's form of secret: the request signing is part of what the dispatcher does.
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"reliability-studio-notify-bench!").decode()
HOOK_PATH = "/hooks/incidents"
CEILING_PATH = "/ceiling"
BACKLOG_BATCH = 500
SERVICE_NAME = "checkout"
POLL_SECONDS = 0.2
LIVE_CONNECTIONS = 32
FAILURE_SAMPLES = 5

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# --- the receiver (runs in its own process) ------------------------------------------


class Receiver:
    """A bare ASGI app: counts POSTs per `Idempotency-Key` and answers 200 with no body.

    `GET /_stats` reports the counts (`?keys=1`: every key too); `POST /_reset` clears them.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.counts: Counter[str] = Counter()
        self.requests = 0
        self.refused = 0
        self.body_bytes = 0
        self.first_at: float | None = None
        self.last_at: float | None = None

    def stats(self, with_keys: bool) -> dict[str, Any]:
        repeated = {key: count for key, count in self.counts.items() if count > 1}
        stats: dict[str, Any] = {
            "requests": self.requests,
            "refused": self.refused,
            "distinct_keys": len(self.counts),
            "duplicates": sum(count - 1 for count in repeated.values()),
            "duplicate_samples": dict(list(repeated.items())[:FAILURE_SAMPLES]),
            "body_bytes_mean": round(self.body_bytes / self.requests, 1) if self.requests else 0,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }
        if with_keys:
            stats["keys"] = list(self.counts)
        return stats

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == "/_stats":
            body = orjson.dumps(self.stats(scope["query_string"] == b"keys=1"))
            await self._answer(send, 200, body, b"application/json")
            return
        if method == "POST" and path == "/_reset":
            self.reset()
            await self._answer(send, 204)
            return
        now = time.time()
        key = next((v for k, v in scope["headers"] if k == b"idempotency-key"), None)
        if method != "POST" or key is None:
            self.refused += 1
            await self._answer(send, 400)
            return
        self.counts[key.decode("latin-1")] += 1
        self.requests += 1
        self.body_bytes += size
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        await self._answer(send, 200)

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes = b"", kind: bytes = b"") -> None:
        headers = [(b"content-length", str(len(body)).encode())]
        if kind:
            headers.append((b"content-type", kind))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def run_receiver(port: int) -> None:
    """The `--receiver-port` mode: serve the receiver until SIGTERM."""
    import uvicorn

    uvicorn.run(
        Receiver(),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


@dataclass
class ReceiverProcess:
    """The receiver's process, its base URL, and a kept-alive client for its counts (polling
    then costs this process next to nothing)."""

    process: subprocess.Popen[bytes]
    url: str
    http: httpx.Client

    def stats(self, *, with_keys: bool = False) -> dict[str, Any]:
        """The counts (and every idempotency key seen, when asked)."""
        response = self.http.get("/_stats", params={"keys": "1"} if with_keys else None)
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def reset(self) -> None:
        """Forget every count."""
        self.http.post("/_reset").raise_for_status()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        self.http.close()
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_receiver(log: Path) -> ReceiverProcess:
    """The receiver in its own process, once it answers."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own fixed command line
            [sys.executable, "-m", "bench.notify_throughput", "--receiver-port", str(port)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    receiver = ReceiverProcess(process, url, httpx.Client(base_url=url, timeout=30))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            receiver.stop()
            raise RuntimeError(f"the receiver exited with {process.returncode}:\n{log.read_text()}")
        try:
            receiver.stats()
        except httpx.HTTPError:
            time.sleep(0.1)
        else:
            return receiver
    receiver.stop()
    raise RuntimeError(f"the receiver did not answer in 30 s:\n{log.read_text()}")


# --- the ceiling: the receiver driven by a bare httpx loop (its own process) -----------


def sample_notification(number: int) -> Notification:
    """A notification shaped like the backlog's (the outbox's payload of an incident)."""
    now = datetime.now(UTC)
    incident_id = uuid.uuid4()
    title = f"Checkout error rate above objective #{number}"
    resource = {
        "id": str(incident_id),
        "title": title,
        "description": None,
        "severity": "high",
        "status": "open",
        "services": [SERVICE_NAME],
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
    }
    return Notification(
        id=uuid.uuid4(),
        event="incident.created",
        occurred_at=now,
        incident_id=incident_id,
        title=title,
        severity="high",
        status="open",
        services=[SERVICE_NAME],
        url=None,
        resource=resource,
    )


def signed_request(n: Notification) -> tuple[bytes, dict[str, str]]:
    """The body and headers the webhook sender builds for `n`."""
    body = body_of(n)
    timestamp = int(time.time())
    message_id = str(n.id)
    return body, {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "idempotency-key": message_id,
        "webhook-signature": sign(WEBHOOK_SECRET, message_id, timestamp, body),
    }


async def drive_receiver(url: str, concurrency: int, count: int, seconds: float) -> dict[str, Any]:
    """`count` POSTs (or as many as fit in `seconds`), `concurrency` at a time."""
    queue: Iterator[int] = iter(range(count))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0, follow_redirects=False) as http:
        started = time.monotonic()
        stop_at = started + seconds

        async def sender() -> None:
            for number in queue:
                if time.monotonic() > stop_at:
                    return
                body, headers = signed_request(sample_notification(number))
                begin = time.monotonic()
                try:
                    response = await http.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    statuses[0] += 1
                    continue
                latencies.append(time.monotonic() - begin)
                statuses[response.status_code] += 1

        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    ok = statuses[200]
    return {
        "requests": sum(statuses.values()),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(elapsed, 3),
        "requests_per_second": round(ok / elapsed, 1) if elapsed else 0.0,
        "request_seconds_p50": round(percentile(latencies, 0.50), 6),
        "request_seconds_p99": round(percentile(latencies, 0.99), 6),
    }


def run_ceiling_client(args: argparse.Namespace) -> None:
    """The `--ceiling-url` mode: drive the receiver, print the figures as JSON."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    # uvloop, as under `serve`: the dispatcher's event loop is uvicorn's.
    result = uvloop.run(
        drive_receiver(args.ceiling_url, args.concurrency, args.count, args.ceiling_seconds)
    )
    after = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = round(
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2
    )
    json.dump(result, sys.stdout)


def measure_ceiling(
    receiver: ReceiverProcess, concurrency: int, count: int, seconds: float
) -> dict[str, Any]:
    """Run the ceiling client as a child process against the receiver, reset."""
    receiver.reset()
    receiver_before = tree_cpu_seconds(receiver.process.pid)
    done = subprocess.run(  # noqa: S603 - our own fixed command line
        [
            *(sys.executable, "-m", "bench.notify_throughput"),
            *("--ceiling-url", receiver.url + CEILING_PATH, "--concurrency", str(concurrency)),
            *("--count", str(count), "--ceiling-seconds", str(seconds)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the ceiling client failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    stats = receiver.stats()
    receiver_cpu = tree_cpu_seconds(receiver.process.pid) - receiver_before
    ok = max(1, result["ok"])
    result["concurrency"] = concurrency
    result["cpu_ms_per_request"] = {
        "client": round(1000 * result["cpu_seconds"] / ok, 3),
        "receiver": round(1000 * receiver_cpu / ok, 3),
    }
    result["receiver_counted"] = stats["requests"]
    result["receiver_duplicates"] = stats["duplicates"]
    result["body_bytes_mean"] = stats["body_bytes_mean"]
    return result


# --- the live load generator: incidents through the API (its own process) ------------


async def open_incidents(url: str, service_id: str, rate: float, seconds: float) -> dict[str, Any]:
    """POST /api/incidents at `rate` a second for `seconds` (open loop)."""
    total = max(1, int(rate * seconds))
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=LIVE_CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as http:
        started = time.monotonic()

        async def one(number: int) -> None:
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            body = {
                "title": f"Checkout error rate above objective (live #{number})",
                "severity": SEVERITIES[number % len(SEVERITIES)],
                "service_ids": [service_id],
            }
            begin = time.monotonic()
            try:
                response = await http.post("/api/incidents", json=body)
            except httpx.HTTPError as exc:
                statuses[0] += 1
                if len(failures) < FAILURE_SAMPLES:
                    failures.append(repr(exc))
                return
            latencies.append(time.monotonic() - begin)
            statuses[response.status_code] += 1
            if response.status_code != 201 and len(failures) < FAILURE_SAMPLES:
                failures.append(f"{response.status_code}: {response.text[:300]}")

        await asyncio.gather(*(one(number) for number in range(total)))
        elapsed = time.monotonic() - started
    return {
        "planned": total,
        "created": statuses[201],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "failure_samples": failures,
        "seconds": round(elapsed, 3),
        "incidents_per_second": round(statuses[201] / elapsed, 1) if elapsed else 0.0,
        "request_seconds_p50": round(percentile(latencies, 0.50), 4),
        "request_seconds_p99": round(percentile(latencies, 0.99), 4),
    }


def run_live_load(args: argparse.Namespace) -> None:
    """The `--live-url` mode: open incidents, print the figures as JSON."""
    result = uvloop.run(
        open_incidents(args.live_url, args.service_id, args.live_rate, args.live_seconds)
    )
    json.dump(result, sys.stdout)


# --- the backlog, written through the service layer ----------------------------------


async def write_backlog(database_url: str, hook_url: str, count: int) -> dict[str, Any]:
    """The service, channel and policy, then `count` incidents and so `count` pending rows."""
    settings = Settings(database_url=database_url)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    org = DEFAULT_ORGANIZATION_ID
    started = time.perf_counter()
    try:
        async with sessionmaker() as session:
            service = await create_service(
                session, org, ServiceCreate(name=SERVICE_NAME, team="payments")
            )
            channel = await create_channel(
                session,
                org,
                ChannelCreate(
                    name="bench-receiver",
                    config=WebhookConfig(kind="webhook", url=hook_url, secret=WEBHOOK_SECRET),
                ),
            )
            await create_policy(
                session,
                org,
                PolicyCreate(
                    name="incidents-to-receiver",
                    events=["incident.created"],
                    channel_ids=[channel.id],
                ),
            )
        for first in range(0, count, BACKLOG_BATCH):
            async with sessionmaker() as session:
                items = [
                    (
                        IncidentCreate(
                            title=f"Checkout error rate above objective #{number}",
                            severity=SEVERITIES[number % len(SEVERITIES)],
                            service_ids=[service.id],
                        ),
                        [service],
                    )
                    for number in range(first, min(first + BACKLOG_BATCH, count))
                ]
                await add_incidents(session, org, "bench", items)
                await session.commit()
    finally:
        await engine.dispose()
    return {
        "service_id": str(service.id),
        "channel_id": str(channel.id),
        "seconds": round(time.perf_counter() - started, 2),
    }


# --- measuring ---------------------------------------------------------------------


def count_by_status(postgres: PostgresServer) -> dict[str, int]:
    rows = psql(postgres, "bench", "SELECT status, count(*) FROM notifications GROUP BY status")
    found = {}
    for line in rows.splitlines():
        status, count = line.split("|")
        found[status] = int(count)
    return found


def pg_position(postgres: PostgresServer) -> tuple[int, int]:
    """The next transaction id and the WAL position in bytes (neither consumes anything)."""
    line = psql(
        postgres,
        "bench",
        "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
    )
    xid, lsn = line.split("|")
    return int(xid), int(lsn)


def epochs(postgres: PostgresServer, sql: str) -> list[float]:
    """One float a line out of `sql`."""
    return [float(line) for line in psql(postgres, "bench", sql).splitlines() if line]


def wait_until(
    ready: Callable[[], bool], timeout: float, what: str, log: Callable[[], str]
) -> float:
    """Poll until `ready()`; the wall-clock time it first was. Raises after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return time.time()
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{log()}")


def all_delivered(postgres: PostgresServer) -> bool:
    return count_by_status(postgres).keys() == {"delivered"}


def measure_drain(
    args: argparse.Namespace,
    postgres: PostgresServer,
    served: ServedProcess,
    receiver: ReceiverProcess,
) -> dict[str, Any]:
    """Wait for the backlog to be delivered; rates, CPU and PostgreSQL work per row."""
    n = args.notifications
    pg_pid = postmaster_pid(postgres)
    pids = (served.process.pid, pg_pid, receiver.process.pid)
    # The window for the CPU and PostgreSQL figures starts here (serve is healthy); the
    # dispatcher may have delivered some rows already, so they count what the window holds.
    cpu_before = [tree_cpu_seconds(pid) for pid in pids]
    machine_before = MachineCPU.now()
    position_before = pg_position(postgres)
    seen_before = receiver.stats()["requests"]

    def failed() -> str:
        return f"statuses: {count_by_status(postgres)}\nserve log:\n{served.output_tail()}"

    wait_until(
        lambda: receiver.stats()["requests"] >= n,
        args.timeout,
        f"the receiver to see {n} requests",
        failed,
    )
    wait_until(lambda: all_delivered(postgres), 60, "every row to be delivered", failed)
    cpu = [tree_cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
    machine_cpu = MachineCPU.now() - machine_before
    position_after = pg_position(postgres)
    stats = receiver.stats()
    in_window = max(1, stats["requests"] - seen_before)

    delivered = sorted(
        epochs(postgres, "SELECT extract(epoch FROM delivered_at) FROM notifications")
    )
    first = stats["first_at"]
    elapsed = delivered[-1] - first
    per_second = Counter(int(at - first) for at in delivered)
    whole = [per_second[s] for s in range(int(elapsed))]  # the last, partial second left out
    ours = sum(cpu)
    return {
        "notifications": len(delivered),
        "seconds": round(elapsed, 3),
        "notifications_per_second": round(len(delivered) / elapsed, 1),
        "per_whole_second_median": statistics.median(whole) if whole else None,
        "per_whole_second_min": min(whole) if whole else None,
        "per_whole_second": whole,
        "window": {
            "notifications": in_window,
            "postgres_write_transactions_per_notification": round(
                (position_after[0] - position_before[0]) / in_window, 3
            ),
            "wal_bytes_per_notification": round(
                (position_after[1] - position_before[1]) / in_window
            ),
            "cpu_seconds": {
                "server": round(cpu[0], 2),
                "postgres": round(cpu[1], 2),
                "receiver": round(cpu[2], 2),
                "other_processes": round(machine_cpu.processes - ours, 2),
                "interrupts_and_steal": round(machine_cpu.interrupts, 2),
                "machine_busy": round(machine_cpu.processes + machine_cpu.interrupts, 2),
                "machine_available": round(machine_cpu.total, 2),
            },
            "cpu_ms_per_notification": {
                "server": round(1000 * cpu[0] / in_window, 3),
                "postgres": round(1000 * cpu[1] / in_window, 3),
                "receiver": round(1000 * cpu[2] / in_window, 3),
            },
        },
    }


def measure_live(
    args: argparse.Namespace,
    postgres: PostgresServer,
    served: ServedProcess,
    service_id: str,
) -> dict[str, Any]:
    """Open incidents through the API while the dispatcher runs; created -> delivered."""
    done = subprocess.run(  # noqa: S603 - our own fixed command line
        [
            *(sys.executable, "-m", "bench.notify_throughput"),
            *("--live-url", served.base_url, "--service-id", service_id),
            *("--live-rate", str(args.live_rate), "--live-seconds", str(args.live_seconds)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=args.live_seconds + 300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the live load generator failed:\n{done.stderr}")
    load: dict[str, Any] = json.loads(done.stdout)
    wait_until(
        lambda: all_delivered(postgres),
        args.timeout,
        "the live rows to be delivered",
        lambda: f"statuses: {count_by_status(postgres)}\nserve log:\n{served.output_tail()}",
    )
    latencies = epochs(
        postgres,
        "SELECT extract(epoch FROM delivered_at - created_at) FROM notifications"
        " WHERE payload->>'title' LIKE '%(live #%'",
    )
    return {
        "offered_rate": args.live_rate,
        "api": load,
        "notifications": len(latencies),
        "created_to_delivered_seconds_p50": round(percentile(latencies, 0.50), 4),
        "created_to_delivered_seconds_p99": round(percentile(latencies, 0.99), 4),
        "created_to_delivered_seconds_max": round(max(latencies, default=0.0), 4),
    }


def check_receipts(postgres: PostgresServer, receiver: ReceiverProcess) -> dict[str, Any]:
    """Duplicates by idempotency key, and delivered rows the receiver never saw."""
    stats = receiver.stats(with_keys=True)
    ids = set(psql(postgres, "bench", "SELECT id FROM notifications").splitlines())
    keys = set(stats.pop("keys"))
    return {
        **{k: v for k, v in stats.items() if not k.endswith("_at")},
        "rows": len(ids),
        "rows_never_received": len(ids - keys),
        "keys_not_in_outbox": len(keys - ids),
    }


def serve_settings(database_url: str, workers: int) -> dict[str, str]:
    """`serve` with notifications on and the other background loops off."""
    return {
        "DATABASE_URL": database_url,
        "WEB_CONCURRENCY": str(workers),
        "NOTIFY_ENABLED": "true",
        "SLO_ENGINE_ENABLED": "false",
        "AUTH_MODE": "none",  # on loopback: the benchmark measures the work, not sign-in
        "ANALYSIS_ENABLED": "false",
        "ALERT_CORRELATION_ENABLED": "false",
        "PROMETHEUS_URL": "http://127.0.0.1:1",
        "LOG_LEVEL": "WARNING",
    }


# --- the whole run -----------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    """The command line; `--quick` delivers a tenth of the notifications."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--notifications", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--live-seconds", type=float, default=10.0)
    parser.add_argument("--live-rate", type=float, default=20.0, help="incidents/s")
    parser.add_argument("--ceiling-seconds", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--quick", action="store_true", help="a tenth of the notifications")
    # Internal: run as the receiver, the ceiling client or the live load generator.
    parser.add_argument("--receiver-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ceiling-url", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--live-url", help=argparse.SUPPRESS)
    parser.add_argument("--service-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.notifications //= 10
        args.live_seconds /= 2
        args.ceiling_seconds /= 3
    return args


def print_table(result: dict[str, Any]) -> None:
    """The figures that matter, as a Markdown table."""
    drain, live, ceiling = result["drain"], result["live"], result["ceiling"]
    receipts, pg = result["receiver"], result["postgres"]
    window = drain["window"]
    cpu, per = window["cpu_seconds"], window["cpu_ms_per_notification"]
    api = live["api"]
    rows = [
        ("notifications delivered (backlog)", f"{drain['notifications']}"),
        ("delivered/s, first request to last delivered_at", f"{drain['notifications_per_second']}"),
        (
            "delivered per whole second (median / min)",
            f"{drain['per_whole_second_median']} / {drain['per_whole_second_min']}",
        ),
        (
            f"ceiling: receiver alone, httpx loop, {ceiling['concurrency']} in flight (req/s)",
            f"{ceiling['requests_per_second']}",
        ),
        (
            "ceiling CPU ms per request: httpx client / receiver",
            f"{ceiling['cpu_ms_per_request']['client']} / "
            f"{ceiling['cpu_ms_per_request']['receiver']}",
        ),
        ("ratio dispatcher / ceiling", f"{result['ratio_to_ceiling']:.3f}"),
        (
            "live: incidents via API, offered / created per s",
            f"{live['offered_rate']} / {api['incidents_per_second']} ({api['created']} created)",
        ),
        (
            "live: created_at -> delivered_at p50 / p99 / max",
            f"{live['created_to_delivered_seconds_p50'] * 1000:.0f} / "
            f"{live['created_to_delivered_seconds_p99'] * 1000:.0f} / "
            f"{live['created_to_delivered_seconds_max'] * 1000:.0f} ms",
        ),
        (
            "duplicates by idempotency key / rows never received",
            f"{receipts['duplicates']} / {receipts['rows_never_received']}",
        ),
        (
            "PostgreSQL write transactions / WAL bytes per notification",
            f"{window['postgres_write_transactions_per_notification']} / "
            f"{window['wal_bytes_per_notification']}",
        ),
        (
            "CPU ms per notification: server / postgres / receiver",
            f"{per['server']} / {per['postgres']} / {per['receiver']}",
        ),
        (
            "CPU s in drain window: server / postgres / receiver / other / irq+steal",
            f"{cpu['server']} / {cpu['postgres']} / {cpu['receiver']} / "
            f"{cpu['other_processes']} / {cpu['interrupts_and_steal']} "
            f"({cpu['machine_busy']} busy of {cpu['machine_available']})",
        ),
        postgres_row(pg),
    ]
    print_figures(rows)
    warn_if_busy_elsewhere(cpu, "the drain")


def main() -> None:
    """Run the benchmark, print the table, write the JSON result."""
    args = parse_args()
    if args.receiver_port:
        run_receiver(args.receiver_port)
        return
    if args.ceiling_url:
        run_ceiling_client(args)
        return
    if args.live_url:
        run_live_load(args)
        return

    postgres = PostgresServer(durable=True)
    with tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp:
        receiver = start_receiver(Path(tmp) / "receiver.log")
        try:
            postgres.start()
            postgres.create_database("bench")
            settings = postgres_settings(postgres, "bench")
            database_url = postgres.url("bench")
            upgrade_to_head(Settings(database_url=database_url))
            backlog = asyncio.run(
                write_backlog(database_url, receiver.url + HOOK_PATH, args.notifications)
            )
            with serving(Path(tmp), **serve_settings(database_url, args.workers)) as served:
                drain = measure_drain(args, postgres, served, receiver)
                live = measure_live(args, postgres, served, backlog["service_id"])
            receipts = check_receipts(postgres, receiver)
            ceiling = measure_ceiling(
                receiver, args.workers, args.notifications, args.ceiling_seconds
            )
        finally:
            receiver.stop()
            postgres.stop()
            postgres.remove()

    defaults = Settings.model_fields
    result = {
        "benchmark": "notify_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "postgres": settings,
        "quick": args.quick,
        "notifications": args.notifications,
        "workers": args.workers,
        "dispatcher_settings": {
            name: defaults[name].default
            for name in ("notify_batch_size", "notify_poll_seconds", "db_pool_size")
        },
        "backlog": {k: v for k, v in backlog.items() if not k.endswith("_id")},
        "drain": drain,
        "live": live,
        "receiver": receipts,
        "ceiling": ceiling,
        "ratio_to_ceiling": round(
            drain["notifications_per_second"] / ceiling["requests_per_second"], 4
        ),
    }
    out = write_result(result, "notify-throughput")
    print_table(result)
    if receipts["duplicates"] or receipts["rows_never_received"]:
        print("\nerror: the receiver saw duplicates or missed rows", file=sys.stderr)
        sys.exit(1)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
