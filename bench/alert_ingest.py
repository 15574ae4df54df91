"""Benchmark: Alertmanager webhook ingestion and correlation, against a real server.

    python -m bench.alert_ingest [--services 200] [--alerts 100000] [--batch 50]
                                 [--connections 8] [--workers 2] [--quick]

It starts a throwaway PostgreSQL with durable settings (fsync, synchronous_commit and
full_page_writes on, as in production), migrates it, and starts a real
`reliability-studio serve` with `--workers` processes. It creates the services through the
API, then a separate load-generator process (this module with `--load-url`: an asyncio
httpx client, `--connections` concurrent connections) posts Alertmanager v4 webhook
messages of `--batch` alerts as fast as the server accepts them. It measures:

- `ingest`: alerts answered with a 2xx per second, from the first request sent to the last
  answer (and per whole second, and the latency of each request);
- `correlation`: the time from the last 2xx until no alert waits for the correlator
  (`GET /api/alerts?correlated=false&limit=1` is empty), and the incidents then open
  against the expected number: the distinct (service, alertname) pairs accepted, as the
  default rule groups by those labels with threshold 1;
- for comparison, `pgbench` on the same server: the same number of connections inserting
  rows shaped like `alerts` (a copy of the table, its indexes included) in transactions of
  one multi-row INSERT of `--batch` rows. That is what PostgreSQL alone manages on this
  machine; the ratio says what share of it the whole server reaches.

Every alert has its own `instance` label, so every alert is new (`created`): the honest case
for deduplication, which finds nothing to merge. Each message mixes services and alert
names, the harder case for correlation. The CPU seconds of the server, PostgreSQL and the
load generator during ingestion say where the machine's time went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.postgres import PostgresServer, free_port

from bench.machine import machine
from bench.report import postgres_row, print_figures, warn_if_busy_elsewhere, write_result
from reliability_studio.alerts.fingerprint import label_fingerprint

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / ".venv" / "bin" / "reliability-studio"
TARGET_ALERTS_PER_SECOND = 2000.0
ALERT_NAMES = (
    "HighErrorRate",
    "HighLatency",
    "PodCrashLooping",
    "DiskFillingUp",
    "CertificateExpiringSoon",
)
SEVERITIES = {
    "HighErrorRate": "critical",
    "HighLatency": "warning",
    "PodCrashLooping": "critical",
    "DiskFillingUp": "warning",
    "CertificateExpiringSoon": "info",
}
ZERO_TIME = "0001-01-01T00:00:00Z"
GENERATOR_URL = "http://prometheus.example/graph?g0.expr=ALERTS%7Balertname%3D%22"
POLL_SECONDS = 0.1
PAGE_LIMIT = 500
FAILURE_SAMPLES = 5


# --- the workload ---------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What to send: the same seed and epoch give the same messages in every process."""

    services: int
    alerts: int
    batch: int
    seed: int
    epoch: float  # alerts start in the 10 minutes before this Unix time


@dataclass(frozen=True)
class Batch:
    """One webhook message, encoded, and the (service, alertname) pairs it carries."""

    body: bytes
    size: int
    pairs: frozenset[tuple[str, str]]


def service_name(number: int) -> str:
    """The catalog name of service `number`: svc-000, svc-001, ..."""
    return f"svc-{number:03d}"


