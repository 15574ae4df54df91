"""Benchmark: live-stream fan-out latency, many WebSocket clients and a steady event rate.

    python -m bench.live_fanout [--clients 500] [--rate 100] [--seconds 20] [--workers 1]
                                [--client-processes 2] [--quick]

It starts a throwaway PostgreSQL with durable settings and a real `reliability-studio
serve`, opens `--clients` WebSocket connections to `/api/ws` (subscribed to everything),
spread over `--client-processes` load-generator processes, and has one more process post
`--rate` timeline notes a second to one incident for `--seconds`. Each note's title holds
its sequence number; every client notes when each note reaches it. The latency of a
note for a client is its arrival minus the moment the POST was sent (CLOCK_MONOTONIC is
one clock for every process of the machine), so it includes the POST itself: the commit,
the NOTIFY, the fan-out and the client's own scheduling.

The ceiling, measured in the same run: the same clients and rate against a bare ASGI app
on the same server stack (uvicorn, one worker) that queues each POSTed message and sends
what is queued to every socket every 50 ms, as our stream paces frames, with no database
(`bench/live_bare.py`). What the full server adds over it is the cost of being a system of
record (the commit) and of crossing processes (LISTEN/NOTIFY), filtering and buffering.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.support.postgres import PostgresServer, free_port
from websockets.asyncio.client import connect

from bench.alert_ingest import MachineCPU, postgres_settings, start_server, stop_server
from bench.machine import machine
from bench.report import write_result

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
TITLE_PREFIX = "fanout "
# After the last note, how long clients wait for stragglers before they count them lost.
DRAIN_SECONDS = 5.0


# --- load-generator processes ------------------------------------------------------------


async def run_clients(ws_url: str, count: int, folder: Path, name: str) -> dict[str, Any]:
    """Open `count` sockets, announce readiness (`ready-<name>` in `folder`), then record
    arrival times until SIGTERM."""
    arrivals: list[list[tuple[int, float]]] = [[] for _ in range(count)]
    connections = []
    for _ in range(count):  # one at a time: a burst of handshakes is not what we measure
        connections.append(await connect(ws_url, compression=None, max_queue=None))
    for connection in connections:
        await connection.recv()  # the `subscribed` confirmation
    (folder / f"ready-{name}").write_text("ready")

    async def listen(index: int, connection: Any) -> None:
        mine = arrivals[index]
        async for message in connection:
            now = time.monotonic()
            for event in orjson.loads(message):
                data = event.get("data")
                title = data.get("title", "") if isinstance(data, dict) else ""
                if title.startswith(TITLE_PREFIX):
                    mine.append((int(title[len(TITLE_PREFIX) :]), now))

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.create_task(listen(i, c)) for i, c in enumerate(connections)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    closed = sum(1 for c in connections if c.close_code is not None)
    for connection in connections:
        await connection.close()
    return {"arrivals": arrivals, "closed_early": closed}


async def run_producer(
    url: str, path: str, rate: float, seconds: float, body_key: str
) -> dict[str, Any]:
    """POST `rate` notes a second for `seconds`; the send time of each."""
    sent: dict[int, float] = {}
    post_latency: list[float] = []
    failures = 0
    interval = 1.0 / rate
    total = int(rate * seconds)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def post(seq: int) -> None:
            nonlocal failures
            started = time.monotonic()
            sent[seq] = started
            body = {"type": "note", "title": f"{TITLE_PREFIX}{seq}"}
            response = await client.post(path, json=body if body_key == "" else {body_key: body})
            post_latency.append(time.monotonic() - started)
            if response.status_code >= 300:
                failures += 1

        start = time.monotonic()
        tasks = []
        for seq in range(total):
            delay = start + seq * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(seq)))
        await asyncio.gather(*tasks)
    return {"sent": sent, "post_latency": post_latency, "failures": failures}


def load_main(args: argparse.Namespace) -> None:
    """Entry point of a load-generator process: writes its figures as JSON to `--out`."""
    if args.role == "clients":
        result = asyncio.run(run_clients(args.ws_url, args.clients, Path(args.folder), args.name))
    else:
        result = asyncio.run(
            run_producer(args.url, args.path, args.rate, args.seconds, args.body_key)
        )
    Path(args.out).write_bytes(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS))


# --- orchestration -----------------------------------------------------------------------


def run_round(
    args: argparse.Namespace, base_url: str, ws_path: str, post_path: str, body_key: str
) -> dict[str, Any]:
    """One measured round: clients connect, the producer posts, latencies are gathered."""
    ws_url = base_url.replace("http://", "ws://") + ws_path
    with tempfile.TemporaryDirectory(prefix="rs-fanout-") as tmp:
        folder = Path(tmp)
        per_process = [
            args.clients // args.client_processes + (i < args.clients % args.client_processes)
            for i in range(args.client_processes)
        ]
        clients = []
        for index, count in enumerate(per_process):
            clients.append(
                subprocess.Popen(  # noqa: S603 - our own fixed command line
                    [
                        *(str(PYTHON), "-m", "bench.live_fanout", "--role", "clients"),
                        *("--ws-url", ws_url, "--clients", str(count)),
                        *("--folder", str(folder), "--name", str(index)),
                        *("--out", str(folder / f"clients-{index}.json")),
                    ],
                    cwd=ROOT,
                    start_new_session=True,
                )
            )
        try:
            measured = _measure(args, folder, clients, base_url, post_path, body_key)
        finally:
            for client in clients:
                if client.poll() is None:
                    client.kill()
                    client.wait()
    return measured


def _measure(
    args: argparse.Namespace,
    folder: Path,
    clients: list[subprocess.Popen[bytes]],
    base_url: str,
    post_path: str,
    body_key: str,
) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while not all((folder / f"ready-{i}").exists() for i in range(len(clients))):
        if time.monotonic() > deadline or any(c.poll() is not None for c in clients):
            raise RuntimeError("the WebSocket clients did not all connect")
        time.sleep(0.1)
    machine_before = MachineCPU.now()
    subprocess.run(  # noqa: S603 - our own fixed command line
        [
            *(str(PYTHON), "-m", "bench.live_fanout", "--role", "producer"),
            *("--url", base_url, "--path", post_path, "--body-key", body_key),
            *("--rate", str(args.rate), "--seconds", str(args.seconds)),
            *("--out", str(folder / "producer.json")),
        ],
        cwd=ROOT,
        check=True,
    )
    time.sleep(DRAIN_SECONDS)
    machine_cpu = MachineCPU.now() - machine_before
    for client in clients:
        client.send_signal(signal.SIGTERM)
    for client in clients:
        client.wait(timeout=60)
    sent_figures = orjson.loads((folder / "producer.json").read_bytes())
    received = [
        orjson.loads((folder / f"clients-{i}.json").read_bytes()) for i in range(len(clients))
    ]
    return figures(sent_figures, received, args.clients, machine_cpu)


def figures(
    producer: dict[str, Any], clients: list[dict[str, Any]], client_count: int, cpu: MachineCPU
) -> dict[str, Any]:
    """Latency percentiles, deliveries and losses of one round."""
    sent = {int(seq): at for seq, at in producer["sent"].items()}
    latencies: list[float] = []
    delivered = 0
    for process in clients:
        for arrivals in process["arrivals"]:
            seen = set()
            for seq, at in arrivals:
                if seq in sent and seq not in seen:
                    seen.add(seq)
                    latencies.append(at - sent[seq])
            delivered += len(seen)
    expected = len(sent) * client_count
    latencies.sort()
    posts = sorted(producer["post_latency"])
    return {
        "events_sent": len(sent),
        "deliveries_expected": expected,
        "deliveries": delivered,
        "delivered_share": round(delivered / expected, 5) if expected else None,
        "clients_closed_early": sum(p["closed_early"] for p in clients),
        "post_failures": producer["failures"],
        "latency_ms": {
            "p50": ms(percentile(latencies, 0.50)),
            "p99": ms(percentile(latencies, 0.99)),
            "max": ms(latencies[-1]) if latencies else None,
            "mean": ms(statistics.fmean(latencies)) if latencies else None,
        },
        "post_latency_ms": {
            "p50": ms(percentile(posts, 0.50)),
            "p99": ms(percentile(posts, 0.99)),
        },
        "machine_cpu_seconds": {
            "busy": round(cpu.processes + cpu.interrupts, 1),
            "available": round(cpu.total, 1),
        },
    }


def percentile(ordered: list[float], share: float) -> float | None:
    """The `share` percentile of sorted values (nearest rank)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds, rounded to 0.1."""
    return None if seconds is None else round(seconds * 1000, 1)


def measure_ours(args: argparse.Namespace, postgres: PostgresServer, log: Path) -> dict[str, Any]:
    """The round against the real server: notes on one incident's timeline."""
    server = start_server(postgres.url("bench"), args.workers, log)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            incident = client.post(
                "/api/incidents", json={"title": "Fan-out benchmark", "severity": "low"}
            )
            incident.raise_for_status()
            incident_id = incident.json()["id"]
        return run_round(args, server.url, "/api/ws", f"/api/incidents/{incident_id}/timeline", "")
    finally:
        stop_server(server)


