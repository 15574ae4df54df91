"""Specification of graceful shutdown: SIGTERM drains, within `SHUTDOWN_TIMEOUT_SECONDS`.

`serve`: the requests in flight when SIGTERM arrives are finished and answered (2xx); new
connections are refused from the moment it arrives; the process then exits with status 0.
A request that would outlast the bound is cut off at the bound: the process exits in time
rather than when the request would have ended.

The slow requests are real writes made slow by the database: the test holds SQLite's write
lock (`BEGIN IMMEDIATE` in a connection of its own), so each request waits on its busy
timeout, in the server, until the test lets go.

`worker`: SIGTERM in the middle of a delivery hands the row back and exits 0 (see
tests/test_worker.py); here, it does so within the bound even when the database stops
answering altogether (PostgreSQL frozen with SIGSTOP, as behind a network partition).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.migrate import upgrade_to_head
from tests.conftest import QUIET_ENGINE
from tests.notify.conftest import create_channel, create_policy, outbox, wait_until
from tests.reliability.conftest import QUIET_JOBS, START_TIMEOUT_SECONDS, start_serve
from tests.support.api import create_incident
from tests.support.postgres import PostgresServer, free_port
from tests.support.served import ServedProcess, start_worker
from tests.support.webhook_receiver import Answer, WebhookReceiver

IN_FLIGHT = 3
# Room, beyond the bound, for what follows it: the lifespan's cleanup and the interpreter's exit.
EXIT_MARGIN_SECONDS = 4.0


@contextmanager
def write_lock(database: Path) -> Iterator[sqlite3.Connection]:
    """SQLite's write lock, held by the test until the block ends (or `ROLLBACK`)."""
    connection = sqlite3.connect(database, isolation_level=None, timeout=10)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield connection
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()


