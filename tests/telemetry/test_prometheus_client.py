"""The Prometheus client against a real Prometheus, a closed port, and a few things that can
stand between the two (a proxy answering 401 or 429, a server that never answers).

The two kinds of error matter to the callers: `PrometheusQueryError` is the user's PromQL
(a 422 to the user, an SLO `unknown`), `PrometheusUnavailableError` is not (retried, then
"stale"; never blamed on the user).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

from reliability_studio.telemetry.prometheus import (
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailableError,
    Sample,
)
from tests.support.postgres import free_port
from tests.support.prometheus import PrometheusServer, Series

T = TypeVar("T")
START = 1_700_000_000  # the series' first sample (unix seconds)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    """A Prometheus holding a counter, a histogram and a gauge for an hour."""
    times = [START + 60 * k for k in range(61)]
    series = [
        Series(
            "rs_requests_total",
            {"job": "api", "code": "200"},
            [(t, 10.0 * k) for k, t in enumerate(times)],
        ),
        Series(
            "rs_requests_total",
            {"job": "api", "code": "500"},
            [(t, 1.0 * k) for k, t in enumerate(times)],
        ),
        *(
            Series(
                "rs_latency_seconds_bucket",
                {"job": "api", "le": le},
                [(t, float(k)) for k, t in enumerate(times)],
            )
            for le in ("0.1", "0.5", "1.0", "+Inf")
        ),
        Series("rs_temperature", {"room": "a"}, [(t, 20.5) for t in times], "gauge"),
    ]
    with PrometheusServer() as server:
        server.backfill(series)
        server.start()
        yield server


def run(url: str, use: Callable[[PrometheusClient], Awaitable[T]], **options: Any) -> T:
    """`use(client)` with a new client of `url`, in a new event loop."""

    async def main() -> T:
        client = PrometheusClient(url, **options)
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(main())


AT = datetime.fromtimestamp(START + 3600, UTC)


# --- a real Prometheus ----------------------------------------------------------------------


def test_query_returns_the_instant_vector(prometheus: PrometheusServer) -> None:
    samples = run(prometheus.url, lambda c: c.query("rs_requests_total", AT))
    by_code = {sample.labels["code"]: sample for sample in samples}
    assert by_code["200"].value == 600
    assert by_code["500"].value == 60
    assert by_code["500"].labels == {"__name__": "rs_requests_total", "code": "500", "job": "api"}


def test_query_evaluates_at_the_given_time(prometheus: PrometheusServer) -> None:
    at = datetime.fromtimestamp(START + 600, UTC)
    expr = 'sum(increase(rs_requests_total{code="500"}[5m]))'
    assert run(prometheus.url, lambda c: c.query(expr, at)) == [Sample({}, 5.0)]


def test_query_of_a_scalar_is_one_sample_without_labels(prometheus: PrometheusServer) -> None:
    assert run(prometheus.url, lambda c: c.query("scalar(vector(2.5))")) == [Sample({}, 2.5)]


def test_query_of_nothing_is_empty(prometheus: PrometheusServer) -> None:
    assert run(prometheus.url, lambda c: c.query('rs_requests_total{job="none"}', AT)) == []


def test_non_finite_values_are_nan(prometheus: PrometheusServer) -> None:
    samples = run(
        prometheus.url, lambda c: c.query("vector(1) / vector(0) or vector(0) / vector(0)")
    )
    assert len(samples) == 1
    assert math.isnan(samples[0].value)


def test_the_base_url_may_end_with_a_slash(prometheus: PrometheusServer) -> None:
    assert run(prometheus.url + "/", lambda c: c.query("vector(1)")) == [Sample({}, 1.0)]


def test_label_values_lists_the_buckets(prometheus: PrometheusServer) -> None:
    values = run(
        prometheus.url, lambda c: c.label_values("le", 'rs_latency_seconds_bucket{job="api"}')
    )
    assert sorted(values) == ["+Inf", "0.1", "0.5", "1.0"]
    none = run(prometheus.url, lambda c: c.label_values("le", "rs_missing_bucket"))
    assert none == []


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("sum(rate(rs_requests_total[5m])", "parse error"),
        ("rs_requests_total{", "parse error"),
        ("rate(rs_requests_total)", "expected type range vector"),
        # Parses, fails when run (422, errorType execution).
        ("rs_requests_total / on() rs_requests_total", "many-to-many matching not allowed"),
    ],
)
def test_refused_queries_are_query_errors_with_prometheus_message(
    prometheus: PrometheusServer, expr: str, message: str
) -> None:
    with pytest.raises(PrometheusQueryError, match=message):
        run(prometheus.url, lambda c: c.query(expr, AT))


@pytest.mark.parametrize("expr", ['"a string"', "rs_requests_total[5m]"])
def test_a_result_that_is_not_an_instant_vector_is_refused(
    prometheus: PrometheusServer, expr: str
) -> None:
    with pytest.raises(PrometheusQueryError, match="expected an instant vector"):
        run(prometheus.url, lambda c: c.query(expr, AT))


def test_a_bad_label_values_match_is_a_query_error(prometheus: PrometheusServer) -> None:
    with pytest.raises(PrometheusQueryError):
        run(prometheus.url, lambda c: c.label_values("le", "rs_latency_seconds_bucket{"))


def test_a_wrong_path_is_unavailable_not_the_users_fault(prometheus: PrometheusServer) -> None:
    """Prometheus answers 404 (text) under a path prefix it does not serve."""
    with pytest.raises(PrometheusUnavailableError, match="HTTP 404"):
        run(prometheus.url + "/prometheus", lambda c: c.query("vector(1)"), attempts=1)


# --- nothing there --------------------------------------------------------------------------


def test_a_closed_port_is_unavailable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(PrometheusUnavailableError, match="ConnectError"):
        run(url, lambda c: c.query("vector(1)"), attempts=3)
    # Two waits of the exponential backoff (0.2 s, then 0.4 s, each plus jitter).
    assert time.monotonic() - started >= 0.6


def test_one_attempt_fails_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(PrometheusUnavailableError):
        run(url, lambda c: c.label_values("le", "x_bucket"), attempts=1)
    assert time.monotonic() - started < 0.5


class HangUp:
    """A TCP server that accepts each connection and closes it at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("attempts", [1, 3])
