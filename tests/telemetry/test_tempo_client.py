"""The Tempo client against a server that answers as Tempo's documented HTTP API does.

Tempo cannot be installed here, so these are contract tests: `tests.support.fake_tempo` follows
the documented API (and Tempo's code where the docs are silent), down to the zero values that
Tempo leaves out and the base64 ids of its trace answers.

The kinds of error matter to the callers: `TempoQueryError` is the user's query (not retried),
`TempoTraceNotFound` a trace Tempo does not have, `TempoUnavailable` everything that is not the
user's fault (retried when it may pass: connection errors, timeouts, 5xx, 429).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from reliability_studio.telemetry.tempo import (
    MatchedSpan,
    SpanSet,
    TempoClient,
    TempoNotConfigured,
    TempoQueryError,
    TempoTraceNotFound,
    TempoUnavailable,
    Trace,
    TraceSummary,
)
from tests.support.fake_tempo import FakeSpan, FakeTempo, FakeTrace
from tests.support.postgres import free_port

T = TypeVar("T")

T0 = 1_700_000_000  # unix seconds
NS = 1_000_000_000
MS = 1_000_000

ERROR_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
HEALTHY_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ORPHAN_TRACE_ID = "0000f067aa0ba902b7a3ce929d0e0e47"  # Tempo's search drops the zeros

ERROR_TRACE = FakeTrace(
    ERROR_TRACE_ID,
    [
        FakeSpan(
            "b7ad6b7169203331",
            "GET /checkout",
            "frontend",
            T0 * NS,
            T0 * NS + 250 * MS,
            error=True,
            status_message="upstream answered 500",
            attributes={"http.request.method": "GET", "http.response.status_code": 500},
            resource={"k8s.pod.name": "frontend-7d9c"},
        ),
        FakeSpan(
            "00f067aa0ba902b7",
            "POST /api/checkout",
            "checkout",
            T0 * NS + 10 * MS,
            T0 * NS + 240 * MS,
            parent_id="b7ad6b7169203331",
            error=True,
            status_message="payment declined",
        ),
        FakeSpan(
            "53995c3f42cd8ad8",
            "SELECT orders",
            "checkout",
            T0 * NS + 20 * MS,
            T0 * NS + 30 * MS,
            parent_id="00f067aa0ba902b7",
            kind="SPAN_KIND_CLIENT",
            attributes={"db.system": "postgresql"},
        ),
        FakeSpan(
            "e457b5a2e4d86bd1",
            "charge",
            "payments",
            T0 * NS + 40 * MS,
            T0 * NS + 230 * MS,
            parent_id="00f067aa0ba902b7",
            error=True,
        ),
    ],
)
HEALTHY_TRACE = FakeTrace(
    HEALTHY_TRACE_ID,
    [
        FakeSpan(
            "a2fb4a1d1a96d312", "GET /cart", "frontend", (T0 + 60) * NS, (T0 + 60) * NS + 120 * MS
        ),
        FakeSpan(
            "c1f2e3d4b5a69788",
            "GET /api/cart",
            "checkout",
            (T0 + 60) * NS + 5 * MS,
            (T0 + 60) * NS + 100 * MS,
            parent_id="a2fb4a1d1a96d312",
        ),
    ],
)
# Only a child whose parent never arrived, and shorter than a millisecond.
ORPHAN_TRACE = FakeTrace(
    ORPHAN_TRACE_ID,
    [
        FakeSpan(
            "1111111111111111",
            "consume order",
            "checkout",
            (T0 + 120) * NS,
            (T0 + 120) * NS + 400_000,
            parent_id="2222222222222222",
            kind="SPAN_KIND_CONSUMER",
        )
    ],
)

START = datetime.fromtimestamp(T0 - 60, UTC)
END = datetime.fromtimestamp(T0 + 300, UTC)
CHECKOUT = '{ resource.service.name = "checkout" }'
CHECKOUT_ERRORS = '{ resource.service.name = "checkout" && status = error }'


@pytest.fixture
def tempo() -> Iterator[FakeTempo]:
    """A Tempo (2.x up to 2.8: `batches`, base64 ids) holding the three traces."""
    with FakeTempo([ERROR_TRACE, HEALTHY_TRACE, ORPHAN_TRACE]) as server:
        yield server


def run(url: str, use: Callable[[TempoClient], Awaitable[T]], **options: Any) -> T:
    """`use(client)` with a new client of `url`, in a new event loop."""

    async def main() -> T:
        client = TempoClient(url, **options)
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(main())


def search(url: str, q: str = CHECKOUT, **options: Any) -> list[TraceSummary]:
    return run(url, lambda c: c.search(q, START, END), **options)


def fetch(url: str, trace_id: str = ERROR_TRACE_ID, **options: Any) -> Trace:
    return run(url, lambda c: c.trace(trace_id), **options)


def at(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos // 1000 / 1_000_000, UTC)


# --- search ---------------------------------------------------------------------------------


def test_search_returns_the_matching_traces_newest_first(tempo: FakeTempo) -> None:
    found = search(tempo.url)
    assert [summary.trace_id for summary in found] == [
        ORPHAN_TRACE_ID,
        HEALTHY_TRACE_ID,
        ERROR_TRACE_ID,
    ]


def test_search_summary_carries_the_root_span_start_and_duration(tempo: FakeTempo) -> None:
    summary = next(s for s in search(tempo.url) if s.trace_id == ERROR_TRACE_ID)
    assert summary.root_service_name == "frontend"
    assert summary.root_trace_name == "GET /checkout"
    assert summary.start == datetime.fromtimestamp(T0, UTC)
    assert summary.duration == timedelta(milliseconds=250)


def test_search_span_sets_hold_the_matched_spans(tempo: FakeTempo) -> None:
    summary = next(s for s in search(tempo.url) if s.trace_id == ERROR_TRACE_ID)
    assert summary.span_sets == (
        SpanSet(
            spans=(
                MatchedSpan(
                    span_id="00f067aa0ba902b7",
                    name="POST /api/checkout",
                    start=at(T0 * NS + 10 * MS),
                    duration=timedelta(milliseconds=230),
                    attributes={"service.name": "checkout"},
                ),
                MatchedSpan(
                    span_id="53995c3f42cd8ad8",
                    name="SELECT orders",
                    start=at(T0 * NS + 20 * MS),
                    duration=timedelta(milliseconds=10),
                    attributes={"service.name": "checkout"},
                ),
            ),
            matched=2,
        ),
    )


def test_search_for_errors_finds_only_the_traces_with_error_spans(tempo: FakeTempo) -> None:
    (summary,) = search(tempo.url, CHECKOUT_ERRORS)
    assert summary.trace_id == ERROR_TRACE_ID
    (span_set,) = summary.span_sets
    assert span_set.matched == 1
    assert span_set.spans[0].span_id == "00f067aa0ba902b7"
    assert span_set.spans[0].attributes == {"service.name": "checkout", "status": "error"}


def test_search_tolerates_the_fields_tempo_leaves_out(tempo: FakeTempo) -> None:
    """Under 1 ms there is no durationMs; without a root span, no rootTraceName."""
    orphan = search(tempo.url)[0]
    assert orphan.trace_id == ORPHAN_TRACE_ID
    assert orphan.duration == timedelta(0)
    assert orphan.root_service_name is None  # "<root span not yet received>"
    assert orphan.root_trace_name is None
    assert orphan.span_sets[0].spans[0].duration == timedelta(microseconds=400)


def test_search_pads_the_trace_ids_whose_leading_zeros_tempo_dropped(tempo: FakeTempo) -> None:
    answer = httpx.get(f"{tempo.url}/api/search", params={"q": CHECKOUT}).json()
    assert answer["traces"][0]["traceID"] == "f067aa0ba902b7a3ce929d0e0e47"
    assert search(tempo.url)[0].trace_id == ORPHAN_TRACE_ID


def test_search_sends_start_and_end_as_whole_unix_seconds_widened_outwards(
    tempo: FakeTempo,
) -> None:
    start = datetime.fromtimestamp(T0 - 60, UTC) + timedelta(milliseconds=600)
    end = datetime.fromtimestamp(T0 + 300, UTC) + timedelta(milliseconds=200)
    run(tempo.url, lambda c: c.search(CHECKOUT, start, end))
    (request,) = tempo.requests
    assert request.path == "/api/search"
    assert request.param("start") == str(T0 - 60)
    assert request.param("end") == str(T0 + 301)


def test_search_treats_naive_datetimes_as_utc(tempo: FakeTempo) -> None:
    naive = datetime.fromtimestamp(T0, UTC).replace(tzinfo=None)
    run(tempo.url, lambda c: c.search(CHECKOUT, naive, naive + timedelta(seconds=5)))
    assert tempo.requests[0].param("start") == str(T0)


def test_search_sends_the_query_limit_and_spss(tempo: FakeTempo) -> None:
    run(tempo.url, lambda c: c.search(CHECKOUT_ERRORS, START, END, limit=5, spss=10))
    request = tempo.requests[0]
    assert request.param("q") == CHECKOUT_ERRORS
    assert request.param("limit") == "5"
    assert request.param("spss") == "10"


def test_search_leaves_spss_to_tempo_unless_given(tempo: FakeTempo) -> None:
    search(tempo.url)
    assert "spss" not in tempo.requests[0].params
    assert tempo.requests[0].param("limit") == "20"


def test_search_spss_caps_the_spans_of_each_span_set(tempo: FakeTempo) -> None:
    found = run(tempo.url, lambda c: c.search(CHECKOUT, START, END, spss=1))
    summary = next(s for s in found if s.trace_id == ERROR_TRACE_ID)
    assert len(summary.span_sets[0].spans) == 1
    assert summary.span_sets[0].matched == 2


def test_search_limit_caps_the_traces(tempo: FakeTempo) -> None:
    found = run(tempo.url, lambda c: c.search(CHECKOUT, START, END, limit=1))
    assert [summary.trace_id for summary in found] == [ORPHAN_TRACE_ID]


def test_search_within_one_second_still_asks_for_end_after_start(tempo: FakeTempo) -> None:
    moment = datetime.fromtimestamp(T0, UTC)
    found = run(tempo.url, lambda c: c.search(CHECKOUT_ERRORS, moment, moment))
    assert [summary.trace_id for summary in found] == [ERROR_TRACE_ID]
    assert tempo.requests[0].param("end") == str(T0 + 1)


def test_search_with_end_before_start_is_refused_without_a_request(tempo: FakeTempo) -> None:
    with pytest.raises(TempoQueryError, match="before start"):
        run(tempo.url, lambda c: c.search(CHECKOUT, END, START))
    assert tempo.requests == []


def test_search_that_matches_nothing_is_empty(tempo: FakeTempo) -> None:
    """Tempo then leaves `traces` out altogether."""
    assert search(tempo.url, '{ resource.service.name = "nobody" }') == []


# Verbatim from grafana/tempo docs/sources/tempo/api_docs/pushing-spans-with-http.md: Tempo 2.x
# sends the deprecated `spanSet` beside `spanSets`, and older versions no span `name`.
DOCUMENTED_SEARCH_ANSWER = """{"traces":[{"traceID":"5b8efff798038103d269b633813fc700",
"rootServiceName":"my.service","rootTraceName":"I am a span!","startTimeUnixNano":
"1694718625557000000","durationMs":10000,"spanSet":{"spans":[{"spanID":"eee19b7ec3c1b100",
"startTimeUnixNano":"1694718625557000000","durationNanos":"10000000000","attributes":[{"key":
"service.name","value":{"stringValue":"my.service"}}]}],"matched":1},"spanSets":[{"spans":[{
"spanID":"eee19b7ec3c1b100","startTimeUnixNano":"1694718625557000000","durationNanos":
"10000000000","attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]}],
"matched":1}]}],"metrics":{"inspectedBytes":"292781","completedJobs":1,"totalJobs":1}}"""


def test_search_reads_the_documented_answer_once_despite_both_span_set_keys(
    tempo: FakeTempo,
) -> None:
    tempo.answer_with(200, DOCUMENTED_SEARCH_ANSWER, content_type="application/json")
    (summary,) = search(tempo.url, '{ .service.name = "my.service" }')
    assert summary == TraceSummary(
        trace_id="5b8efff798038103d269b633813fc700",
        root_service_name="my.service",
        root_trace_name="I am a span!",
        start=at(1694718625557000000),
        duration=timedelta(seconds=10),
        span_sets=(
            SpanSet(
                spans=(
                    MatchedSpan(
                        span_id="eee19b7ec3c1b100",
                        name=None,
                        start=at(1694718625557000000),
                        duration=timedelta(seconds=10),
                        attributes={"service.name": "my.service"},
                    ),
                ),
                matched=1,
            ),
        ),
    )


def test_search_reads_the_single_span_set_of_older_tempo(tempo: FakeTempo) -> None:
    answer = json.loads(DOCUMENTED_SEARCH_ANSWER)
    del answer["traces"][0]["spanSets"]
    tempo.answer_with(200, json.dumps(answer), content_type="application/json")
    (summary,) = search(tempo.url)
    assert [span.span_id for span in summary.span_sets[0].spans] == ["eee19b7ec3c1b100"]


# --- trace by id ----------------------------------------------------------------------------


def test_trace_spans_carry_the_service_name_of_their_resource(tempo: FakeTempo) -> None:
    trace = fetch(tempo.url)
    assert [(span.name, span.service_name) for span in trace.spans] == [
        ("GET /checkout", "frontend"),
        ("POST /api/checkout", "checkout"),
        ("SELECT orders", "checkout"),
        ("charge", "payments"),
    ]
    assert trace.spans[0].resource_attributes == {
        "service.name": "frontend",
        "k8s.pod.name": "frontend-7d9c",
    }


def test_trace_spans_carry_kind_times_and_duration(tempo: FakeTempo) -> None:
    query = fetch(tempo.url).spans[2]
    assert query.kind == "client"
    assert query.start == at(T0 * NS + 20 * MS)
    assert query.end == at(T0 * NS + 30 * MS)
    assert query.duration == timedelta(milliseconds=10)
    assert query.start.tzinfo is UTC


def test_trace_links_children_to_their_parent(tempo: FakeTempo) -> None:
    trace = fetch(tempo.url)
    assert trace.spans[0].parent_span_id is None
    children = trace.children_of("00F067AA0BA902B7")
    assert [span.name for span in children] == ["SELECT orders", "charge"]
    assert trace.children_of("53995c3f42cd8ad8") == []


def test_trace_error_spans_carry_the_status_message(tempo: FakeTempo) -> None:
    errors = fetch(tempo.url).error_spans()
    assert [(span.name, span.status_message) for span in errors] == [
        ("GET /checkout", "upstream answered 500"),
        ("POST /api/checkout", "payment declined"),
        ("charge", None),
    ]


def test_trace_ids_sent_in_base64_come_out_as_lowercase_hex(tempo: FakeTempo) -> None:
    trace = fetch(tempo.url)
    assert trace.trace_id == ERROR_TRACE_ID
    assert {span.trace_id for span in trace.spans} == {ERROR_TRACE_ID}
    assert [span.span_id for span in trace.spans] == [
        "b7ad6b7169203331",
        "00f067aa0ba902b7",
        "53995c3f42cd8ad8",
        "e457b5a2e4d86bd1",
    ]


def test_trace_ids_sent_in_hex_come_out_as_lowercase_hex() -> None:
    with FakeTempo([ERROR_TRACE], ids="hex") as tempo:
        trace = fetch(tempo.url)
    assert trace.spans[1].span_id == "00f067aa0ba902b7"
    assert trace.spans[1].parent_span_id == "b7ad6b7169203331"
    assert trace.spans[1].trace_id == ERROR_TRACE_ID


@pytest.mark.parametrize("top_key", ["batches", "resourceSpans"])
@pytest.mark.parametrize("scope_key", ["scopeSpans", "instrumentationLibrarySpans"])
def test_trace_reads_both_top_level_keys_and_both_scope_keys(top_key: Any, scope_key: Any) -> None:
    with FakeTempo([ERROR_TRACE], top_key=top_key, scope_key=scope_key) as tempo:
        trace = fetch(tempo.url)
    assert len(trace.spans) == 4
    assert {span.service_name for span in trace.spans} == {"frontend", "checkout", "payments"}


def test_trace_reads_enums_written_as_numbers_as_the_otlp_spec_has_them() -> None:
    with FakeTempo([ERROR_TRACE], enums="numbers") as tempo:
        trace = fetch(tempo.url)
    assert [span.kind for span in trace.spans] == ["server", "server", "client", "server"]
    assert [span.is_error for span in trace.spans] == [True, True, False, True]


def test_trace_attributes_become_python_values() -> None:
    span = FakeSpan(
        "1234567890abcdef",
        "work",
        "worker",
        T0 * NS,
        T0 * NS + MS,
        attributes={
            "text": "a",
            "count": 3,
            "ratio": 0.5,
            "retried": True,
            "tags": ["x", 2],
            "peer": {"host": "db", "port": 5432},
            "digest": b"\x00\xff",
        },
    )
    with FakeTempo([FakeTrace(HEALTHY_TRACE_ID, [span])]) as tempo:
        trace = fetch(tempo.url, HEALTHY_TRACE_ID)
    assert trace.spans[0].attributes == {
        "text": "a",
        "count": 3,
        "ratio": 0.5,
        "retried": True,
        "tags": ["x", 2],
        "peer": {"host": "db", "port": 5432},
        "digest": b"\x00\xff",
    }


def test_trace_id_is_asked_for_as_32_lowercase_hex_digits(tempo: FakeTempo) -> None:
    trace = fetch(tempo.url, " F067AA0BA902B7A3CE929D0E0E47 ")
    assert trace.trace_id == ORPHAN_TRACE_ID
    assert tempo.requests[0].path == f"/api/traces/{ORPHAN_TRACE_ID}"


@pytest.mark.parametrize("trace_id", ["", "not-hex", "../search", "0" * 33])
def test_a_trace_id_that_is_not_hex_is_refused_without_a_request(
    tempo: FakeTempo, trace_id: str
) -> None:
    with pytest.raises(TempoQueryError, match="not a trace id"):
        fetch(tempo.url, trace_id)
    assert tempo.requests == []


def test_an_unknown_trace_is_not_found_and_not_retried(tempo: FakeTempo) -> None:
    with pytest.raises(TempoTraceNotFound, match="ffffffffffffffffffffffffffffffff"):
        fetch(tempo.url, "f" * 32, attempts=3)
    assert len(tempo.requests) == 1


# --- tenant ---------------------------------------------------------------------------------


def test_the_tenant_is_sent_as_x_scope_orgid() -> None:
    with FakeTempo([ERROR_TRACE], multitenant=True) as tempo:
        assert len(fetch(tempo.url, tenant="team-a").spans) == 4
        run(tempo.url, lambda c: c.search(CHECKOUT, START, END), tenant="team-a")
    assert [request.headers["x-scope-orgid"] for request in tempo.requests] == ["team-a"] * 2


def test_without_a_tenant_a_multitenant_tempo_refuses_and_is_not_retried() -> None:
    with FakeTempo([ERROR_TRACE], multitenant=True) as tempo:
        with pytest.raises(TempoUnavailable, match="HTTP 401: no org id"):
            search(tempo.url, attempts=3)
        assert len(tempo.requests) == 1
        assert "x-scope-orgid" not in tempo.requests[0].headers


# --- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body"), [(500, "internal error"), (429, "job queue full")])
def test_a_transient_failure_is_retried_then_succeeds(
    tempo: FakeTempo, status: int, body: str
) -> None:
    tempo.answer_with(status, body)
    assert len(search(tempo.url, attempts=3)) == 3
    assert len(tempo.requests) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_5xx_and_429_left_after_the_retries_are_unavailable(tempo: FakeTempo, status: int) -> None:
    tempo.answer_with(status, "try later", times=None)
    with pytest.raises(TempoUnavailable, match=f"HTTP {status}: try later"):
        fetch(tempo.url, attempts=2)
    assert len(tempo.requests) == 2


def test_a_query_tempo_refuses_is_a_query_error_with_its_message(tempo: FakeTempo) -> None:
    with pytest.raises(TempoQueryError, match="invalid TraceQL query"):
        search(tempo.url, "{ resource.service.name = }", attempts=3)
    assert len(tempo.requests) == 1


def test_a_400_on_a_trace_is_a_query_error_with_tempos_message(tempo: FakeTempo) -> None:
    tempo.answer_with(400, "trace IDs can't be larger than 128 bits")
    with pytest.raises(TempoQueryError, match="larger than 128 bits"):
        fetch(tempo.url)


def test_a_tempo_that_never_answers_times_out_within_the_timeout(tempo: FakeTempo) -> None:
    tempo.hang(times=None)
    started = time.monotonic()
    with pytest.raises(TempoUnavailable):
        search(tempo.url, attempts=1, timeout_seconds=0.3)
    assert time.monotonic() - started < 1.5


def test_an_answer_trickling_in_is_cut_off_at_the_timeout(tempo: FakeTempo) -> None:
    """Each byte comes before httpx's read timeout; the whole attempt is still bounded."""
    tempo.trickle(times=None)
    started = time.monotonic()
    with pytest.raises(TempoUnavailable, match=r"no answer within 0\.5 s"):
        search(tempo.url, attempts=1, timeout_seconds=0.5)
    assert time.monotonic() - started < 1.5


def test_a_timed_out_attempt_is_retried(tempo: FakeTempo) -> None:
    tempo.hang()
    assert len(search(tempo.url, attempts=2, timeout_seconds=0.3)) == 3
    assert len(tempo.requests) == 2


def test_a_refused_connection_is_unavailable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(TempoUnavailable, match="ConnectError"):
        search(url, attempts=3)
    # Two waits of the exponential backoff (0.2 s, then 0.4 s, each plus jitter).
    assert time.monotonic() - started >= 0.6


def test_an_answer_that_is_not_tempo_json_is_unavailable(tempo: FakeTempo) -> None:
    tempo.answer_with(200, "<html>Grafana</html>", content_type="text/html")
    with pytest.raises(TempoUnavailable, match="not Tempo JSON"):
        search(tempo.url)


def test_a_wrong_path_prefix_is_unavailable_and_not_retried(tempo: FakeTempo) -> None:
    with pytest.raises(TempoUnavailable, match="HTTP 404: 404 page not found"):
        search(tempo.url + "/tempo", attempts=3)
    assert len(tempo.requests) == 1


@pytest.mark.parametrize("url", ["", "   ", "ftp://tempo:3200", "http://"])
def test_without_a_usable_url_tempo_is_not_configured(url: str) -> None:
    with pytest.raises(TempoNotConfigured):
        TempoClient(url)


def test_the_base_url_may_end_with_a_slash(tempo: FakeTempo) -> None:
    assert len(search(tempo.url + "/")) == 3
    assert tempo.requests[0].path == "/api/search"
