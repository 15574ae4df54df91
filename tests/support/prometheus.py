"""A throwaway Prometheus from the Debian binaries, in a temp dir on 127.0.0.1, with history.

History is written as OpenMetrics text and turned into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics` before the server starts (DESIGN.md, "Real
components"). The server scrapes nothing: its data is exactly what the test backfilled. (A
test that wants live data instead, such as the alert chain, gives `start()` `scrape_targets`,
which are scraped every second.)

`make test` installs Prometheus when it is missing. When the binaries are still not there, the
tests that need them fail with a clear message: they never skip.

Notes on Prometheus/promtool 2.42 that the helpers below rely on:

- OpenMetrics timestamps are in *seconds* (fractions allowed; Prometheus keeps milliseconds and
  truncates the rest) and the file must end with `# EOF`.
- Every metric is declared `# TYPE <name> unknown` (or `gauge`), so that sample names are used
  verbatim: no `_total` suffix games for counters, and histogram buckets are plain series named
  `x_bucket` with an `le` label. PromQL's `increase()`/`rate()` do not look at the declared type.
- promtool re-reads the whole file once per output block; with its default 2 h blocks a month is
  360 passes. The hidden flag `--max-block-duration` (present in 2.42, not in `--help`) makes
  ~20-day blocks instead, which is what makes a month of 1-minute data quick to backfill.
- Prometheus' default retention is 15 d, so the server starts with a 400 d retention.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.postgres import free_port

SeriesKind = Literal["counter", "gauge"]

READY_TIMEOUT_SECONDS = 20.0
RETENTION = "400d"
MAX_BLOCK_DURATION = "744h"  # 31 d; promtool rounds it down to its 486 h (~20 d) block range
SCRAPE_JOB = "scrape"


def find_binary(name: str) -> Path:
    """The absolute path of `name` (e.g. `prometheus`, `promtool`); fails the test when missing."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/local/bin") / name) if p.exists()),
        None,
    )
    if found is None:
        pytest.fail(
            f"`{name}` not found; run `make test-deps` (it installs Debian's `prometheus` package)",
            pytrace=False,
        )
    return Path(found)