class Requests:
    """`count` POST /api/incidents sent at once, each from a thread of its own."""

    def __init__(self, base_url: str, count: int) -> None:
        self.results: dict[int, httpx.Response | Exception] = {}
        self._threads = [
            threading.Thread(target=self._send, args=(base_url, n), daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _send(self, base_url: str, n: int) -> None:
        try:
            self.results[n] = httpx.post(
                f"{base_url}/api/incidents",
                json={"title": f"In flight {n}", "severity": "high"},
                timeout=60,
            )
        except httpx.HTTPError as exc:
            self.results[n] = exc

    def join(self) -> dict[int, httpx.Response | Exception]:
        for thread in self._threads:
            thread.join(timeout=60)
        return self.results


def _checked_out(serve: ServedProcess) -> float:
    """Database connections in use, from /metrics (which needs no database)."""
    text = httpx.get(f"{serve.base_url}/metrics", timeout=5).text
    match = re.search(r"^db_pool_checked_out (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


def _wait_in_flight(serve: ServedProcess, count: int) -> None:
    """Until `count` requests are inside the app, each holding a connection (background jobs
    are off: nothing else takes one)."""
    deadline = time.monotonic() + 15
    while _checked_out(serve) < count:
        assert time.monotonic() < deadline, "the requests did not reach the database"
        time.sleep(0.05)


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def _incidents(database: Path) -> dict[str, int]:
    """Each stored incident's title, with its number of `incident_created` events."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT i.title, count(e.id) FROM incidents i LEFT JOIN timeline_events e "
            "ON e.incident_id = i.id AND e.type = 'incident_created' GROUP BY i.id, i.title"
        ).fetchall()
    return {title: events for title, events in rows}


def test_sigterm_finishes_the_requests_in_flight_refuses_new_ones_and_exits_0(
    tmp_path: Path,
) -> None:
    database = tmp_path / "shutdown.db"
    port = free_port()
    serve = start_serve(
        tmp_path,
        port,
        "serve.log",
        DATABASE_URL=f"sqlite:///{database}",
        SHUTDOWN_TIMEOUT_SECONDS="10",
        **QUIET_JOBS,
    )
    try:
        with write_lock(database) as lock:
            requests = Requests(serve.base_url, IN_FLIGHT)
            _wait_in_flight(serve, IN_FLIGHT)
            serve.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            deadline = signalled + 2
            while not _refuses_connections(port):
                assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                time.sleep(0.05)
            time.sleep(1.0)  # the requests are still held, and still waited for
            assert serve.process.poll() is None, serve.output_tail()
            assert not requests.results, requests.results
            lock.execute("ROLLBACK")  # let them through

        results = requests.join()
        code = serve.process.wait(timeout=30)
        seconds = time.monotonic() - signalled
    finally:
        serve.stop()

    answers = {
        n: r.status_code if isinstance(r, httpx.Response) else repr(r) for n, r in results.items()
    }
    assert answers == dict.fromkeys(range(IN_FLIGHT), 201), answers
    assert code == 0, serve.output_tail()
    assert seconds < 10 + EXIT_MARGIN_SECONDS
    assert "Application shutdown complete." in serve.output()
    assert _incidents(database) == {f"In flight {n}": 1 for n in range(IN_FLIGHT)}


def test_a_request_that_outlasts_the_shutdown_timeout_is_cut_off_at_the_bound(
    tmp_path: Path,
) -> None:
    database = tmp_path / "bound.db"
    bound = 2.0  # and each request would wait 10 s (SQLite's busy timeout) for the lock
    serve = start_serve(
        tmp_path,
        free_port(),
        "serve.log",
        DATABASE_URL=f"sqlite:///{database}",
        SHUTDOWN_TIMEOUT_SECONDS=str(bound),
        **QUIET_JOBS,
    )
    try:
        with write_lock(database):
            requests = Requests(serve.base_url, 1)
            _wait_in_flight(serve, 1)
            serve.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = serve.process.wait(timeout=30)
            seconds = time.monotonic() - signalled
        results = requests.join()
    finally:
        serve.stop()

    print(f"shutdown with a request held past the bound of {bound} s: exited in {seconds:.1f} s")
    assert seconds < bound + EXIT_MARGIN_SECONDS, serve.output_tail()
    assert code == 0, serve.output_tail()
    assert not isinstance(results[0], httpx.Response) or results[0].status_code != 201
    # Cut off, the write did not happen at all: no incident, or a whole one.
    assert set(_incidents(database).values()) <= {1}


def _postgres_processes(server: PostgresServer) -> list[int]:
    """The server's postmaster and every process it started."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


@contextmanager
def frozen(server: PostgresServer) -> Iterator[None]:
    """PostgreSQL stops answering, its connections open (SIGSTOP), as behind a partition:
    queries on an open connection wait for ever, new connections wait for their timeout."""
    pids = _postgres_processes(server)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def _queue_a_notification(database_url: str, receiver_url: str) -> None:
    """A webhook channel, a policy and an incident: one notification waiting to be sent
    (written by an app of the test process whose dispatcher is off)."""
    settings = Settings(
        database_url=database_url,
        outbound_allowed_networks=("127.0.0.1/32",),
        **QUIET_ENGINE,
    )
    upgrade_to_head(settings)
    with TestClient(create_app(settings)) as client:
        channel = create_channel(client, "hook", {"kind": "webhook", "url": receiver_url})
        create_policy(client, [channel])
        create_incident(client)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_sigterm_ends_the_process_within_the_bound_even_when_postgres_stops_answering(
    durable_postgres: PostgresServer, tmp_path: Path, command: str
) -> None:
    """A delivery in flight (the receiver never answers) and, for `serve`, a request in
    flight; then PostgreSQL freezes, and SIGTERM: handing the row back and closing the pool
    would wait for ever on the frozen connections. The process must end within
    SHUTDOWN_TIMEOUT_SECONDS (twice, for `serve`: the requests, then the jobs) all the same;
    the row it could not hand back is taken over once its lease ends."""
    bound = 2
    database = f"frozen_{uuid.uuid4().hex[:8]}"
    durable_postgres.create_database(database)
    database_url = durable_postgres.url(database)
    settings = {
        **QUIET_JOBS,
        "DATABASE_URL": database_url,
        "NOTIFY_ENABLED": "true",
        "NOTIFY_POLL_SECONDS": "0.1",
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.1/32",
        "SHUTDOWN_TIMEOUT_SECONDS": str(bound),
    }
    with WebhookReceiver(default=Answer(hold=True)) as receiver:
        _queue_a_notification(database_url, receiver.url)
        if command == "serve":
            process = start_serve(tmp_path, free_port(), "serve.log", **settings)
        else:
            process = start_worker(tmp_path, **settings)
        try:
            wait_until(
                lambda: len(receiver.received) == 1,
                "the delivery reached the receiver",
                timeout=START_TIMEOUT_SECONDS,  # the worker may still be starting
            )
            with frozen(durable_postgres):
                if command == "serve":
                    hanging = Requests(process.base_url, 1)  # answered or cut off, no matter
                    time.sleep(0.5)  # inside the app, waiting on the frozen database
                process.process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                try:
                    code = process.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    raise AssertionError(
                        f"{command} still running 30 s after SIGTERM:\n{process.output_tail()}"
                    ) from None
                seconds = time.monotonic() - signalled
            if command == "serve":
                hanging.join()
        finally:
            process.stop()

    allowed = bound * (2 if command == "serve" else 1) + EXIT_MARGIN_SECONDS
    print(f"{command} with PostgreSQL frozen: exited {seconds:.1f} s after SIGTERM")
    assert seconds < allowed, process.output_tail()
    assert code == 0, process.output_tail()
    assert process.messages("shutdown cut short"), process.output_tail()
    # Not handed back (the database was frozen): its lease, not this process, decides now.
    assert list(outbox(database_url).values()) == [("delivering", 1)]
