"""The Loki client against a local server answering as Loki's documented HTTP API does
(`tests/support/fake_loki.py`: Loki cannot be installed here, so this is a contract test).

The two kinds of error matter to the callers: `LokiQueryError` is the user's LogQL (a 400, with
Loki's message), `LokiUnavailable` is not (no answer, throttled, failed: retried, then reported
as missing evidence).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx
import pytest

from reliability_studio.telemetry.loki import (
    LokiClient,
    LokiNotConfigured,
    LokiQueryError,
    LokiResult,
    LokiUnavailable,
    Point,
    Sample,
)
from tests.support.fake_loki import FakeLoki
from tests.support.postgres import free_port

T = TypeVar("T")

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
END = START + timedelta(minutes=5)
START_NS = 1_714_564_800 * 10**9  # START as a nanosecond epoch
SECOND = 10**9
OFFSET = 123_456_789  # checkout-1's lines are this many ns past the second: below a microsecond

CHECKOUT_1 = {"app": "checkout", "pod": "checkout-1", "level": "error"}
CHECKOUT_2 = {"app": "checkout", "pod": "checkout-2", "level": "error"}
ERRORS = '{app="checkout", level="error"}'


def fill(loki: FakeLoki, tenant: str = "fake") -> None:
    """Five minutes of checkout logs: errors every 30 s on pod 1 and every 60 s on pod 2, info
    lines every 10 s, and another app's errors that no query of these tests selects."""
    loki.push(
        CHECKOUT_1,
        [(START_NS + 30 * k * SECOND + OFFSET, f"payment failed: attempt {k}") for k in range(10)],
        tenant=tenant,
    )
    loki.push(
        CHECKOUT_2,
        [(START_NS + 60 * k * SECOND + SECOND // 2, f"payment failed: pod2 {k}") for k in range(5)],
        tenant=tenant,
    )
    loki.push(
        {"app": "checkout", "pod": "checkout-1", "level": "info"},
        [(START_NS + 10 * k * SECOND, "GET /cart 200") for k in range(30)],
        tenant=tenant,
    )
    loki.push(
        {"app": "search", "level": "error"},
        [(START_NS + k * SECOND, "payment failed: not ours") for k in range(5)],
        tenant=tenant,
    )


@pytest.fixture
def loki() -> Iterator[FakeLoki]:
    """A single-tenant Loki (its default) holding the checkout logs."""
    with FakeLoki() as server:
        fill(server)
        yield server


def run(url: str, use: Callable[[LokiClient], Awaitable[T]], **options: Any) -> T:
    """`use(client)` with a new client of `url`, in a new event loop."""

    async def main() -> T:
        client = LokiClient(url, **options)
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(main())


def errors(client: LokiClient, **options: Any) -> Awaitable[LokiResult]:
    return client.query_range(ERRORS, START, END, **options)


# --- log queries: streams -------------------------------------------------------------------


def test_log_lines_of_all_streams_come_back_newest_first(loki: FakeLoki) -> None:
    result = run(loki.url, errors)
    assert result.result_type == "streams"
    assert len(result.lines) == 15
    stamps = [line.timestamp_ns for line in result.lines]
    assert stamps == sorted(stamps, reverse=True)
    assert result.lines[0].line == "payment failed: attempt 9"
    assert result.series == []
    assert result.samples == []


def test_each_line_keeps_its_stream_labels(loki: FakeLoki) -> None:
    result = run(loki.url, errors)
    by_line = {line.line: line for line in result.lines}
    assert by_line["payment failed: attempt 3"].labels == CHECKOUT_1
    assert by_line["payment failed: pod2 3"].labels == CHECKOUT_2
    assert all(line.metadata == {} for line in result.lines)


def test_timestamps_keep_loki_nanoseconds_and_are_utc_datetimes(loki: FakeLoki) -> None:
    first = run(loki.url, lambda c: errors(c, direction="forward")).lines[0]
    assert first.timestamp_ns == START_NS + OFFSET
    assert first.timestamp == START + timedelta(microseconds=123_456)
    assert first.timestamp.utcoffset() == timedelta(0)


def test_forward_returns_the_oldest_lines_first_up_to_the_limit(loki: FakeLoki) -> None:
    result = run(loki.url, lambda c: errors(c, direction="forward", limit=3))
    assert [line.line for line in result.lines] == [
        "payment failed: attempt 0",  # 0.123 s
        "payment failed: pod2 0",  # 0.5 s
        "payment failed: attempt 1",  # 30.123 s
    ]


def test_line_filters_are_left_to_loki(loki: FakeLoki) -> None:
    query = '{app="checkout"} |= "pod2" != "pod2 4"'
    result = run(loki.url, lambda c: c.query_range(query, START, END))
    assert [line.line for line in result.lines] == [
        f"payment failed: pod2 {k}" for k in range(3, -1, -1)
    ]


def test_a_query_that_selects_nothing_is_an_empty_result(loki: FakeLoki) -> None:
    result = run(loki.url, lambda c: c.query_range('{app="nothing"}', START, END))
    assert result.result_type == "streams"
    assert result.lines == []


def test_parameters_are_sent_as_documented(loki: FakeLoki) -> None:
    start = START + timedelta(microseconds=1)
    run(loki.url, lambda c: c.query_range(ERRORS, start, END, limit=7, direction="forward"))
    (request,) = loki.received()
    assert request.method == "GET"
    assert request.path == "/loki/api/v1/query_range"
    assert request.params == {
        "query": ERRORS,
        "start": str(START_NS + 1000),  # nanoseconds, as a string of digits
        "end": str(START_NS + 300 * SECOND),
        "limit": "7",
        "direction": "forward",
    }


def test_defaults_are_the_newest_thousand_lines(loki: FakeLoki) -> None:
    run(loki.url, errors)
    (request,) = loki.received()
    assert (request.params["limit"], request.params["direction"]) == ("1000", "backward")
    assert "step" not in request.params


def test_a_timezone_other_than_utc_is_the_same_instant(loki: FakeLoki) -> None:
    plus_two = START.astimezone(timezone(timedelta(hours=2)))
    assert plus_two.hour == 14
    run(loki.url, lambda c: c.query_range(ERRORS, plus_two, END))
    assert loki.received()[0].params["start"] == str(START_NS)


def test_naive_datetimes_are_refused_before_asking(loki: FakeLoki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run(loki.url, lambda c: c.query_range(ERRORS, START.replace(tzinfo=None), END))
    assert loki.received() == []


class WithHeaders(httpx.AsyncBaseTransport):
    """A transport that adds headers to each request (as a caller's own transport may)."""

    def __init__(self, **headers: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.headers = headers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers.update(self.headers)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_structured_metadata_as_a_third_value_element_is_kept_apart(loki: FakeLoki) -> None:
    loki.push({"app": "cart"}, [(START_NS + SECOND, "checkout slow", {"trace_id": "4bf92f35"})])
    flags = {"X-Loki-Response-Encoding-Flags": "categorize-labels"}
    query = '{app="cart"}'
    result = run(
        loki.url,
        lambda c: c.query_range(query, START, END),
        transport=WithHeaders(**flags),
    )
    (line,) = result.lines
    assert (line.line, line.labels, line.metadata) == (
        "checkout slow",
        {"app": "cart"},
        {"trace_id": "4bf92f35"},
    )
    assert line.timestamp_ns == START_NS + SECOND


def test_without_the_flag_loki_folds_metadata_into_the_labels(loki: FakeLoki) -> None:
    loki.push({"app": "cart"}, [(START_NS + SECOND, "checkout slow", {"trace_id": "4bf92f35"})])
    (line,) = run(loki.url, lambda c: c.query_range('{app="cart"}', START, END)).lines
    assert (line.labels, line.metadata) == ({"app": "cart", "trace_id": "4bf92f35"}, {})


def test_loki_statistics_are_kept(loki: FakeLoki) -> None:
    stats = run(loki.url, errors).stats
    assert stats["summary"]["totalLinesProcessed"] == 15


# --- metric queries: matrix (and vector) ----------------------------------------------------


def test_a_metric_query_is_a_matrix_of_points_per_label_set(loki: FakeLoki) -> None:
    query = 'sum by (level) (count_over_time({app="checkout"} |= "failed" [1m]))'
    result = run(loki.url, lambda c: c.query_range(query, START, END, step="1m"))
    assert result.result_type == "matrix"
    assert result.lines == []
    (series,) = result.series
    assert series.labels == {"level": "error"}
    # At START the minute before holds nothing, so there is no point; then 2 + 1 a minute.
    assert series.points == [Point(START + timedelta(minutes=m), 3.0) for m in range(1, 6)]
    assert loki.received()[0].params["step"] == "1m"


def test_each_stream_is_its_own_series_without_an_aggregation(loki: FakeLoki) -> None:
    query = 'count_over_time({app="checkout", level="error"}[5m])'
    result = run(loki.url, lambda c: c.query_range(query, START, END, step="300"))
    counts = {s.labels["pod"]: s.points for s in result.series}
    assert counts == {
        "checkout-1": [Point(END, 10.0)],
        "checkout-2": [Point(END, 5.0)],
    }


def test_fractional_second_timestamps_of_a_matrix_keep_their_milliseconds(loki: FakeLoki) -> None:
    start = START + timedelta(milliseconds=250)
    query = 'sum(count_over_time({app="checkout", level="error"}[5m]))'
    result = run(loki.url, lambda c: c.query_range(query, start, END, step="290"))
    # Steps at start (0.123 s is in its range, 0.5 s not yet) and start + 290 s (everything).
    assert result.series[0].points == [
        Point(start, 1.0),
        Point(start + timedelta(seconds=290), 15.0),
    ]


VECTOR_EXAMPLE = {  # the documented answer of an instant metric query
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {"metric": {}, "value": [1588889221, "1267.1266666666666"]},
            {"metric": {"level": "warn"}, "value": [1588889221, "37.77166666666667"]},
            {"metric": {"level": "info"}, "value": [1588889221.5, "NaN"]},
        ],
        "stats": {},
    },
}


def test_a_vector_result_is_parsed_into_samples() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=VECTOR_EXAMPLE))
    query = 'sum(rate({job="varlogs"}[10m])) by (level)'
    result = run(
        "http://loki.test", lambda c: c.query_range(query, START, END), transport=transport
    )
    at = datetime.fromtimestamp(1588889221, UTC)
    assert result.result_type == "vector"
    assert result.samples[:2] == [
        Sample({}, at, 1267.1266666666666),
        Sample({"level": "warn"}, at, 37.77166666666667),
    ]
    assert result.samples[2].timestamp == at + timedelta(milliseconds=500)
    assert result.samples[2].value != result.samples[2].value  # NaN


