"""Specification of the OpenSLO v1 conversion (pure): what is imported, what is refused and
why, and that an export imports back to the same SLOs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from reliability_studio.slos.openslo import (
    ImportPlan,
    OpenSLOSyntaxError,
    ServiceDefinition,
    ServiceRecord,
    SLORecord,
    build_export,
    parse_documents,
    to_definitions,
    to_documents,
)

Doc = dict[str, Any]


def metric(query: str, **source: Any) -> Doc:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}, **source}}


def service_doc(name: str = "payments", **metadata: Any) -> Doc:
    return {
        "apiVersion": "openslo/v1",
        "kind": "Service",
        "metadata": {"name": name, **metadata},
        "spec": {"description": "Takes the money"},
    }


def ratio_spec(**ratio: Any) -> Doc:
    body = {
        "counter": True,
        "bad": metric('http_requests_total{job="api",code=~"5.."}'),
        "total": metric('http_requests_total{job="api"}'),
    }
    return {"ratioMetric": {**body, **ratio}}


def sli_doc(name: str = "errors", spec: Doc | None = None) -> Doc:
    return {
        "apiVersion": "openslo/v1",
        "kind": "SLI",
        "metadata": {"name": name},
        "spec": spec if spec is not None else ratio_spec(),
    }


def slo_doc(name: str = "api-availability", **spec: Any) -> Doc:
    body: Doc = {
        "description": "Requests that do not fail",
        "service": "payments",
        "indicator": {"metadata": {"name": "api-errors"}, "spec": ratio_spec()},
        "timeWindow": [{"duration": "30d", "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"displayName": "Good", "target": 0.999}],
    }
    body.update(spec)
    return {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": name}, "spec": body}


def dump(*documents: Any) -> str:
    return yaml.safe_dump_all(list(documents), sort_keys=False)


def plan_of(*documents: Any) -> ImportPlan:
    return to_definitions(parse_documents(dump(*documents)))


def messages(plan: ImportPlan) -> list[str]:
    return [str(error) for error in plan.errors]


# --- what is imported ----------------------------------------------------------------------


def test_a_service_and_an_slo_with_a_bad_total_ratio() -> None:
    plan = plan_of(service_doc(displayName="Payment Service"), slo_doc())

    assert plan.errors == []
    assert plan.services == [ServiceDefinition("Payment Service", "Takes the money")]
    [slo] = plan.slos
    assert slo.service == "Payment Service"
    assert slo.name == "api-availability"
    assert slo.objective == 99.9
    assert (slo.window_days, slo.calendar_period, slo.timezone) == (30, None, "UTC")
    assert slo.description == "Requests that do not fail"
    assert slo.sli == {
        "kind": "ratio",
        "errors": 'http_requests_total{job="api",code=~"5.."}',
        "total": 'http_requests_total{job="api"}',
    }


def test_display_name_names_the_slo() -> None:
    document = slo_doc()
    document["metadata"]["displayName"] = "API Availability"
    [slo] = plan_of(service_doc(), document).slos
    assert slo.name == "API Availability"


def test_good_total_ratio_by_indicator_ref() -> None:
    spec = ratio_spec(good=metric('http_requests_total{code!~"5.."}'))
    del spec["ratioMetric"]["bad"]
    document = slo_doc(indicatorRef="good-requests")
    del document["spec"]["indicator"]
    plan = plan_of(sli_doc("good-requests", spec), document)

    assert plan.errors == []
    assert plan.slos[0].sli == {
        "kind": "ratio",
        "good": 'http_requests_total{code!~"5.."}',
        "total": 'http_requests_total{job="api"}',
    }
    assert plan.ignored == []


def test_a_service_not_in_the_upload_is_named_by_spec_service() -> None:
    plan = plan_of(slo_doc(service="checkout"))
    assert plan.errors == []
    assert plan.services == [ServiceDefinition("checkout")]
    assert plan.slos[0].service == "checkout"


@pytest.mark.parametrize(
    ("duration", "days"), [("30d", 30), ("28d", 28), ("4w", 28), ("720h", 30), ("1d", 1)]
)
def test_rolling_windows_in_whole_days(duration: str, days: int) -> None:
    plan = plan_of(slo_doc(timeWindow=[{"duration": duration, "isRolling": True}]))
    assert plan.errors == []
    assert (plan.slos[0].window_days, plan.slos[0].calendar_period) == (days, None)


@pytest.mark.parametrize(
    ("duration", "period", "days"), [("1M", "month", 30), ("1Q", "quarter", 90)]
)
def test_calendar_windows(duration: str, period: str, days: int) -> None:
    window = {
        "duration": duration,
        "calendar": {"startTime": "2024-01-01 00:00:00", "timeZone": "Europe/Paris"},
        "isRolling": False,
    }
    plan = plan_of(slo_doc(timeWindow=[window]))
    assert plan.errors == []
    slo = plan.slos[0]
    assert (slo.calendar_period, slo.timezone, slo.window_days) == (period, "Europe/Paris", days)


def test_an_unquoted_start_time_and_no_time_zone_mean_utc() -> None:
    text = dump(slo_doc()).replace(
        "- duration: 30d\n    isRolling: true",
        "- duration: 1M\n    calendar:\n      startTime: 2024-04-01 00:00:00",
    )
    plan = to_definitions(parse_documents(text))
    assert plan.errors == []
    assert (plan.slos[0].calendar_period, plan.slos[0].timezone) == ("month", "UTC")


@pytest.mark.parametrize(
    ("objective", "percent"),
    [({"target": 0.999}, 99.9), ({"target": 0.9995}, 99.95), ({"targetPercent": 99.5}, 99.5)],
)
def test_targets_become_exact_percentages(objective: Doc, percent: float) -> None:
    plan = plan_of(slo_doc(objectives=[objective]))
    assert plan.errors == []
    assert plan.slos[0].objective == percent


@pytest.mark.parametrize(
    ("le", "threshold"), [('le="0.3"', 0.3), ('le="1"', 1.0), ('le=~"1|1\\\\.0"', 1.0)]
)
def test_a_bucket_over_its_count_is_a_latency_sli(le: str, threshold: float) -> None:
    spec = ratio_spec(
        good=metric(f'http_request_duration_seconds_bucket{{job="api",{le}}}'),
        total=metric('http_request_duration_seconds_count{job="api"}'),
    )
    del spec["ratioMetric"]["bad"]
    plan = plan_of(slo_doc(indicator={"spec": spec}))
    assert plan.errors == []
    assert plan.slos[0].sli == {
        "kind": "latency",
        "histogram": 'http_request_duration_seconds_bucket{job="api"}',
        "threshold_seconds": threshold,
    }


def test_a_bucket_over_a_count_of_other_series_stays_a_ratio() -> None:
    spec = ratio_spec(
        good=metric('http_request_duration_seconds_bucket{job="api",le="0.3"}'),
        total=metric('http_request_duration_seconds_count{job="web"}'),
    )
    del spec["ratioMetric"]["bad"]
    plan = plan_of(slo_doc(indicator={"spec": spec}))
    assert plan.slos[0].sli["kind"] == "ratio"


def test_data_sources_and_unused_slis_are_reported_as_ignored() -> None:
    source = {
        "apiVersion": "openslo/v1",
        "kind": "DataSource",
        "metadata": {"name": "prom"},
        "spec": {"type": "Prometheus", "connectionDetails": {"url": "http://prom:9090"}},
    }
    spec = ratio_spec(total={"metricSource": {"metricSourceRef": "prom", "spec": {"query": "x"}}})
    plan = plan_of(source, sli_doc("unused"), slo_doc(indicator={"spec": spec}))

    assert plan.errors == []
    assert plan.slos[0].sli["total"] == "x"
    assert [(item.kind, item.name) for item in plan.ignored] == [
        ("DataSource", "prom"),
        ("SLI", "unused"),
    ]
    assert "PROMETHEUS_URL" in plan.ignored[0].reason


def test_empty_documents_are_skipped() -> None:
    plan = to_definitions(parse_documents("---\n" + dump(slo_doc()) + "---\n"))
    assert plan.errors == []
    assert len(plan.slos) == 1


# --- what is refused -----------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def change(document: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return change


def _delete(path: str) -> Callable[[Doc], None]:
    def change(document: Doc) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return change


RATIO = "spec.indicator.spec.ratioMetric"

REFUSALS = [
    pytest.param(
        _set("spec.budgetingMethod", "Timeslices"),
        "spec.budgetingMethod",
        'SLO "api-availability": spec.budgetingMethod: Timeslices is not supported; '
        "use Occurrences",
        id="timeslices",
    ),
    pytest.param(
        _set("spec.budgetingMethod", "RatioTimeslices"),
        "spec.budgetingMethod",
        "RatioTimeslices is not supported; use Occurrences",
        id="ratio-timeslices",
    ),
    pytest.param(
        _delete("spec.budgetingMethod"),
        "spec.budgetingMethod",
        "is required; use Occurrences",
        id="no-budgeting-method",
    ),
    pytest.param(
        _set("spec.objectives", [{"target": 0.99}, {"target": 0.999}]),
        "spec.objectives",
        "2 objectives are not supported",
        id="two-objectives",
    ),
    pytest.param(
        _set("spec.objectives.0.indicatorRef", "other"),
        "spec.objectives.0.indicatorRef",
        "composite SLOs (an indicator per objective) are not supported",
        id="composite",
    ),
    pytest.param(
        _set("spec.objectives.0", {"op": "lte", "value": 0.3, "target": 0.99}),
        "spec.objectives.0.op",
        "threshold objectives (op, value) are not supported",
        id="threshold-objective",
    ),
    pytest.param(
        _set("spec.objectives.0.timeSliceTarget", 0.9),
        "spec.objectives.0.timeSliceTarget",
        "time slices are not supported",
        id="time-slice-target",
    ),
    pytest.param(
        _set("spec.objectives.0.target", 1),
        "spec.objectives.0.target",
        "must be between 0 and 1",
        id="target-1",
    ),
    pytest.param(
        _set("spec.objectives.0.targetPercent", 99.9),
        "spec.objectives.0.targetPercent",
        "give target or targetPercent, not both",
        id="target-and-percent",
    ),
    pytest.param(
        _set("spec.objectives.0", {"targetPercent": 100}),
        "spec.objectives.0.targetPercent",
        "less than 100",
        id="percent-100",
    ),
    pytest.param(
        _set("spec.indicator.spec", {"thresholdMetric": metric("up")}),
        "spec.indicator.spec.thresholdMetric",
        "thresholdMetric is not supported",
        id="threshold-metric",
    ),
    pytest.param(
        _set(f"{RATIO}.counter", False),
        f"{RATIO}.counter",
        "counter: false (gauges) is not supported",
        id="gauge-ratio",
    ),
    pytest.param(
        _set("spec.indicator.spec.ratioMetric", {"rawType": "failure", "raw": metric("x")}),
        f"{RATIO}.raw",
        "precomputed ratios (raw, rawType) are not supported",
        id="raw",
    ),
    pytest.param(
        _set(f"{RATIO}.good", metric("x")),
        f"{RATIO}.bad",
        "give good or bad, not both",
        id="good-and-bad",
    ),
    pytest.param(_delete(f"{RATIO}.total"), f"{RATIO}.total", "is required", id="no-total"),
    pytest.param(
        _set(f"{RATIO}.bad.metricSource.type", "Datadog"),
        f"{RATIO}.bad.metricSource.type",
        "Datadog is not supported; only Prometheus metric sources are",
        id="datadog",
    ),
    pytest.param(
        _set(
            f"{RATIO}.bad.metricSource.spec.query", 'sum(rate(http_requests_total{code="500"}[5m]))'
        ),
        f"{RATIO}.bad.metricSource.spec.query",
        "must be a plain series selector",
        id="expression-query",
    ),
    pytest.param(
        _set(f"{RATIO}.total.metricSource.spec.query", "http_requests_total{"),
        f"{RATIO}.total.metricSource.spec.query",
        "is not valid PromQL",
        id="invalid-promql",
    ),
    pytest.param(
        _set(f"{RATIO}.total.metricSource", {"metricSourceRef": "nowhere", "spec": {"query": "x"}}),
        f"{RATIO}.total.metricSource.metricSourceRef",
        'no DataSource named "nowhere" in this upload',
        id="unknown-data-source",
    ),
    pytest.param(
        _set(f"{RATIO}.total.metricSource.spec.promql", "x"),
        f"{RATIO}.total.metricSource.spec.promql",
        "unknown field",
        id="unknown-source-field",
    ),
    pytest.param(
        _set("spec.timeWindow", [{"duration": "1M", "isRolling": True}]),
        "spec.timeWindow.0.duration",
        "a rolling window of 1M is not supported: give whole days",
        id="rolling-month",
    ),
    pytest.param(
        _set("spec.timeWindow", [{"duration": "36h", "isRolling": True}]),
        "spec.timeWindow.0.duration",
        "a rolling window of 36h is not supported",
        id="rolling-36h",
    ),
    pytest.param(
        _set("spec.timeWindow", [{"duration": "366d", "isRolling": True}]),
        "spec.timeWindow.0.duration",
        "less than or equal to 365",
        id="rolling-366d",
    ),
    pytest.param(
        _set("spec.timeWindow", [{"duration": "30d", "isRolling": False}]),
        "spec.timeWindow.0.calendar",
        "is required when isRolling is false",
        id="calendar-without-calendar",
    ),
    pytest.param(
        _set("spec.timeWindow", [{"duration": "1Y", "calendar": {"timeZone": "UTC"}}]),
        "spec.timeWindow.0.duration",
        "a calendar window of 1Y is not supported; use 1M (a month) or 1Q (a quarter)",
        id="calendar-year",
    ),
    pytest.param(
        _set(
            "spec.timeWindow",
            [
                {
                    "duration": "1M",
                    "calendar": {"startTime": "2020-01-21 12:30:00", "timeZone": "UTC"},
                }
            ],
        ),
        "spec.timeWindow.0.calendar.startTime",
        "2020-01-21 12:30:00 is not supported: calendar windows here begin a month on the 1st",
        id="calendar-mid-month",
    ),
    pytest.param(
        _set(
            "spec.timeWindow",
            [
                {
                    "duration": "1Q",
                    "calendar": {"startTime": "2020-02-01 00:00:00", "timeZone": "UTC"},
                }
            ],
        ),
        "spec.timeWindow.0.calendar.startTime",
        "begin a quarter on 1 Jan, Apr, Jul or Oct",
        id="calendar-odd-quarter",
    ),
    pytest.param(
        _set("spec.timeWindow", [{"duration": "1M", "calendar": {"timeZone": "Mars/Olympus"}}]),
        "spec.timeWindow.0.calendar.timeZone",
        "unknown time zone 'Mars/Olympus'",
        id="unknown-time-zone",
    ),
    pytest.param(
        _set("spec.timeWindow", [{"duration": "30d"}, {"duration": "7d"}]),
        "spec.timeWindow",
        "must be a list of exactly one time window",
        id="two-windows",
    ),
    pytest.param(
        _set("spec.alertPolicies", ["page-me"]),
        "spec.alertPolicies",
        "alert policies are not supported",
        id="alert-policies",
    ),
    pytest.param(
        _set("spec.indicatorRef", "errors"),
        "spec.indicatorRef",
        "give indicator or indicatorRef, not both",
        id="indicator-and-ref",
    ),
    pytest.param(
        _delete("spec.indicator"), "spec.indicator", "is required (or indicatorRef)", id="no-sli"
    ),
    pytest.param(
        _set("spec.extra", 1), "spec.extra", "unknown field; expected one of", id="unknown-field"
    ),
    pytest.param(
        _set("apiVersion", "openslo/v1alpha"),
        "apiVersion",
        '"openslo/v1alpha" is not supported; use openslo/v1',
        id="v1alpha",
    ),
    pytest.param(
        _set("metadata", {"displayName": "x"}), "metadata.name", "is required", id="no-name"
    ),
]


@pytest.mark.parametrize(("change", "field", "message"), REFUSALS)
def test_each_refusal_names_the_document_and_the_field(
    change: Callable[[Doc], None], field: str, message: str
) -> None:
    document = slo_doc()
    change(document)
    plan = plan_of(service_doc(), document)

    assert plan.slos == []
    assert [error.field for error in plan.errors] == [f"documents.1.{field}"], messages(plan)
    assert message in str(plan.errors[0])
    assert str(plan.errors[0]).startswith(('SLO "api-availability": ', "SLO #2: "))


def test_an_unknown_indicator_ref_is_refused() -> None:
    document = slo_doc(indicatorRef="missing")
    del document["spec"]["indicator"]
    plan = plan_of(document)
    assert messages(plan) == [
        'SLO "api-availability": spec.indicatorRef: no SLI named "missing" in this upload; '
        "add its SLI document or give the indicator inline"
    ]


def test_errors_of_a_referenced_sli_are_reported_on_the_sli_once() -> None:
    first = slo_doc("first", indicatorRef="gauge")
    second = slo_doc("second", indicatorRef="gauge")
    for document in (first, second):
        del document["spec"]["indicator"]
    plan = plan_of(sli_doc("gauge", ratio_spec(counter=False)), first, second)

    assert plan.slos == []
    assert [error.field for error in plan.errors] == ["documents.0.spec.ratioMetric.counter"]
    assert str(plan.errors[0]).startswith('SLI "gauge": spec.ratioMetric.counter: counter: false')


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("AlertPolicy", "alert policies are not supported"),
        ("AlertCondition", "alert conditions are not supported"),
        ("AlertNotificationTarget", "notification targets are not supported"),
        ("BudgetAdjustment", "BudgetAdjustment is not supported; supported kinds: Service"),
    ],
)
def test_kinds_that_cannot_be_honoured_are_refused(kind: str, message: str) -> None:
    document = {"apiVersion": "openslo/v1", "kind": kind, "metadata": {"name": "x"}, "spec": {}}
    plan = plan_of(document, slo_doc())
    assert [error.field for error in plan.errors] == ["documents.0.kind"]
    assert message in str(plan.errors[0])
    assert str(plan.errors[0]).startswith(f'{kind} "x": kind: ')


def test_a_data_source_of_another_type_is_refused() -> None:
    document = {
        "apiVersion": "openslo/v1",
        "kind": "DataSource",
        "metadata": {"name": "dd"},
        "spec": {"type": "Datadog"},
    }
    plan = plan_of(document)
    assert messages(plan) == [
        'DataSource "dd": spec.type: Datadog is not supported; only Prometheus data sources are'
    ]


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    plan = to_definitions(parse_documents("- a\n- b\n"))
    assert plan.errors[0].field == "documents.0"
    assert "a document must be a mapping" in str(plan.errors[0])


def test_two_slos_of_one_service_and_name_are_refused() -> None:
    plan = plan_of(slo_doc("same"), slo_doc("same"))
    assert [error.field for error in plan.errors] == ["documents.1.metadata.name"]
    assert "another SLO of this upload has the name 'same'" in str(plan.errors[0])


def test_every_problem_of_every_document_is_reported_at_once() -> None:
    first = slo_doc("first", budgetingMethod="Timeslices")
    second = slo_doc("second", objectives=[{"target": 0.9}, {"target": 0.8}])
    second["spec"]["timeWindow"] = [{"duration": "1Y", "isRolling": True}]
    plan = plan_of(first, second, slo_doc("fine"))

    assert [error.field for error in plan.errors] == [
        "documents.0.spec.budgetingMethod",
        "documents.1.spec.timeWindow.0.duration",
        "documents.1.spec.objectives",
    ]
    assert [slo.name for slo in plan.slos] == ["fine"]  # the caller writes nothing anyway


def test_an_empty_upload_is_refused() -> None:
    plan = to_definitions(parse_documents("# nothing\n"))
    assert messages(plan) == ["document #1: the upload contains no OpenSLO documents"]


@pytest.mark.parametrize("text", ["a: [1, 2\n", "key: value\n  bad indent: x\n", "\t- x"])
def test_malformed_yaml_is_a_syntax_error(text: str) -> None:
    with pytest.raises(OpenSLOSyntaxError, match="not valid YAML"):
        parse_documents(text)


# --- export --------------------------------------------------------------------------------

PAYMENTS = ServiceRecord("Payment Service", "Takes the money")
CHECKOUT = ServiceRecord("checkout")


def record(
    name: str, sli: Doc | None, service: ServiceRecord = PAYMENTS, **fields: Any
) -> SLORecord:
    values: dict[str, Any] = {
        "objective": 99.9,
        "window_days": 30,
        "calendar_period": None,
        "timezone": "UTC",
        "description": None,
    }
    values.update(fields)
    return SLORecord(service=service, name=name, sli=sli, **values)


RATIO_ERRORS = {
    "kind": "ratio",
    "errors": 'http_requests_total{code=~"5.."}',
    "total": "http_requests_total",
}
RATIO_GOOD = {
    "kind": "ratio",
    "good": 'rpc_ok_total{svc="a\\"b"}',
    "total": 'rpc_total{svc="a\\"b"}',
}
LATENCY = {
    "kind": "latency",
    "histogram": 'http_request_duration_seconds_bucket{job="api"}',
    "threshold_seconds": 0.3,
}
LATENCY_ONE_SECOND = {
    "kind": "latency",
    "histogram": "rpc_duration_seconds_bucket",
    "threshold_seconds": 1.0,
}
LATENCY_ESCAPED = {
    "kind": "latency",
    "histogram": 'h_bucket{path="/a\\"b\\\\c",method!~"GET|HEAD"}',
    "threshold_seconds": 2.5,
}

EXPORTABLE = [
    record("API Availability", RATIO_ERRORS, description="Requests that do not fail"),
    record("api availability", RATIO_GOOD, objective=99.95, window_days=28),  # same slug
    record("Latency p95 < 300ms", LATENCY, calendar_period="month", timezone="Europe/Paris"),
    record(
        "Zahlungsfluss Verfügbarkeit",
        LATENCY_ONE_SECOND,
        service=CHECKOUT,
        objective=95.5,
        calendar_period="quarter",
        window_days=90,
    ),
    record("API Availability", RATIO_ERRORS, service=CHECKOUT, objective=99.0, window_days=7),
    record("Escaped", LATENCY_ESCAPED, service=CHECKOUT),
]


def as_imported(slo: SLORecord) -> tuple[Any, ...]:
    return (
        slo.service.name,
        slo.name,
        slo.objective,
        slo.window_days,
        slo.calendar_period,
        slo.timezone,
        {key: value for key, value in (slo.sli or {}).items() if value is not None},
        slo.description,
    )


def test_export_then_import_gives_the_same_slos() -> None:
    text = to_documents(EXPORTABLE)
    plan = to_definitions(parse_documents(text))

    assert plan.errors == []
    imported = [
        (
            s.service,
            s.name,
            s.objective,
            s.window_days,
            s.calendar_period,
            s.timezone,
            s.sli,
            s.description,
        )
        for s in plan.slos
    ]
    assert sorted(imported, key=repr) == sorted(map(as_imported, EXPORTABLE), key=repr)
    assert plan.services == [
        ServiceDefinition("Payment Service", "Takes the money"),
        ServiceDefinition("checkout"),
    ]


def test_export_writes_openslo_v1_documents() -> None:
    documents = list(yaml.safe_load_all(to_documents([EXPORTABLE[0], EXPORTABLE[2]])))

    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("Service", "payment-service"),
        ("SLO", "api-availability"),
        ("SLO", "latency-p95-300ms"),
    ]
    service, ratio, latency = documents
    assert service["metadata"]["displayName"] == "Payment Service"
    assert ratio["spec"]["service"] == "payment-service"
    assert ratio["spec"]["budgetingMethod"] == "Occurrences"
    assert ratio["spec"]["objectives"] == [{"target": 0.999}]
    assert ratio["spec"]["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    assert ratio["spec"]["indicator"]["spec"]["ratioMetric"] == {
        "counter": True,
        "bad": {
            "metricSource": {
                "type": "Prometheus",
                "spec": {"query": 'http_requests_total{code=~"5.."}'},
            }
        },
        "total": {"metricSource": {"type": "Prometheus", "spec": {"query": "http_requests_total"}}},
    }
    good = latency["spec"]["indicator"]["spec"]["ratioMetric"]["good"]
    assert good["metricSource"]["spec"]["query"] == (
        'http_request_duration_seconds_bucket{job="api",le="0.3"}'
    )
    assert latency["spec"]["timeWindow"] == [
        {
            "duration": "1M",
            "calendar": {"startTime": "2020-01-01 00:00:00", "timeZone": "Europe/Paris"},
            "isRolling": False,
        }
    ]


def test_slos_openslo_cannot_express_are_listed_not_dropped() -> None:
    manual = record("Manual\nSLO", None)
    gauge = record("Probe", {"kind": "bool_gauge", "metric": "probe_success"})
    query = record(
        "Custom",
        {
            "kind": "query",
            "error_ratio_query": "sum(rate(e[{{window}}])) / sum(rate(t[{{window}}]))",
        },
    )
    export = build_export([EXPORTABLE[0], manual, gauge, query])

    assert export.exported == 1
    assert [item.name for item in export.not_exported] == ["Custom", "Manual\nSLO", "Probe"]
    header = [line for line in export.text.splitlines() if line.startswith("# not exportable:")]
    assert header == [
        '# not exportable: "Custom" of service "Payment Service": a query SLI is a PromQL '
        "error ratio with {{window}}, which OpenSLO has no portable form for",
        '# not exportable: "Manual\\nSLO" of service "Payment Service": a manual SLO '
        "(no SLI) has no OpenSLO indicator",
        '# not exportable: "Probe" of service "Payment Service": a bool_gauge SLI counts '
        "samples of a 0/1 gauge, which an OpenSLO counter ratio cannot express",
    ]
    plan = to_definitions(parse_documents(export.text))
    assert [slo.name for slo in plan.slos] == ["API Availability"]


def test_export_of_a_service_without_slos() -> None:
    documents = list(yaml.safe_load_all(to_documents([], [CHECKOUT])))
    assert documents == [
        {
            "apiVersion": "openslo/v1",
            "kind": "Service",
            "metadata": {"name": "checkout", "displayName": "checkout"},
            "spec": {},
        }
    ]


def test_exported_names_are_rfc1123_labels() -> None:
    long = record("x" * 70 + " !", RATIO_ERRORS)
    again = record("X" * 70, RATIO_ERRORS)
    documents = list(yaml.safe_load_all(to_documents([long, again])))
    names = [d["metadata"]["name"] for d in documents if d["kind"] == "SLO"]
    assert names == ["x" * 63, "x" * 61 + "-2"]


@given(
    objective=st.decimals(min_value="0.001", max_value="99.999", places=5).map(float),
    days=st.integers(min_value=1, max_value=365),
)
def test_objectives_and_windows_survive_the_round_trip(objective: float, days: int) -> None:
    slo = record("Availability", RATIO_ERRORS, objective=objective, window_days=days)
    [imported] = to_definitions(parse_documents(to_documents([slo]))).slos
    assert (imported.objective, imported.window_days) == (objective, days)


def test_a_plan_is_not_changed_by_its_input_being_reused() -> None:
    document = slo_doc()
    before = copy.deepcopy(document)
    plan_of(document)
    assert document == before
