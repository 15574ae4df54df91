"""Benchmark: Drain template mining throughput, with the miner the log analysis uses.

    python -m bench.drain_throughput [--lines 1000000] [--seed 7]

It generates `--lines` synthetic error lines from 40 templates written like real services'
logs (database drivers, HTTP clients, queues, Kubernetes, logfmt and JSON lines), each with
variable parts: request and trace ids, UUIDs, IP addresses and ports, durations, counts, user
names, file paths. The templates are drawn with skewed weights (a few are common, most rare),
as in real error logs. It then feeds every line through `LogTemplates` (the same Drain settings
and masks as `reliability_studio.analysis.logs`), timing only the mining, and reports:

- `lines_per_second`: lines mined per second of wall time, in one thread;
- `clusters` against `templates_generated`, and how well they line up: a template `split`
  when its lines landed in several clusters, a cluster `mixed` when it holds lines of several
  templates (the lines of a template that are not in its largest cluster are `misplaced`).

The generation is not timed. The result goes to `bench/results/<date>-drain.json`.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from bench.machine import machine as shared_machine
from bench.report import write_result
from reliability_studio.analysis.logs import (
    DRAIN_DEPTH,
    DRAIN_MAX_CHILDREN,
    DRAIN_SIM_TH,
    LogTemplates,
)

USERS = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "oscar",
    "peggy",
    "trent",
    "victor",
    "walter",
]
SERVICES = ["checkout", "payments", "cart", "inventory", "shipping", "auth", "search", "users"]
TABLES = ["orders", "payments", "carts", "sessions", "users", "stock", "invoices"]
TOPICS = ["orders.created", "payments.captured", "cart.updated", "stock.reserved"]

Gen = Callable[[random.Random], str]


def ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def port(rng: random.Random) -> int:
    return rng.choice([5432, 6379, 9092, 8080, 443, 3306, 11211, rng.randrange(1024, 65535)])


def dur(rng: random.Random) -> str:
    return rng.choice(
        [f"{rng.randrange(1, 999)}ms", f"{rng.uniform(0.1, 30):.2f}s", f"{rng.randrange(1, 5)}m"]
    )


def hexid(rng: random.Random, digits: int = 32) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def user(rng: random.Random) -> str:
    return rng.choice(USERS) + rng.choice(["", str(rng.randrange(100))])


def word(rng: random.Random, length: int = 8) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=length))


def pod(rng: random.Random) -> str:
    return f"{rng.choice(SERVICES)}-{hexid(rng, 9)}-{word(rng, 5)}"


# Each template: a function of the random source giving one line. Index = template id.
TEMPLATES: list[Gen] = [
    lambda r: f"connection refused to {ip(r)}:{port(r)}",
    lambda r: f"dial tcp {ip(r)}:{port(r)}: i/o timeout after {dur(r)}",
    lambda r: f"upstream request {hexid(r, 16)} to {r.choice(SERVICES)} failed with status 503",
    lambda r: f"request {hexid(r)} timed out after {dur(r)} waiting for {r.choice(SERVICES)}",
    lambda r: f'FATAL: too many connections for role "{r.choice(USERS)}"',
    lambda r: (
        f"QueuePool limit of size {r.randrange(5, 50)} overflow {r.randrange(0, 20)} reached, "
        f"connection timed out, timeout {dur(r)}"
    ),
    lambda r: (
        f"HikariPool-1 - Connection is not available, request timed out after {dur(r)}. "
        f"(total={r.randrange(10, 50)}, active={r.randrange(10, 50)}, idle=0, "
        f"waiting={r.randrange(200)})"
    ),
    lambda r: (
        f"timeout acquiring connection from pool after {dur(r)} (pool size {r.randrange(5, 50)})"
    ),
    lambda r: f"java.lang.OutOfMemoryError: Java heap space in thread worker-{r.randrange(64)}",
    lambda r: f"container {pod(r)} was OOMKilled (limit {r.randrange(256, 4096)}Mi)",
    lambda r: (
        f"failed to load config /etc/{r.choice(SERVICES)}/config.yaml: "
        f"invalid value for key {word(r)}"
    ),
    lambda r: f"open /var/lib/{r.choice(SERVICES)}/{word(r)}.db: no such file or directory",
    lambda r: f"missing key {word(r).upper()}_URL in environment of {pod(r)}",
    lambda r: f"payment {uid(r)} declined by provider: insufficient funds for user {user(r)}",
    lambda r: f"order {uid(r)} could not be reserved: item {r.randrange(10**6)} out of stock",
    lambda r: (
        f"user {user(r)} failed login from {ip(r)}: invalid password (attempt {r.randrange(1, 10)})"
    ),
    lambda r: f"token for user {user(r)} expired at {datetime.now(UTC).isoformat()}",
    lambda r: (
        f"permission denied: user {user(r)} may not "
        f"{r.choice(['read', 'write', 'delete'])} {r.choice(TABLES)}"
    ),
    lambda r: (
        f'ERROR: duplicate key value violates unique constraint "{r.choice(TABLES)}_pkey" '
        f"(id)=({r.randrange(10**7)})"
    ),
    lambda r: (
        f"ERROR: deadlock detected while updating {r.choice(TABLES)} row {r.randrange(10**7)}"
    ),
    lambda r: f"ERROR: canceling statement due to statement timeout after {dur(r)}",
    lambda r: f"could not serialize access due to concurrent update on {r.choice(TABLES)}",
    lambda r: (
        f"kafka: produce to topic {r.choice(TOPICS)} partition {r.randrange(32)} "
        "failed: leader not available"
    ),
    lambda r: (
        f"consumer group {r.choice(SERVICES)}-workers lag {r.randrange(10**5)} "
        f"messages on {r.choice(TOPICS)}"
    ),
    lambda r: f"redis: MOVED {r.randrange(16384)} {ip(r)}:{port(r)}",
    lambda r: f"cache miss storm: {r.randrange(1000)} misses in {dur(r)} for prefix {word(r)}",
    lambda r: f"TLS handshake with {ip(r)}:{port(r)} failed: x509: certificate has expired",
    lambda r: (
        f"circuit breaker {r.choice(SERVICES)} opened after {r.randrange(5, 100)} "
        "consecutive failures"
    ),
    lambda r: (
        f"retrying call to {r.choice(SERVICES)} in {dur(r)} (attempt {r.randrange(1, 6)} of 5)"
    ),
    lambda r: (
        f"rate limit exceeded for api key {hexid(r, 24)}: {r.randrange(100, 1000)} requests in 1m"
    ),
    lambda r: (
        f"level=error ts={datetime.now(UTC).isoformat()} caller=handler.go:{r.randrange(50, 400)} "
        f'msg="failed to render cart" cart_id={uid(r)} err="context deadline exceeded"'
    ),
    lambda r: (
        f'level=error msg="webhook delivery failed" endpoint=https://hooks.example/{word(r)} '
        f"status={r.choice([500, 502, 504])} duration={dur(r)}"
    ),
    lambda r: json.dumps(
        {
            "level": "error",
            "msg": "inventory sync failed",
            "sku": f"SKU-{r.randrange(10**6)}",
            "trace_id": hexid(r),
            "took": dur(r),
        }
    ),
    lambda r: json.dumps(
        {
            "level": "error",
            "msg": "shipping quote unavailable",
            "carrier": r.choice(["ups", "dhl", "fedex"]),
            "request_id": uid(r),
        }
    ),
    lambda r: (
        f"panic: runtime error: index out of range [{r.randrange(100)}] "
        f"with length {r.randrange(100)}"
    ),
    lambda r: f"goroutine {r.randrange(10**5)} [running]: main.(*Server).handle(0x{hexid(r, 10)})",
    lambda r: f"Traceback: KeyError: '{word(r)}' in handler process_event (event {uid(r)})",
    lambda r: f"disk usage on {pod(r)} at {r.randrange(90, 100)}% of volume data-{r.randrange(8)}",
    lambda r: f"liveness probe failed for {pod(r)}: HTTP probe failed with statuscode: 500",
    lambda r: f"email to {user(r)}@example.com bounced: mailbox unavailable",
]


def generate(lines: int, seed: int) -> tuple[list[str], list[int]]:
    """`lines` lines and the template each came from, drawn with Zipf-like weights."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    weights = [1.0 / (rank + 1) for rank in range(len(TEMPLATES))]
    rng.shuffle(weights)
    chosen = rng.choices(range(len(TEMPLATES)), weights=weights, k=lines)
    return [TEMPLATES[index](rng) for index in chosen], chosen


