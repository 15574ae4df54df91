"""A throwaway Alertmanager from the Debian binary, in a temp dir on 127.0.0.1.

The configuration is fixed at construction: one route to one webhook receiver (optionally with
a bearer token), with short `group_wait`/`group_interval` so that notifications leave within a
second or two, and `send_resolved: true`. Clustering is off (`--cluster.listen-address=`), so
the server neither opens a gossip port nor waits for peers before it sends.

`make test` installs Alertmanager (Debian's `prometheus-alertmanager`) when it is missing. When
the binary is still not there, the tests that need it fail with a clear message: they never
skip.

Notes on Alertmanager 0.25 that the helpers below rely on:

- The configuration is YAML; JSON is YAML, so it is written with `json.dumps`.
- `http_config.authorization` (`type`, `credentials`) sets `Authorization: <type> <credentials>`
  on every webhook request.
- `/-/ready` answers 200 once the configuration is loaded; alerts are accepted at
  `POST /api/v2/alerts` and listed, with their `fingerprint`, at `GET /api/v2/alerts`.
- A webhook answered 4xx is not retried within the attempt (a 5xx or a refused connection is,
  with back-off); as nothing was delivered, the next `group_interval` tries again. Failed
  attempts count in `alertmanager_notifications_failed_total{integration="webhook"}` and log
  `unexpected status code 401`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from tests.support.postgres import free_port

BINARY_NAME = "prometheus-alertmanager"
READY_TIMEOUT_SECONDS = 20.0
RECEIVER_NAME = "reliability-studio"


def find_alertmanager(name: str = BINARY_NAME) -> Path:
    """The absolute path of Debian's `prometheus-alertmanager`; fails the test when missing."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/local/bin") / name) if p.exists()),
        None,
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"`{name}` not found on this CI runner: the job must run "
                "`scripts/install-test-deps.sh` (or `make test-deps`) before the tests",
                pytrace=False,
            )
        pytest.fail(
            f"`{name}` not found; run `scripts/install-test-deps.sh` (or `make test-deps`)"
            ", which installs Debian's `prometheus-alertmanager` package",
            pytrace=False,
        )
    return Path(found)


@dataclass
class AlertmanagerServer:
    """One Alertmanager posting every alert to `webhook_url`: `start()`, `stop()`, `alerts()`.

    `stop()` ends the process and deletes its files. Usable as a context manager, which starts
    the server on entry and stops it on exit.
    """

    webhook_url: str
    bearer_token: str | None = None
    group_by: Sequence[str] = ("alertname", "service")
    group_wait: str = "1s"
    group_interval: str = "1s"
    repeat_interval: str = "1h"
    resolve_timeout: str = "5m"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rs-alertmanager-")))
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.binary = find_alertmanager()
        self.data = self.root / "data"
        self.config_path = self.root / "alertmanager.yml"
        self.log_path = self.root / "alertmanager.log"
        self._process: subprocess.Popen[bytes] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def config(self) -> dict[str, Any]:
        """The configuration: one route to one webhook receiver."""
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": True}
        if self.bearer_token is not None:
            webhook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials": self.bearer_token}
            }
        return {
            "global": {"resolve_timeout": self.resolve_timeout},
            "route": {
                "receiver": RECEIVER_NAME,
                "group_by": list(self.group_by),
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": RECEIVER_NAME, "webhook_configs": [webhook]}],
        }

    def write_config(self) -> Path:
        """Write alertmanager.yml (JSON is YAML, and needs no extra dependency)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n", encoding="utf-8")
        return self.config_path

    def start(self) -> None:
        """Start the server and wait until `/-/ready` answers 200 (its config is loaded by then)."""
        if self.running:
            raise RuntimeError("Alertmanager is already running")
        self.data.mkdir(parents=True, exist_ok=True)
        self.write_config()
        command = [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.path={self.data}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    log = self.log_tail()
                    self.stop()
                    raise RuntimeError(f"Alertmanager exited at start:\n{log}")
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        log = self.log_tail()
        self.stop()
        raise RuntimeError(f"Alertmanager not ready after {READY_TIMEOUT_SECONDS:.0f} s:\n{log}")

    def log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the server's log."""
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and delete its files.

        Does nothing more than delete the files when the server is not running; calling it
        twice is harmless.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> AlertmanagerServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- HTTP API -----------------------------------------------------------------------------

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Send alerts as Prometheus does (`POST /api/v2/alerts`); raises unless 200."""
        response = httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=10.0)
        if response.status_code != 200:
            raise RuntimeError(
                f"Alertmanager refused alerts: {response.status_code} {response.text}"
            )

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds (`GET /api/v2/alerts`), each with its `fingerprint`."""
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=10.0)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` on `/metrics` whose labels include `labels`.

        A metric with no matching sample counts 0 (counters appear on their first increment).
        """
        response = httpx.get(f"{self.url}/metrics", timeout=10.0)
        response.raise_for_status()
        wanted = [f'{key}="{value}"' for key, value in labels.items()]
        total = 0.0
        for line in response.text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            metric_name = series.split("{", 1)[0]
            if metric_name == name and all(label in series for label in wanted):
                total += float(value)
        return total