def measure_bare(args: argparse.Namespace, log: Path) -> dict[str, Any]:
    """The round against the bare ASGI broadcaster on the same server stack."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own fixed command line
            [
                *(str(ROOT / ".venv" / "bin" / "uvicorn"), "bench.live_bare:app"),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
                *("--log-level", "warning", "--no-access-log"),
            ],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bare server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        return run_round(args, url, "/ws", "/publish", "")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="100 clients, 5 s")
    # Load-generator processes (internal).
    parser.add_argument("--role", choices=("clients", "producer"))
    parser.add_argument("--ws-url")
    parser.add_argument("--url")
    parser.add_argument("--path")
    parser.add_argument("--body-key", default="")
    parser.add_argument("--folder")
    parser.add_argument("--name")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick and args.role is None:
        args.clients, args.seconds = 100, 5.0
    return args


def print_table(result: dict[str, Any]) -> None:
    """The Markdown summary."""
    ours, bare = result["ours"], result["bare_asgi"]
    print(
        f"\n### Live fan-out: {result['clients']} WebSocket clients, "
        f"{result['rate']:.0f} events/s for {result['seconds']:.0f} s\n"
    )
    print("| | p50 ms | p99 ms | max ms | delivered | POST p50 ms |")
    print("|---|---|---|---|---|---|")
    for name, row in (("Reliability Studio", ours), ("bare ASGI broadcast", bare)):
        lat = row["latency_ms"]
        print(
            f"| {name} | {lat['p50']} | {lat['p99']} | {lat['max']} | "
            f"{row['delivered_share']} | {row['post_latency_ms']['p50']} |"
        )
    print(f"\np99 ratio to the bare ASGI broadcaster: {result['p99_ratio_to_bare']}")


def main() -> None:
    """Run both rounds, print the table, write the JSON result."""
    args = parse_args()
    if args.role is not None:
        load_main(args)
        return
    postgres = PostgresServer(durable=True)
    try:
        postgres.start()
        postgres.create_database("bench")
        settings = postgres_settings(postgres, "bench")
        with tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp:
            ours = measure_ours(args, postgres, Path(tmp) / "serve.log")
            bare = measure_bare(args, Path(tmp) / "bare.log")
    finally:
        postgres.stop()
        postgres.remove()
    p99, bare_p99 = ours["latency_ms"]["p99"], bare["latency_ms"]["p99"]
    result = {
        "benchmark": "live_fanout",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "postgres": settings,
        "quick": args.quick,
        "clients": args.clients,
        "rate": args.rate,
        "seconds": args.seconds,
        "workers": args.workers,
        "ours": ours,
        "bare_asgi": bare,
        "p99_ratio_to_bare": round(p99 / bare_p99, 2) if p99 and bare_p99 else None,
    }
    out = write_result(result, "live-fanout")
    print_table(result)
    print(f"\nwritten to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