def alignment(chosen: list[int], clusters: list[int]) -> dict[str, int]:
    """How the clusters line up with the templates the lines came from."""
    per_template: dict[int, Counter[int]] = defaultdict(Counter)
    templates_per_cluster: dict[int, set[int]] = defaultdict(set)
    for template, cluster in zip(chosen, clusters, strict=True):
        per_template[template][cluster] += 1
        templates_per_cluster[cluster].add(template)
    misplaced = sum(
        sum(counts.values()) - counts.most_common(1)[0][1] for counts in per_template.values()
    )
    return {
        "templates_split": sum(1 for counts in per_template.values() if len(counts) > 1),
        "clusters_mixed": sum(
            1 for templates in templates_per_cluster.values() if len(templates) > 1
        ),
        "lines_misplaced": misplaced,
    }


def machine() -> dict[str, Any]:
    """The machine, and the drain3 version that was measured."""
    return {**shared_machine(), "drain3": version("drain3")}


def main() -> None:
    """Generate, mine, print the table, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    lines, chosen = generate(args.lines, args.seed)
    generation_seconds = time.perf_counter() - started

    miner = LogTemplates()
    add = miner.add
    started = time.perf_counter()
    clusters = [add(line) for line in lines]
    seconds = time.perf_counter() - started

    result: dict[str, Any] = {
        "benchmark": "drain_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "drain": {"depth": DRAIN_DEPTH, "sim_th": DRAIN_SIM_TH, "max_children": DRAIN_MAX_CHILDREN},
        "lines": args.lines,
        "seed": args.seed,
        "generation_seconds": round(generation_seconds, 2),
        "mining_seconds": round(seconds, 2),
        "lines_per_second": round(args.lines / seconds),
        "templates_generated": len(set(chosen)),
        "clusters": miner.cluster_count,
        **alignment(chosen, clusters),
    }
    out = write_result(result, "drain")

    rows = [
        ("lines mined", f"{args.lines}"),
        ("mining time", f"{seconds:.2f} s"),
        ("throughput, one thread", f"{result['lines_per_second']} lines/s"),
        ("clusters / templates generated", f"{miner.cluster_count} / {len(set(chosen))}"),
        ("templates split over several clusters", f"{result['templates_split']}"),
        ("clusters mixing several templates", f"{result['clusters_mixed']}"),
        ("lines outside their template's main cluster", f"{result['lines_misplaced']}"),
    ]
    print("\n| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
