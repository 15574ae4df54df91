"""`reliability-studio serve` as users run it: a real process on a free port of 127.0.0.1
(and `reliability-studio worker`, the same way, without a port).

The process gets the current environment without any of our settings (so that a developer's
`DATABASE_URL` or `INGEST_TOKEN_*` cannot leak into a test), plus the settings the test names.
Its output (JSON logs) goes to a file, readable while it runs and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reliability_studio.config import Settings
from tests.support.postgres import free_port

COMMAND = Path(sys.executable).parent / "reliability-studio"
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 15.0
# Settings that are not fields of `Settings` (yet) but are ours all the same.
OUR_PREFIXES = ("INGEST_", "ALERT_", "SLO_", "PROMETHEUS_", "DB_", "SQLITE_")


def environment(**settings: str) -> dict[str, str]:
    """The current environment without any of our settings, plus `settings`.

    Without identities (`AUTH_MODE=none`, allowed on loopback) unless the test says
    otherwise: the tests of identities turn them on. Outbound requests may reach loopback
    (`OUTBOUND_ALLOWED_NETWORKS`), where the tests' fake receivers listen."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {
        name: value
        for name, value in os.environ.items()
        if name.upper() not in ours and not name.upper().startswith(OUR_PREFIXES)
    }
    # Loopback allowed: the fake receivers of the notification tests listen there. One
    # worker unless the test asks for more: `serve` starts one per CPU by default.
    return {
        **env,
        "AUTH_MODE": "none",
        "WEB_CONCURRENCY": "1",
        "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        **settings,
    }


@dataclass
class ServedProcess:
    """A running `reliability-studio serve`: its process, base URL and log file."""

    process: subprocess.Popen[str]
    base_url: str
    log: Path

    def output(self) -> str:
        """Everything the process has written so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def output_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the output."""
        return "\n".join(self.output().splitlines()[-lines:])

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records written so far."""
        found: list[dict[str, Any]] = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:  # a line still being written
                    continue
        return found

    def access_records(self, path: str) -> list[dict[str, Any]]:
        """The access-log records of requests to exactly `path`."""
        return [
            record
            for record in self.records()
            if record.get("logger") == "reliability_studio.access" and record.get("path") == path
        ]

    def messages(self, message: str) -> list[dict[str, Any]]:
        """The JSON log records whose message is exactly `message`."""
        return [record for record in self.records() if record.get("message") == message]

    def wait_for_message(self, message: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait until the process has logged `message`; fails with the output when it does not
        (or when the process ends first)."""
        deadline = time.monotonic() + timeout
        while not self.messages(message):
            if self.process.poll() is not None:
                raise AssertionError(f"the process exited early:\n{self.output_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {message!r} within {timeout:.0f} s:\n{self.output_tail()}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs."""
        self.process.kill()
        self.process.wait(timeout=10)

    def wait_until_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait until `/health` answers 200; fails with the output when it does not."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.output_tail()}")
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=2)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise AssertionError(
            f"serve not healthy within {timeout:.0f} s (last: {last}):\n{self.output_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL when the process has not ended in time; reaps it."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def serving(cwd: Path, **settings: str) -> Iterator[ServedProcess]:
    """`reliability-studio serve` on a free port with `settings`, healthy, stopped on exit."""
    with serving_within(cwd, START_TIMEOUT_SECONDS, settings) as served:
        yield served


@contextmanager
def serving_within(
    cwd: Path, start_timeout: float, settings: dict[str, str]
) -> Iterator[ServedProcess]:
    """`serving`, allowing `start_timeout` seconds to become healthy (benchmarks start
    several workers on a busy machine)."""
    port = free_port()
    log = cwd / "serve.log"
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [str(COMMAND), "serve"],
            cwd=cwd,
            env=environment(**{"PORT": str(port), "HOST": "127.0.0.1", **settings}),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    served = ServedProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        served.wait_until_healthy(start_timeout)
        yield served
    finally:
        served.stop()


def start_worker(cwd: Path, **settings: str) -> ServedProcess:
    """`reliability-studio worker` with `settings`, just started: wait for its "worker started"
    with `wait_for_message`, and `stop()` it. (Its `base_url` is empty: a worker serves no HTTP.)"""
    log = cwd / "worker.log"
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [str(COMMAND), "worker"],
            cwd=cwd,
            env=environment(**settings),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return ServedProcess(process, "", log)


@contextmanager
def working(cwd: Path, **settings: str) -> Iterator[ServedProcess]:
    """`reliability-studio worker` with `settings`, once it has logged "worker started";
    stopped on exit."""
    worker = start_worker(cwd, **settings)
    try:
        worker.wait_for_message("worker started")
        yield worker
    finally:
        worker.stop()