@dataclass
class Series:
    """One time series: `name{labels}` with `(unix_seconds, value)` samples.

    `kind` is `counter` or `gauge`. A histogram is a set of counters: `x_bucket` series with an
    `le` label, plus an `x_count` counter (and optionally `x_sum`).
    """

    name: str
    labels: dict[str, str]
    samples: list[tuple[float, float]]
    kind: SeriesKind = "counter"

    def selector(self) -> str:
        """The PromQL selector for exactly this series, e.g. `up{job="x"}`."""
        return self.name + _label_text(self.labels)


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_text(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_label_value(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _format_number(number: float) -> str:
    """A float as OpenMetrics writes it: shortest round-trip text, `+Inf`/`-Inf`/`NaN`."""
    number = float(number)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def write_openmetrics(series: Iterable[Series], path: Path) -> int:
    """Write `series` as OpenMetrics text that promtool can backfill; returns the sample count.

    Series of one metric name form one family (families are never interleaved, as OpenMetrics
    requires); each series' samples are written in time order. Counters are declared `unknown`
    and gauges `gauge`, so every sample keeps its name verbatim.
    """
    families: dict[str, list[Series]] = {}
    for one in series:
        families.setdefault(one.name, []).append(one)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for name, members in families.items():
            kinds = {member.kind for member in members}
            if len(kinds) != 1:
                raise ValueError(f"metric {name} is declared as more than one kind: {kinds}")
            declared = "gauge" if kinds == {"gauge"} else "unknown"
            out.write(f"# TYPE {name} {declared}\n")
            for member in members:
                prefix = f"{name}{_label_text(member.labels)} "
                samples = sorted(member.samples)
                for (before, _), (after, _) in itertools.pairwise(samples):
                    if after == before:
                        raise ValueError(f"{member.selector()} has two samples at {after}")
                fmt = _format_number
                out.write("".join([f"{prefix}{fmt(v)} {fmt(t)}\n" for t, v in samples]))
                written += len(samples)
        out.write("# EOF\n")
    return written


@dataclass
class PrometheusServer:
    """One Prometheus: `backfill(series)`, `start()`, `query(expr)`, `stop()`, `remove()`.

    Usable as a context manager, which stops the server and removes its files on exit.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rs-prometheus-")))
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.prometheus_bin = find_binary("prometheus")
        self.promtool_bin = find_binary("promtool")
        self.data = self.root / "data"
        self.config_path = self.root / "prometheus.yml"
        self.log_path = self.root / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._backfills = 0

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def backfill(self, series: Iterable[Series]) -> None:
        """Turn `series` into TSDB blocks in the data directory (while the server is stopped)."""
        if self.running:
            raise RuntimeError("backfill() needs a stopped server: blocks load at start")
        self.data.mkdir(parents=True, exist_ok=True)
        self._backfills += 1
        source = self.root / f"backfill-{self._backfills}.om"
        write_openmetrics(series, source)
        command = [
            str(self.promtool_bin),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            f"--max-block-duration={MAX_BLOCK_DURATION}",
            "--quiet",
            str(source),
            str(self.data),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        source.unlink()

    def write_config(
        self,
        rule_files: Sequence[Path] | None = None,
        alertmanager_url: str | None = None,
        evaluation_interval: str = "1s",
        scrape_targets: Sequence[str] = (),
        scrape_interval: str = "1s",
    ) -> Path:
        """Write prometheus.yml: the rule files, and an Alertmanager if given.

        Nothing is scraped unless `scrape_targets` (`host:port`, metrics at `/metrics`) are
        given: they form one job, `scrape`, scraped every `scrape_interval`.
        """
        scrape_configs: list[dict[str, Any]] = []
        if scrape_targets:
            scrape_configs.append(
                {
                    "job_name": SCRAPE_JOB,
                    "scrape_interval": scrape_interval,
                    "scrape_timeout": scrape_interval,
                    "static_configs": [{"targets": list(scrape_targets)}],
                }
            )
        config: dict[str, Any] = {
            "global": {"evaluation_interval": evaluation_interval},
            "rule_files": [str(Path(rule).resolve()) for rule in rule_files or []],
            "scrape_configs": scrape_configs,
        }
        if alertmanager_url is not None:
            parts = urlsplit(alertmanager_url)
            if not parts.scheme or not parts.netloc:
                raise ValueError(f"alertmanager_url needs a scheme and host: {alertmanager_url!r}")
            alertmanager: dict[str, Any] = {
                "scheme": parts.scheme,
                "static_configs": [{"targets": [parts.netloc]}],
            }
            if parts.path.strip("/"):
                alertmanager["path_prefix"] = parts.path
            config["alerting"] = {"alertmanagers": [alertmanager]}
        # JSON is YAML, and needs no extra dependency or type stubs.
        self.config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return self.config_path

    def start(
        self,
        rule_files: Sequence[Path] | None = None,
        alertmanager_url: str | None = None,
        evaluation_interval: str = "1s",
        scrape_targets: Sequence[str] = (),
        scrape_interval: str = "1s",
        resend_delay: str = "5s",
    ) -> None:
        """Start the server and wait until `/-/ready` answers 200 (its rules are loaded by then).

        `resend_delay` is how often a firing alert is sent again to the Alertmanager (a resolved
        one leaves at the first evaluation that finds it resolved, whatever this delay).
        """
        if self.running:
            raise RuntimeError("Prometheus is already running")
        self.data.mkdir(parents=True, exist_ok=True)
        self.write_config(
            rule_files, alertmanager_url, evaluation_interval, scrape_targets, scrape_interval
        )
        command = [
            str(self.prometheus_bin),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            f"--rules.alert.resend-delay={resend_delay}",
            "--rules.alert.for-grace-period=1s",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"Prometheus exited at start:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"Prometheus not ready after {READY_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the server's log."""
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); does nothing when stopped."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def remove(self) -> None:
        """Stop the server if needed and delete its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()

    # --- HTTP API, for assertions -------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET `/api/v1/<path>` and return its `data`; raises when Prometheus answers an error."""
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30.0)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {response.status_code} {body}")
        return body["data"]

    def query(self, expr: str, time: float | None = None) -> list[tuple[dict[str, str], float]]:
        """An instant query: `(labels, value)` per result (a scalar gives one with no labels)."""
        params = {"query": expr}
        if time is not None:
            params["time"] = _format_number(time)
        data = self.api("query", **params)
        if data["resultType"] == "vector":
            return [(item["metric"], float(item["value"][1])) for item in data["result"]]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        raise RuntimeError(f"unexpected result type {data['resultType']} for {expr}")

    def query_value(self, expr: str, time: float | None = None) -> float:
        """The value of an instant query that must return exactly one result."""
        result = self.query(expr, time)
        if len(result) != 1:
            raise AssertionError(f"{expr} returned {len(result)} results, not 1: {result}")
        return result[0][1]

    def alerts(self) -> list[dict[str, Any]]:
        """The active alerts (`GET /api/v1/alerts`)."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def reload(self) -> None:
        """Re-read the configuration and rule files (`POST /-/reload`)."""
        response = httpx.post(f"{self.url}/-/reload", timeout=30.0)
        if response.status_code != 200:
            raise RuntimeError(f"reload failed: {response.status_code} {response.text}")