def rfc3339(moment: datetime) -> str:
    """A UTC time as Alertmanager writes it, with milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_alert(index: int, rng: random.Random, workload: Workload) -> dict[str, Any]:
    """Alert `index`: a random service and alert name, its own instance, started lately."""
    service = service_name(rng.randrange(workload.services))
    alertname = rng.choice(ALERT_NAMES)
    instance = f"node-{index:07d}"
    labels = {
        "alertname": alertname,
        "service": service,
        "instance": instance,
        "severity": SEVERITIES[alertname],
        "job": "node",
    }
    started = datetime.fromtimestamp(workload.epoch - rng.uniform(0, 600), UTC)
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {
            "summary": f"{alertname} on {service}",
            "description": f"{alertname} has been firing on {instance} for 5 minutes.",
            "runbook_url": f"https://runbooks.example/{alertname}",
        },
        "startsAt": rfc3339(started),
        "endsAt": ZERO_TIME,
        "generatorURL": f"{GENERATOR_URL}{alertname}%22%7D",
        "fingerprint": label_fingerprint(labels),
    }


def webhook(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """An Alertmanager webhook message (version 4) carrying `alerts`."""
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "reliability-studio",
        "groupLabels": {},
        "commonLabels": {"job": "node"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    }


def make_batches(workload: Workload) -> list[Batch]:
    """Every message of the workload, in sending order."""
    rng = random.Random(workload.seed)  # noqa: S311 - a reproducible workload, not a secret
    batches = []
    for first in range(0, workload.alerts, workload.batch):
        last = min(first + workload.batch, workload.alerts)
        alerts = [make_alert(index, rng, workload) for index in range(first, last)]
        pairs = frozenset((a["labels"]["service"], a["labels"]["alertname"]) for a in alerts)
        body = json.dumps(webhook(alerts), separators=(",", ":")).encode()
        batches.append(Batch(body=body, size=len(alerts), pairs=pairs))
    return batches


# --- the load generator (runs in its own process) -------------------------------------


async def post_batches(
    url: str, batches: list[Batch], connections: int, deadline_seconds: float
) -> dict[str, Any]:
    """Post every batch over `connections` connections; one record per request sent."""
    records: list[dict[str, Any]] = []
    failures: list[str] = []
    queue: Iterator[int] = iter(range(len(batches)))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120.0) as client:
        stop_at = time.monotonic() + deadline_seconds

        async def post(index: int) -> dict[str, Any]:
            """Send batch `index`; status 0 when no HTTP answer came."""
            record: dict[str, Any] = {"index": index, "start": time.monotonic()}
            try:
                response = await client.post(
                    "/api/integrations/alertmanager", content=batches[index].body, headers=headers
                )
            except httpx.HTTPError as exc:
                record.update(status=0, end=time.monotonic(), text=repr(exc))
                return record
            record.update(status=response.status_code, end=time.monotonic())
            if response.is_success:
                body = response.json()
                record["summary"] = {k: v for k, v in body.items() if isinstance(v, int)}
            else:
                record["text"] = response.text[:300]
            return record

        async def sender() -> None:
            """Take the next batch until none is left or the deadline has passed."""
            for index in queue:
                if time.monotonic() > stop_at:
                    return
                record = await post(index)
                if "text" in record and len(failures) < FAILURE_SAMPLES:
                    failures.append(f"{record['status']}: {record.pop('text')}")
                record.pop("text", None)
                records.append(record)

        await asyncio.gather(*(sender() for _ in range(connections)))
    return {"records": records, "failures": failures}


def run_load_generator(args: argparse.Namespace) -> None:
    """The `--load-url` mode: build the messages, post them, print the records as JSON."""
    import resource

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    batches = make_batches(workload_of(args))
    before = cpu()
    result = asyncio.run(post_batches(args.load_url, batches, args.connections, args.load_timeout))
    result["cpu_seconds"] = cpu() - before  # while posting
    result["cpu_seconds_total"] = cpu()  # building the messages included
    json.dump(result, sys.stdout)


# --- processes and their CPU time ----------------------------------------------------


def _proc_stats() -> dict[int, tuple[int, float]]:
    """Every live process: (parent pid, CPU seconds of it and its reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # After the name: state, ppid, ..., utime (11), stime, cutime, cstime (14).
        ticks = sum(int(value) for value in fields[11:15])
        stats[int(entry.name)] = (int(fields[1]), ticks / tick)
    return stats


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds used so far by a process and its descendants, the reaped ones included."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(children.get(pid, []))
    return total


@dataclass(frozen=True)
class MachineCPU:
    """The whole machine's CPU seconds since boot, from the first line of /proc/stat."""

    processes: float  # user, nice and system: time some process is charged for
    interrupts: float  # irq, softirq (loopback networking, block I/O) and steal
    total: float  # everything, idle and iowait included

    @classmethod
    def now(cls) -> MachineCPU:
        """The counters as they are now."""
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        tick = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq, steal = values
        return cls(
            processes=(user + nice + system) / tick,
            interrupts=(irq + softirq + steal) / tick,
            total=sum(values) / tick,
        )

    def __sub__(self, earlier: MachineCPU) -> MachineCPU:
        return MachineCPU(
            processes=self.processes - earlier.processes,
            interrupts=self.interrupts - earlier.interrupts,
            total=self.total - earlier.total,
        )


def cpu_figures(
    server: float, postgres: float, load: dict[str, Any], machine: MachineCPU
) -> dict[str, float]:
    """Where the CPU time of the ingestion went, in seconds."""
    ours = server + postgres + load["cpu_seconds_total"]
    return {
        "server": round(server, 2),
        "postgres": round(postgres, 2),
        "load_generator": round(load["cpu_seconds"], 2),
        # Charged to no process of ours: other work on the machine skews the figures.
        "other_processes": round(machine.processes - ours, 2),
        "interrupts_and_steal": round(machine.interrupts, 2),
        "machine_busy": round(machine.processes + machine.interrupts, 2),
        "machine_available": round(machine.total, 2),
    }


def postmaster_pid(postgres: PostgresServer) -> int:
    """The pid of the PostgreSQL server (first line of postmaster.pid)."""
    return int((postgres.data / "postmaster.pid").read_text().splitlines()[0])


def psql(postgres: PostgresServer, database: str, sql: str) -> str:
    """Run `sql` with psql over TCP; its unaligned, tuples-only output."""
    result = subprocess.run(  # noqa: S603 - our own fixed command line
        [
            *(str(postgres.bin / "psql"), "-h", "127.0.0.1", "-p", str(postgres.port)),
            *("-U", "postgres", "-d", database, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
            *("-c", sql),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


def try_psql(postgres: PostgresServer, database: str, sql: str) -> str | None:
    """`psql`, or None (and a note on stderr) when the query fails."""
    try:
        return psql(postgres, database, sql)
    except RuntimeError as exc:
        print(f"note: {exc}", file=sys.stderr)
        return None


# --- the server --------------------------------------------------------------------


@dataclass
class Server:
    """A `reliability-studio serve` process and where it listens."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path


def server_env(database_url: str, port: int, workers: int) -> dict[str, str]:
    """The environment of `migrate` and `serve`: quiet, no SLO engine, no Prometheus, and no
    evidence gathering (the incidents' analyses would only wait on absent backends; analysis
    has its own benchmark)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "SLO_ENGINE_ENABLED": "false",
        "AUTH_MODE": "none",  # on loopback: the benchmark measures the work, not sign-in
        "ANALYSIS_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_URL": "http://127.0.0.1:1",
    }


def start_server(database_url: str, workers: int, log: Path) -> Server:
    """Migrate, start `serve`, and wait until `/health` answers 200."""
    port = free_port()
    env = server_env(database_url, port, workers)
    migrate = [str(SERVER), "migrate"]
    subprocess.run(migrate, env=env, check=True, capture_output=True)  # noqa: S603 - our own fixed command line
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own fixed command line
            [str(SERVER), "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, url=f"http://127.0.0.1:{port}", log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"serve did not become healthy in 60 s:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    """SIGTERM, then SIGKILL to its process group if it has not stopped within 40 s."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


def create_services(client: httpx.Client, count: int) -> None:
    """POST /api/services for svc-000 ... through the API."""
    for number in range(count):
        response = client.post("/api/services", json={"name": service_name(number)})
        if response.status_code != 201:
            raise RuntimeError(f"cannot create a service: {response.status_code} {response.text}")


def count_incidents(client: httpx.Client) -> int:
    """Every incident, counted page by page."""
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/api/incidents", params=params)
        response.raise_for_status()
        page = response.json()
        total += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return total


def wait_for_correlation(client: httpx.Client, timeout: float) -> tuple[float | None, Counter[int]]:
    """The monotonic time the correlator's queue was first seen empty (None: timed out)."""
    deadline = time.monotonic() + timeout
    errors: Counter[int] = Counter()
    while time.monotonic() < deadline:
        try:
            response = client.get("/api/alerts", params={"correlated": "false", "limit": 1})
        except httpx.HTTPError:
            errors[0] += 1
        else:
            if response.status_code == 200 and not response.json()["items"]:
                return time.monotonic(), errors
            if response.status_code != 200:
                errors[response.status_code] += 1
        time.sleep(POLL_SECONDS)
    return None, errors


# --- measuring ingestion -----------------------------------------------------------


def run_load(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Run the load generator as a child process; its records."""
    command = [
        sys.executable,
        "-m",
        "bench.alert_ingest",
        *("--load-url", url, "--epoch", str(args.epoch), "--seed", str(args.seed)),
        *("--services", str(args.services), "--alerts", str(args.alerts)),
        *("--batch", str(args.batch), "--connections", str(args.connections)),
        *("--load-timeout", str(args.load_timeout)),
    ]
    done = subprocess.run(  # noqa: S603 - our own fixed command line
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=args.load_timeout + 600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile of `values` (nearest rank); 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ingest_figures(load: dict[str, Any], batches: list[Batch], sent_total: int) -> dict[str, Any]:
    """Rates, latencies, statuses and summaries out of the load generator's records."""
    records = load["records"]
    accepted = [r for r in records if 200 <= r["status"] < 300]
    first = min(r["start"] for r in records)
    last = max(r["end"] for r in records)
    elapsed = last - first
    alerts_ok = sum(batches[r["index"]].size for r in accepted)
    per_second: Counter[int] = Counter()
    for r in accepted:
        per_second[int(r["end"] - first)] += batches[r["index"]].size
    whole = [per_second[s] for s in range(int(elapsed))]  # the last, partial second left out
    summary: Counter[str] = Counter()
    for r in accepted:
        summary.update({k: v for k, v in r["summary"].items() if isinstance(v, int)})
    latencies = [r["end"] - r["start"] for r in accepted]
    return {
        "alerts_planned": sent_total,
        "alerts_sent": sum(batches[r["index"]].size for r in records),
        "alerts_accepted": alerts_ok,
        "requests": len(records),
        "statuses": {str(k): v for k, v in sorted(Counter(r["status"] for r in records).items())},
        "failure_samples": load["failures"],
        "seconds": round(elapsed, 3),
        "alerts_per_second": round(alerts_ok / elapsed, 1) if elapsed else 0.0,
        "alerts_per_whole_second_median": statistics.median(whole) if whole else None,
        "alerts_per_whole_second_min": min(whole) if whole else None,
        "alerts_per_whole_second": whole,
        "request_seconds_p50": round(percentile(latencies, 0.50), 4),
        "request_seconds_p99": round(percentile(latencies, 0.99), 4),
        "ingest_summary": dict(summary),
        "last_accepted_at": max((r["end"] for r in accepted), default=last),
        "first_sent_at": first,
    }


def expected_incidents(load: dict[str, Any], batches: list[Batch]) -> int:
    """Distinct (service, alertname) pairs among the alerts answered with a 2xx."""
    pairs: set[tuple[str, str]] = set()
    for record in load["records"]:
        if 200 <= record["status"] < 300:
            pairs |= batches[record["index"]].pairs
    return len(pairs)


# --- pgbench -----------------------------------------------------------------------


def pgbench_script(batch: int, services: int) -> str:
    """One multi-row INSERT of `batch` rows shaped like the alerts that were sent."""
    rng = random.Random(7)  # noqa: S311 - a reproducible workload, not a secret
    organization = "00000000-0000-4000-8000-000000000001"
    rows = []
    for number in range(batch):
        service = service_name(rng.randrange(services))
        alertname = rng.choice(ALERT_NAMES)
        labels = {
            "alertname": alertname,
            "service": service,
            "instance": f"node-{number:07d}",
            "severity": SEVERITIES[alertname],
            "job": "node",
        }
        annotations = {
            "summary": f"{alertname} on {service}",
            "description": f"{alertname} has been firing on node-{number:07d} for 5 minutes.",
            # No ':' before a letter or digit (no port): pgbench reads ':name' as a variable.
            "runbook_url": f"https://runbooks.example/{alertname}",
        }
        rows.append(
            "(gen_random_uuid(), '{org}', now(), now(),"
            " substr(md5(gen_random_uuid()::text), 1, 16),"
            # dedup_key is "<organization hex>:<fingerprint>"; chr(58) is ':' (see below).
            " '{org_hex}' || chr(58) || substr(md5(gen_random_uuid()::text), 1, 16),"
            " 'alertmanager', 'firing', '{title}', '{severity}', '{labels}', '{annotations}',"
            " '{url}', now() - interval '{ago} seconds', NULL, now(),"
            " now(), 1, true, '{service}', NULL, 'firing', true)".format(
                org=organization,
                org_hex=organization.replace("-", ""),
                title=alertname,
                severity=SEVERITIES[alertname],
                labels=json.dumps(labels),
                annotations=json.dumps(annotations),
                url=f"{GENERATOR_URL}{alertname}%22%7D",
                ago=rng.randrange(600),
                service=service,
            )
        )
    script = (
        "INSERT INTO bench_alerts (id, organization_id, created_at, updated_at, fingerprint,"
        " dedup_key, integration, status, title, severity, labels, annotations, generator_url,"
        " starts_at,"
        " ends_at, first_seen_at, last_seen_at, receive_count, is_latest, service_name,"
        " service_id, correlated_status, needs_correlation) VALUES\n" + ",\n".join(rows) + ";\n"
    )
    if re.search(r":[A-Za-z0-9_]", script.replace("::text", "")):
        raise ValueError("the pgbench script holds a ':name' that pgbench would substitute")
    return script


def run_pgbench(
    postgres: PostgresServer, database: str, args: argparse.Namespace
) -> dict[str, Any]:
    """pgbench: `--connections` clients inserting `--batch` rows per transaction."""
    # The same columns, defaults, checks and indexes as `alerts`, without foreign keys.
    psql(postgres, database, "CREATE TABLE bench_alerts (LIKE alerts INCLUDING ALL)")
    script = postgres.root / "insert-alerts.sql"
    script.write_text(pgbench_script(args.batch, args.services))
    done = subprocess.run(  # noqa: S603 - our own fixed command line
        [
            *(str(postgres.bin / "pgbench"), "-h", "127.0.0.1", "-p", str(postgres.port)),
            *("-U", "postgres", "-n", "-M", "prepared", "-c", str(args.connections)),
            *("-j", str(min(args.connections, os.cpu_count() or 1))),
            *("-T", str(args.pgbench_seconds), "-f", str(script), database),
        ],
        capture_output=True,
        text=True,
        timeout=args.pgbench_seconds + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{done.stdout}\n{done.stderr}")
    tps = float(re.findall(r"tps = ([0-9.]+)", done.stdout)[-1])
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    return {
        "transactions_per_second": round(tps, 1),
        "rows_per_second": round(tps * args.batch, 1),
        "failed_transactions": int(failed.group(1)) if failed else 0,
        "seconds": args.pgbench_seconds,
        "clients": args.connections,
        "mode": "prepared",
        "rows_in_table": int(psql(postgres, database, "SELECT count(*) FROM bench_alerts")),
    }


# --- the whole run -----------------------------------------------------------------


def postgres_settings(postgres: PostgresServer, database: str) -> dict[str, str]:
    """The server's version and durability settings, as it reports them."""
    names = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level")
    return {name: psql(postgres, database, f"SHOW {name}") for name in names}


def measure_server(
    args: argparse.Namespace, postgres: PostgresServer, database: str, log: Path
) -> dict[str, Any]:
    """Start the server, load it, wait for the correlator, count incidents, stop it."""
    server = start_server(postgres.url(database), args.workers, log)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            create_services(client, args.services)
            incidents_before = count_incidents(client)
            batches = make_batches(workload_of(args))
            pg_pid = postmaster_pid(postgres)
            cpu_before = (tree_cpu_seconds(server.process.pid), tree_cpu_seconds(pg_pid))
            machine_before = MachineCPU.now()
            load = run_load(args, server.url)
            cpu_after = (tree_cpu_seconds(server.process.pid), tree_cpu_seconds(pg_pid))
            machine_cpu = MachineCPU.now() - machine_before
            backlog = try_psql(
                postgres, database, "SELECT count(*) FROM alerts WHERE needs_correlation"
            )
            ingest = ingest_figures(load, batches, args.alerts)
            done_at, poll_errors = wait_for_correlation(client, args.correlation_timeout)
            incidents = count_incidents(client) - incidents_before
    finally:
        stop_server(server)
    unlinked = try_psql(postgres, database, "SELECT count(*) FROM alerts WHERE incident_id IS NULL")
    in_db = try_psql(postgres, database, "SELECT count(*) FROM alerts")
    lag = None if done_at is None else max(0.0, done_at - ingest["last_accepted_at"])
    end_to_end = None if done_at is None else done_at - ingest["first_sent_at"]
    return {
        "ingest": {k: v for k, v in ingest.items() if not k.endswith("_at")},
        "correlation": {
            "backlog_when_ingest_ended": int(backlog) if backlog is not None else None,
            "lag_after_last_accepted_seconds": None if lag is None else round(lag, 2),
            "first_sent_to_all_correlated_seconds": (
                None if end_to_end is None else round(end_to_end, 2)
            ),
            "alerts_per_second_end_to_end": (
                None if not end_to_end else round(ingest["alerts_accepted"] / end_to_end, 1)
            ),
            "poll_errors": dict(poll_errors),
            "finished": done_at is not None,
            "poll_interval_seconds": POLL_SECONDS,
        },
        "incidents": {
            "opened": incidents,
            "expected": expected_incidents(load, batches),
            "alerts_in_database": int(in_db) if in_db is not None else None,
            "alerts_without_incident": int(unlinked) if unlinked is not None else None,
        },
        "cpu_seconds_during_ingest": cpu_figures(
            cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1], load, machine_cpu
        ),
    }


def workload_of(args: argparse.Namespace) -> Workload:
    """The workload the arguments describe."""
    return Workload(args.services, args.alerts, args.batch, args.seed, args.epoch)


def parse_args() -> argparse.Namespace:
    """The command line; `--quick` sends a tenth of the alerts."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a tenth of the alerts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--load-timeout", type=float, default=1800.0)
    parser.add_argument("--correlation-timeout", type=float, default=1800.0)
    # Internal: run as the load generator against this server.
    parser.add_argument("--load-url", help=argparse.SUPPRESS)
    parser.add_argument("--epoch", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.alerts //= 10
    if args.epoch is None:
        args.epoch = float(int(time.time()))
    return args


def print_table(result: dict[str, Any]) -> None:
    """The figures that matter, as a Markdown table."""
    ingest, corr = result["ingest"], result["correlation"]
    incidents, bench = result["incidents"], result["pgbench"]
    cpu = result["cpu_seconds_during_ingest"]
    pg = result["postgres"]
    non_2xx = {k: v for k, v in ingest["statuses"].items() if not k.startswith("2")}
    rows = [
        ("alerts accepted / sent", f"{ingest['alerts_accepted']} / {ingest['alerts_sent']}"),
        ("non-2xx answers", json.dumps(non_2xx) if non_2xx else "none"),
        ("ingest, accepted alerts/s", f"{ingest['alerts_per_second']:.0f}"),
        (
            "ingest, per whole second (median / min)",
            f"{ingest['alerts_per_whole_second_median']} / {ingest['alerts_per_whole_second_min']}",
        ),
        (
            "request latency p50 / p99",
            f"{ingest['request_seconds_p50'] * 1000:.0f} / "
            f"{ingest['request_seconds_p99'] * 1000:.0f} ms",
        ),
        ("target", f">= {TARGET_ALERTS_PER_SECOND:.0f} alerts/s"),
        ("correlation backlog when ingest ended", f"{corr['backlog_when_ingest_ended']}"),
        ("correlation lag after last 2xx", f"{corr['lag_after_last_accepted_seconds']} s"),
        ("first request to all correlated", f"{corr['first_sent_to_all_correlated_seconds']} s"),
        ("incidents opened / expected", f"{incidents['opened']} / {incidents['expected']}"),
        ("alerts without incident", f"{incidents['alerts_without_incident']}"),
        (
            f"pgbench rows/s ({bench['clients']} clients, {result['batch']} rows/tx)",
            f"{bench['rows_per_second']:.0f}",
        ),
        ("ratio ours / pgbench", f"{result['ratio_to_pgbench']:.3f}"),
        (
            "CPU s during ingest: server / postgres / loadgen / other / irq+steal",
            f"{cpu['server']} / {cpu['postgres']} / {cpu['load_generator']} / "
            f"{cpu['other_processes']} / {cpu['interrupts_and_steal']} "
            f"({cpu['machine_busy']} busy of {cpu['machine_available']})",
        ),
        postgres_row(pg),
    ]
    print_figures(rows)
    warn_if_busy_elsewhere(cpu, "ingestion")


def main() -> None:
    """Run the benchmark, print the table, write the JSON result."""
    args = parse_args()
    if args.load_url:
        run_load_generator(args)
        return
    postgres = PostgresServer(durable=True)
    try:
        postgres.start()
        postgres.create_database("bench")
        settings = postgres_settings(postgres, "bench")
        with tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp:
            log = Path(tmp) / "serve.log"
            try:
                figures = measure_server(args, postgres, "bench", log)
            finally:
                server_log = log.read_text() if log.exists() else ""
            if server_log.strip():
                print(f"server log (tail):\n{server_log[-3000:]}", file=sys.stderr)
        bench = run_pgbench(postgres, "bench", args)
    finally:
        postgres.stop()
        postgres.remove()

    ours = figures["ingest"]["alerts_per_second"]
    result = {
        "benchmark": "alert_ingest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "postgres": settings,
        "quick": args.quick,
        "services": args.services,
        "alerts": args.alerts,
        "batch": args.batch,
        "connections": args.connections,
        "workers": args.workers,
        **figures,
        "pgbench": bench,
        "ratio_to_pgbench": round(ours / bench["rows_per_second"], 4),
        "target_alerts_per_second": TARGET_ALERTS_PER_SECOND,
    }
    out = write_result(result, "alert-ingest")
    print_table(result)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
