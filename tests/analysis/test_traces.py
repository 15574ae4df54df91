"""Traces as evidence: the span where an error originates, failing and slow operations, and the
`trace_errors` findings that the timeline shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reliability_studio.analysis.findings import DOWNSTREAM_PREFIX, ERROR_SURGE, LATENCY
from reliability_studio.analysis.traces import (
    SlowOperation,
    TraceErrors,
    error_origin,
    slow_operations,
    summarize_errors,
    trace_findings,
)
from reliability_studio.telemetry.tempo import AttributeValue, Span, Trace

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def span(
    span_id: str,
    service: str,
    name: str,
    *,
    parent: str | None = None,
    error: bool = False,
    ms: float = 10.0,
    at: float = 0.0,
    kind: str = "server",
    trace_id: str = "t1",
    attributes: dict[str, AttributeValue] | None = None,
) -> Span:
    start = T0 + timedelta(seconds=at)
    duration = timedelta(milliseconds=ms)
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=name,
        kind=kind,
        start=start,
        end=start + duration,
        duration=duration,
        is_error=error,
        status_message="failed" if error else None,
        attributes=attributes or {},
        resource_attributes={"service.name": service},
    )


def checkout_to_payments(trace_id: str, *, at: float = 0.0, fail: bool = True) -> Trace:
    """checkout GET /checkout -> checkout client POST /charge -> payments POST /charge."""
    return Trace(
        trace_id,
        (
            span("a", "checkout", "GET /checkout", error=fail, at=at, trace_id=trace_id),
            span(
                "b",
                "checkout",
                "POST /charge",
                parent="a",
                kind="client",
                error=fail,
                at=at,
                trace_id=trace_id,
            ),
            span("c", "payments", "POST /charge", parent="b", error=fail, at=at, trace_id=trace_id),
            span("d", "payments", "SELECT", parent="c", kind="client", at=at, trace_id=trace_id),
        ),
    )


def failing_in_checkout(trace_id: str, *, at: float = 0.0) -> Trace:
    return Trace(
        trace_id,
        (
            span("a", "checkout", "GET /cart", error=True, at=at, trace_id=trace_id),
            span("b", "payments", "POST /charge", parent="a", at=at, trace_id=trace_id),
        ),
    )


def timed(trace_id: str, ms: float, *, service: str = "checkout", name: str = "GET /x") -> Trace:
    return Trace(trace_id, (span("a", service, name, ms=ms, trace_id=trace_id),))


def test_origin_is_the_deepest_error_span_whose_children_did_not_fail() -> None:
    origin = error_origin(checkout_to_payments("t1"))

    assert origin is not None
    assert (origin.service_name, origin.name) == ("payments", "POST /charge")


def test_origin_is_the_service_itself_when_its_callees_succeeded() -> None:
    origin = error_origin(failing_in_checkout("t1"))

    assert origin is not None
    assert (origin.service_name, origin.name) == ("checkout", "GET /cart")


def test_a_trace_without_errors_has_no_origin() -> None:
    assert error_origin(checkout_to_payments("t1", fail=False)) is None


def test_uninstrumented_callee_is_named_by_the_client_spans_peer_service() -> None:
    trace = Trace(
        "t1",
        (
            span("a", "payments", "POST /charge", error=True),
            span(
                "b",
                "payments",
                "INSERT",
                parent="a",
                kind="client",
                error=True,
                attributes={"peer.service": "postgres"},
            ),
        ),
    )

    errors = summarize_errors("payments", [trace])

    assert errors.origins == {"postgres": 1}


def test_summary_counts_failing_traces_origins_and_examples() -> None:
    traces = [checkout_to_payments(f"t{i}", at=i) for i in range(3)]
    traces += [checkout_to_payments("ok", fail=False)]

    errors = summarize_errors("checkout", traces)

    assert (errors.traces, errors.error_traces) == (4, 3)
    assert errors.origins == {"payments": 3}
    assert errors.trace_ids == ["t0", "t1", "t2"]
    assert errors.first_error_at == T0


def test_top_operations_are_ordered_by_error_count() -> None:
    traces = [checkout_to_payments("p1"), checkout_to_payments("p2"), failing_in_checkout("c1")]

    errors = summarize_errors("checkout", traces)

    assert errors.top_operations == [
        ("checkout", "GET /checkout", 2),
        ("checkout", "POST /charge", 2),
        ("payments", "POST /charge", 2),
        ("checkout", "GET /cart", 1),
    ]


def test_operations_slower_than_the_baseline_p95_by_min_ratio_are_reported() -> None:
    baseline = [timed(f"b{i}", 100) for i in range(10)]
    incident = [timed(f"i{i}", 350 + i) for i in range(10)]

    slow = slow_operations(incident, baseline, "checkout")

    assert len(slow) == 1
    op = slow[0]
    assert (op.service, op.operation) == ("checkout", "GET /x")
    assert op.p95 == timedelta(milliseconds=359)
    assert op.baseline_p95 == timedelta(milliseconds=100)
    assert op.ratio > 3.5
    assert op.example_trace_id == "i9"


def test_operations_within_min_ratio_of_the_baseline_are_not_slow() -> None:
    baseline = [timed(f"b{i}", 100) for i in range(10)]
    incident = [timed(f"i{i}", 150) for i in range(10)]

    assert slow_operations(incident, baseline, "checkout") == []


def test_operations_with_fewer_than_min_samples_are_ignored() -> None:
    baseline = [timed(f"b{i}", 100) for i in range(10)]
    incident = [timed(f"i{i}", 900) for i in range(4)]

    assert slow_operations(incident, baseline, "checkout", min_samples=5) == []


def test_downstream_calls_of_the_service_are_compared_too() -> None:
    def call(trace_id: str, ms: float) -> Trace:
        return Trace(
            trace_id,
            (
                span("a", "checkout", "GET /checkout", ms=ms + 5, trace_id=trace_id),
                span("b", "payments", "POST /charge", parent="a", ms=ms, trace_id=trace_id),
            ),
        )

    slow = slow_operations(
        [call(f"i{i}", 800) for i in range(6)], [call(f"b{i}", 100) for i in range(6)], "checkout"
    )

    assert {(op.service, op.operation) for op in slow} == {
        ("checkout", "GET /checkout"),
        ("payments", "POST /charge"),
    }


def test_spans_of_unrelated_services_are_not_compared() -> None:
    baseline = [timed(f"b{i}", 100, service="search") for i in range(10)]
    incident = [timed(f"i{i}", 900, service="search") for i in range(10)]

    assert slow_operations(incident, baseline, "checkout") == []


def test_error_finding_from_downstream_names_the_origin_and_signals_downstream() -> None:
    traces = [checkout_to_payments(f"t{i}") for i in range(4)] + [
        checkout_to_payments("ok", fail=False)
    ]
    errors = summarize_errors("checkout", traces)

    [finding] = trace_findings(
        "checkout",
        errors,
        [],
        query='{ resource.service.name = "checkout" && status = error }',
        link_template="http://tempo/trace/{trace_id}",
    )

    assert (finding.kind, finding.source, finding.service) == ("trace_errors", "tempo", "checkout")
    assert finding.title == (
        "4 of 5 traces of checkout failed; errors originate in payments (POST /charge)"
    )
    assert finding.signals == {ERROR_SURGE, DOWNSTREAM_PREFIX + "payments"}
    assert finding.link == "http://tempo/trace/t0"
    assert finding.query == '{ resource.service.name = "checkout" && status = error }'
    assert finding.started_at == T0
    assert finding.figures["origins"] == {"payments": 4}
    assert finding.figures["trace_ids"] == ["t0", "t1", "t2", "t3"]
    assert finding.figures["top_operations"][0] == {
        "service": "checkout",
        "operation": "GET /checkout",
        "errors": 4,
    }


def test_errors_originating_in_the_service_itself_have_no_downstream_signal() -> None:
    errors = summarize_errors("checkout", [failing_in_checkout(f"c{i}") for i in range(3)])

    [finding] = trace_findings("checkout", errors, [], query="q", link_template=None)

    assert finding.signals == {ERROR_SURGE}
    assert "originate in checkout itself (GET /cart)" in finding.title
    assert finding.link is None


def test_link_template_braces_other_than_trace_id_are_kept() -> None:
    errors = summarize_errors("checkout", [failing_in_checkout("abc")])
    template = 'http://grafana/explore?left={"queries":[{"query":"{trace_id}"}]}'

    [finding] = trace_findings("checkout", errors, [], query="q", link_template=template)

    assert finding.link == 'http://grafana/explore?left={"queries":[{"query":"abc"}]}'


def test_slow_operations_give_a_latency_finding() -> None:
    slow = [
        SlowOperation(
            service="payments",
            operation="POST /charge",
            p95=timedelta(milliseconds=2400),
            baseline_p95=timedelta(milliseconds=300),
            ratio=8.0,
            samples=40,
            baseline_samples=200,
            first_slow_at=T0,
            example_trace_id="slow1",
        )
    ]
    no_errors = TraceErrors("checkout", 40, 0, [], {}, [], None, [])

    [finding] = trace_findings("checkout", no_errors, slow, query="q", link_template="x/{trace_id}")

    assert (finding.kind, finding.source) == ("trace_errors", "tempo")
    assert finding.signals == {LATENCY}
    assert "payments POST /charge p95 2.4 s vs 300 ms (8.0x)" in finding.title
    assert finding.link == "x/slow1"
    assert finding.started_at == T0
    assert finding.score == 0.9
    assert finding.figures["operations"][0]["p95_ms"] == 2400.0


def test_no_errors_and_nothing_slow_give_no_findings() -> None:
    errors = summarize_errors("checkout", [checkout_to_payments("ok", fail=False)])

    assert trace_findings("checkout", errors, [], query="q", link_template=None) == []