# --- tenants --------------------------------------------------------------------------------


def test_the_tenant_header_is_sent_when_a_tenant_is_set(loki: FakeLoki) -> None:
    run(loki.url, errors, tenant="team-a")
    assert loki.received()[0].headers["x-scope-orgid"] == "team-a"


def test_no_tenant_header_is_sent_without_a_tenant(loki: FakeLoki) -> None:
    run(loki.url, errors)
    assert "x-scope-orgid" not in loki.received()[0].headers


def test_a_multi_tenant_loki_answers_with_the_tenants_lines_only() -> None:
    with FakeLoki(auth_enabled=True) as server:
        fill(server, tenant="team-a")
        server.push(CHECKOUT_1, [(START_NS + SECOND, "payment failed: team-b")], tenant="team-b")
        lines = run(server.url, errors, tenant="team-b").lines
    assert [line.line for line in lines] == ["payment failed: team-b"]


def test_no_tenant_on_a_multi_tenant_loki_is_unavailable_at_once() -> None:
    with FakeLoki(auth_enabled=True) as server:
        with pytest.raises(LokiUnavailable, match="HTTP 401: no org id"):
            run(server.url, errors)
        assert len(server.received()) == 1


# --- refusals: the user's query --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "options", "message"),
    [
        ('{app="checkout"', {}, "parse error at line 1, col 16: syntax error: unexpected $end"),
        ('{app="checkout"} |= error', {}, "parse error at line 1, col 21"),
        ('{app=~".*"}', {}, "queries require at least one regexp or equality matcher"),
        (ERRORS, {"limit": 10_000}, "max entries limit per query exceeded"),
    ],
)
def test_a_query_loki_refuses_is_a_query_error_with_its_message(
    loki: FakeLoki, query: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(LokiQueryError) as refused:
        run(loki.url, lambda c: c.query_range(query, START, END, **options))
    assert message in str(refused.value)
    assert len(loki.received()) == 1  # a refusal is not retried


def test_a_plain_text_400_is_a_query_error_carrying_lokis_text(loki: FakeLoki) -> None:
    text = "parse error at line 1, col 22: syntax error: unexpected IDENTIFIER, expecting STRING"
    loki.fail(400, text + "\n")
    with pytest.raises(LokiQueryError) as refused:
        run(loki.url, errors)
    assert str(refused.value) == text


def test_an_end_before_the_start_is_a_query_error(loki: FakeLoki) -> None:
    with pytest.raises(LokiQueryError, match="end timestamp must not be before"):
        run(loki.url, lambda c: c.query_range(ERRORS, END, START))


# --- Loki failing, throttling, absent --------------------------------------------------------


def test_a_500_is_retried_and_then_the_answer_is_used(loki: FakeLoki) -> None:
    loki.fail(500, times=2)
    result = run(loki.url, errors, attempts=3)
    assert len(result.lines) == 15
    assert len(loki.received()) == 3


@pytest.mark.parametrize(
    ("status", "message"),
    [(429, "too many outstanding requests"), (500, "failed to get chunks"), (503, "unavailable")],
)
def test_throttling_or_failure_on_every_attempt_is_unavailable(
    loki: FakeLoki, status: int, message: str
) -> None:
    loki.fail(status, times=None)
    with pytest.raises(LokiUnavailable, match=f"HTTP {status}: .*{message}"):
        run(loki.url, errors, attempts=2)
    assert len(loki.received()) == 2


def test_an_answer_that_is_not_lokis_is_unavailable(loki: FakeLoki) -> None:
    loki.fail(200, "<html><body>Sign in</body></html>")
    with pytest.raises(LokiUnavailable, match="not a Loki API answer"):
        run(loki.url, errors)
    assert len(loki.received()) == 1


def test_a_wrong_path_prefix_is_unavailable_not_the_users_fault(loki: FakeLoki) -> None:
    with pytest.raises(LokiUnavailable, match="HTTP 404: 404 page not found"):
        run(loki.url + "/loki", errors)
    assert len(loki.requests) == 1


def test_a_loki_that_never_answers_is_unavailable_within_the_timeout(loki: FakeLoki) -> None:
    loki.hang(times=None)
    started = time.monotonic()
    with pytest.raises(LokiUnavailable, match=r"ReadTimeout after 0\.3 s"):
        run(loki.url, errors, timeout_seconds=0.3, attempts=3)
    assert time.monotonic() - started < 1.0  # a slow query is not asked again
    assert len(loki.received()) == 1


def test_a_closed_port_is_unavailable_after_the_retries() -> None:
    started = time.monotonic()
    with pytest.raises(LokiUnavailable, match="ConnectError"):
        run(f"http://127.0.0.1:{free_port()}", errors, attempts=3)
    # Two waits of the exponential backoff (0.2 s, then 0.4 s, each plus jitter).
    assert time.monotonic() - started >= 0.6


def test_no_base_url_is_not_configured() -> None:
    with pytest.raises(LokiNotConfigured, match="LOKI_URL"):
        run("  ", errors)
    assert issubclass(LokiNotConfigured, LokiUnavailable)  # callers may treat it as no evidence