def test_each_attempt_is_a_new_try(attempts: int) -> None:
    server = HangUp()
    try:
        with pytest.raises(PrometheusUnavailableError):
            run(
                f"http://127.0.0.1:{server.port}", lambda c: c.query("vector(1)"), attempts=attempts
            )
        assert server.accepted == attempts
    finally:
        server.close()


# --- something else answers -----------------------------------------------------------------


class Answers:
    """An HTTP server that answers each request with the next (status, body) of a script."""

    def __init__(self, *script: tuple[int, Any]) -> None:
        self.script = list(script)
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                outer.requests += 1
                status, body = outer.script[min(outer.requests, len(outer.script)) - 1]
                if status == 0:  # never answer (until the client gives up)
                    time.sleep(2)
                    return
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # do not wait for a request that never answers
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serve.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answers() -> Iterator[Callable[..., Answers]]:
    """Start scripted HTTP servers; all are stopped after the test."""
    started: list[Answers] = []

    def start(*script: tuple[int, Any]) -> Answers:
        started.append(Answers(*script))
        return started[-1]

    yield start
    for server in started:
        server.close()


VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"status": "error", "error": "unauthorized"}),  # an auth proxy
        (403, {"message": "forbidden"}),
        (404, {"detail": "Not Found"}),  # another JSON API at that address
        (429, {"status": "error", "error": "too many requests"}),
        (500, {"status": "error", "error": "internal"}),
        (502, "<html>Bad Gateway</html>"),
        (503, {"status": "error", "errorType": "timeout", "error": "query timed out"}),
        (200, ["not", "an", "object"]),
        (200, {"data": {}}),
    ],
)
def test_answers_that_are_not_a_refusal_are_unavailable(
    answers: Callable[..., Answers], status: int, body: Any
) -> None:
    server = answers((status, body))
    with pytest.raises(PrometheusUnavailableError):
        run(server.url, lambda c: c.query("vector(1)"), attempts=1)


@pytest.mark.parametrize(("status", "error_type"), [(400, "bad_data"), (422, "execution")])
def test_400_and_422_are_refusals(
    answers: Callable[..., Answers], status: int, error_type: str
) -> None:
    server = answers((status, {"status": "error", "errorType": error_type, "error": "no good"}))
    with pytest.raises(PrometheusQueryError, match="no good"):
        run(server.url, lambda c: c.query("vector(1)"), attempts=3)
    assert server.requests == 1  # a refusal is not retried


def test_a_transient_failure_is_retried(answers: Callable[..., Answers]) -> None:
    server = answers((429, {"status": "error", "error": "slow down"}), (200, VECTOR))
    assert run(server.url, lambda c: c.query("vector(1)"), attempts=3) == []
    assert server.requests == 2


def test_a_server_that_never_answers_times_out(answers: Callable[..., Answers]) -> None:
    server = answers((0, None))
    started = time.monotonic()
    with pytest.raises(PrometheusUnavailableError, match="ReadTimeout"):
        run(server.url, lambda c: c.query("vector(1)"), attempts=1, timeout_seconds=0.3)
    assert time.monotonic() - started < 1.5
