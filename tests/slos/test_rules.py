"""Specification of the exported Prometheus rules (slos/rules.py) and of their endpoints and CLI.

Pure tests check the rules' names and expressions; `promtool check rules` (the real binary)
checks that Prometheus accepts them; API tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import typer
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import NoMatchFound
from typer.testing import CliRunner

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.slos import rules_router
from reliability_studio.slos.budget import BURN_WINDOWS
from reliability_studio.slos.engine import SLI_ADAPTER
from reliability_studio.slos.models import SLO
from reliability_studio.slos.promql import window_queries
from reliability_studio.slos.rules import (
    ALERT_NAMES,
    NOMINAL_CALENDAR_DAYS,
    RuleSLO,
    prometheus_rules,
    prometheus_rules_yaml,
)
from reliability_studio.slos.rules_cli import rules_command
from tests.support.api import assert_problem, create_service, create_slo
from tests.support.prometheus import find_binary

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SLOTH_LABELS = {"sloth_id", "sloth_service", "sloth_slo"}

SLIS: dict[str, dict[str, Any]] = {
    "ratio_errors": {
        "kind": "ratio",
        "errors": 'http_requests_total{job="api",code=~"5.."}',
        "total": 'http_requests_total{job="api"}',
    },
    "ratio_good": {
        "kind": "ratio",
        "good": 'http_requests_total{job="api",code=~"2.."}',
        "total": 'http_requests_total{job="api"}',
    },
    "latency": {
        "kind": "latency",
        "histogram": 'http_request_duration_seconds_bucket{job="api"}',
        "threshold_seconds": 0.3,
    },
    "latency_whole_seconds": {
        "kind": "latency",
        "histogram": 'http_request_duration_seconds_bucket{job="api"}',
        "threshold_seconds": 1,
    },
    "bool_gauge": {"kind": "bool_gauge", "metric": 'probe_success{job="blackbox"}'},
    "query": {
        "kind": "query",
        "error_ratio_query": 'sum by (route) (rate(errors_total{job="api"}[{{window}}]))'
        ' / sum by (route) (rate(requests_total{job="api"}[{{window}}]))',
    },
}
WINDOW_TYPES: dict[str, tuple[int, str | None]] = {
    "rolling_30d": (30, None),
    "rolling_7d": (7, None),
    "month": (30, "month"),
    "quarter": (30, "quarter"),
}


def rule_slo(
    sli: str | None = "ratio_errors",
    *,
    service: str = "payment-service",
    name: str = "API Availability",
    objective: float = 99.9,
    window_days: int = 30,
    calendar_period: str | None = None,
    timezone: str = "UTC",
) -> RuleSLO:
    """A RuleSLO with one of the SLIs above (None = manual)."""
    return RuleSLO(
        id=uuid.uuid4(),
        service=service,
        name=name,
        objective=objective,
        window_days=window_days,
        calendar_period=calendar_period,
        timezone=timezone,
        sli=None if sli is None else SLI_ADAPTER.validate_python(SLIS[sli]),
    )


def groups_of(slos: list[RuleSLO]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = prometheus_rules(slos)["groups"]
    return groups


def rules_in(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"]]


def recordings(groups: list[dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    """Recording rules by record name, from the groups whose name starts with `prefix`."""
    return {
        rule["record"]: rule
        for group in groups
        if group["name"].startswith(prefix)
        for rule in group["rules"]
    }


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Alerting rules by severity label."""
    return {rule["labels"]["severity"]: rule for rule in rules_in(groups) if "alert" in rule}


def promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules path` with the real binary (fails the test when it is missing)."""
    return subprocess.run(
        [str(find_binary("promtool")), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_promtool_accepts(text: str, path: Path) -> None:
    path.write_text(text, encoding="utf-8")
    result = promtool_check(path)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{text}"
    assert "SUCCESS" in result.stdout


# --- names ----------------------------------------------------------------------------------


def test_groups_are_named_as_sloth_names_them() -> None:
    groups = groups_of([rule_slo()])
    assert [group["name"] for group in groups] == [
        "sloth-slo-sli-recordings-payment-service-api-availability",
        "sloth-slo-meta-recordings-payment-service-api-availability",
        "sloth-slo-alerts-payment-service-api-availability",
    ]


def test_sli_recordings_are_sloth_error_ratios_for_every_burn_window_and_the_slo_window() -> None:
    groups = groups_of([rule_slo()])
    recorded = recordings(groups, "sloth-slo-sli-recordings-")
    assert list(recorded) == [
        f"slo:sli_error:ratio_rate{window}" for window in [*BURN_WINDOWS, "30d"]
    ]
    for record, rule in recorded.items():
        assert rule["labels"]["sloth_window"] == record.removeprefix("slo:sli_error:ratio_rate")


def test_meta_recordings_are_sloths() -> None:
    recorded = recordings(groups_of([rule_slo()]), "sloth-slo-meta-recordings-")
    assert set(recorded) == {
        "slo:objective:ratio",
        "slo:error_budget:ratio",
        "slo:time_period:days",
        "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio",
        "slo:period_error_budget_remaining:ratio",
        "sloth_slo_info",
    }
    assert recorded["slo:objective:ratio"]["expr"] == "vector(0.999)"
    assert recorded["slo:error_budget:ratio"]["expr"] == "vector(0.001)"
    assert recorded["slo:time_period:days"]["expr"] == "vector(30)"
    assert "slo:sli_error:ratio_rate5m{" in recorded["slo:current_burn_rate:ratio"]["expr"]
    assert "slo:sli_error:ratio_rate30d{" in recorded["slo:period_burn_rate:ratio"]["expr"]
    assert recorded["slo:period_error_budget_remaining:ratio"]["expr"].startswith(
        "1 - slo:period_burn_rate:ratio{"
    )


def test_every_rule_carries_the_sloth_labels_and_our_slo_id() -> None:
    slo = rule_slo()
    groups = groups_of([slo])
    for rule in rules_in(groups):
        if "record" in rule:
            labels = rule["labels"]
            assert labels["sloth_id"] == "payment-service-api-availability"
            assert labels["sloth_service"] == "payment-service"
            assert labels["sloth_slo"] == "API Availability"
            assert labels["rs_slo_id"] == str(slo.id)
        else:  # alerts inherit the names from the recorded series they select
            assert rule["labels"]["sloth_id"] == "payment-service-api-availability"
            assert rule["labels"]["rs_slo_id"] == str(slo.id)
            assert 'sloth_id="payment-service-api-availability"' in rule["expr"]
            assert f'rs_slo_id="{slo.id}"' in rule["expr"]


@pytest.mark.parametrize("sli", list(SLIS))
@pytest.mark.parametrize("window", list(WINDOW_TYPES))
def test_names_are_valid_prometheus_names(sli: str, window: str) -> None:
    days, calendar = WINDOW_TYPES[window]
    groups = groups_of([rule_slo(sli, window_days=days, calendar_period=calendar)])
    for rule in rules_in(groups):
        name = rule.get("record") or rule["alert"]
        assert METRIC_NAME.match(name), name
        assert all(LABEL_NAME.match(label) for label in rule["labels"])
        assert all(isinstance(value, str) for value in rule["labels"].values())
        promql_parser.parse(rule["expr"])  # valid PromQL, by a real parser


def test_group_names_stay_unique_when_names_slug_alike() -> None:
    slos = [
        rule_slo(name="API Availability"),
        rule_slo(name="api-availability"),
        rule_slo(service="Payment Service", name="API  availability!"),
        rule_slo(name="Latency"),
    ]
    groups = groups_of(slos)
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names)) == 12
    ids = {rule["labels"]["rs_slo_id"]: rule["labels"]["sloth_id"] for rule in rules_in(groups)}
    assert len(set(ids.values())) == 4
    assert ids[str(slos[3].id)] == "payment-service-latency"  # no collision, no suffix
    assert ids[str(slos[0].id)] == f"payment-service-api-availability-{slos[0].id.hex[:8]}"


def test_alerts_are_named_per_severity_with_severity_labels() -> None:
    by_severity = alerts(groups_of([rule_slo()]))
    assert set(by_severity) == {"page", "ticket"}
    assert by_severity["page"]["alert"] == ALERT_NAMES["page"]
    assert by_severity["ticket"]["alert"] == ALERT_NAMES["ticket"]
    for severity, rule in by_severity.items():
        assert rule["labels"]["sloth_severity"] == severity
        assert {"summary", "description"} <= set(rule["annotations"])
    assert ALERT_NAMES == {"page": "SLOBurnRatePage", "ticket": "SLOBurnRateTicket"}


# --- counts, not averaged ratios ------------------------------------------------------------


@pytest.mark.parametrize("sli", ["ratio_errors", "ratio_good", "latency", "bool_gauge"])
def test_each_recording_divides_bad_counts_by_total_counts_over_its_own_window(sli: str) -> None:
    slo = rule_slo(sli)
    recorded = recordings(groups_of([slo]), "sloth-slo-sli-recordings-")
    windows = {**BURN_WINDOWS, "30d": timedelta(days=30)}
    assert slo.sli is not None
    for window, length in windows.items():
        expr = recorded[f"slo:sli_error:ratio_rate{window}"]["expr"]
        queries = window_queries(slo.sli, length)
        assert queries.bad is not None
        assert queries.total is not None
        if sli == "ratio_errors":  # no error series yet = no errors
            bad = f"{queries.bad} or vector(0)"
        else:  # total - good, where no good series yet = no good events
            good = queries.bad.removeprefix(f"{queries.total} - ")
            assert good != queries.bad
            bad = f"{queries.total} - ({good} or vector(0))"
        assert expr == f"({bad})\n/\n({queries.total})"
        assert "avg_over_time" not in expr
        assert "slo:" not in expr  # computed from the raw series, not from other recordings
        assert f"[{window}]" in expr
        assert all(other not in expr for other in windows if f"[{other}]" != f"[{window}]")


def test_the_slo_window_recording_is_counts_over_the_whole_window_not_a_mean() -> None:
    recorded = recordings(groups_of([rule_slo()]), "sloth-slo-sli-recordings-")
    expr = recorded["slo:sli_error:ratio_rate30d"]["expr"]
    assert expr == (
        '(sum(increase(http_requests_total{job="api",code=~"5.."}[30d])) or vector(0))'
        '\n/\n(sum(increase(http_requests_total{job="api"}[30d])))'
    )
    for forbidden in ("sum_over_time(slo:", "count_over_time(slo:", "avg_over_time"):
        assert forbidden not in expr


def test_query_slis_record_their_own_ratio_per_window() -> None:
    recorded = recordings(groups_of([rule_slo("query")]), "sloth-slo-sli-recordings-")
    expr = recorded["slo:sli_error:ratio_rate1h"]["expr"]
    assert expr == (
        'max(sum by (route) (rate(errors_total{job="api"}[1h]))'
        ' / sum by (route) (rate(requests_total{job="api"}[1h])))'
    )


def test_an_slo_window_equal_to_a_burn_window_is_recorded_once() -> None:
    groups = groups_of([rule_slo(window_days=1)])
    sli_records = [rule["record"] for rule in groups[0]["rules"]]
    assert len(sli_records) == len(set(sli_records)) == len(BURN_WINDOWS)
    recorded = recordings(groups, "sloth-slo-meta-recordings-")
    assert "slo:sli_error:ratio_rate1d{" in recorded["slo:period_burn_rate:ratio"]["expr"]


# --- burn-rate factors ----------------------------------------------------------------------


def alert_thresholds(rule: dict[str, Any]) -> list[tuple[str, str]]:
    """(window, threshold text) for each window condition of an alert expression."""
    return re.findall(r"slo:sli_error:ratio_rate(\w+)\{[^}]*\} > \(([^)]*)\)", rule["expr"])


@pytest.mark.parametrize(
    ("days", "page", "ticket"),
    [
        (30, ("14.4", "6"), ("3", "1")),
        (28, ("13.44", "5.6"), ("2.8", "1")),  # never below 1: sustainable spending
        (7, ("3.36", "1.4"), ("1", "1")),
    ],
)
def test_factors_scale_with_the_window(
    days: int, page: tuple[str, str], ticket: tuple[str, str]
) -> None:
    by_severity = alerts(groups_of([rule_slo(window_days=days)]))
    assert alert_thresholds(by_severity["page"]) == [
        ("1h", f"{page[0]} * 0.001"),
        ("5m", f"{page[0]} * 0.001"),
        ("6h", f"{page[1]} * 0.001"),
        ("30m", f"{page[1]} * 0.001"),
    ]
    assert alert_thresholds(by_severity["ticket"]) == [
        ("1d", f"{ticket[0]} * 0.001"),
        ("2h", f"{ticket[0]} * 0.001"),
        ("3d", f"{ticket[1]} * 0.001"),
        ("6h", f"{ticket[1]} * 0.001"),
    ]


def test_alert_expressions_have_sloths_form() -> None:
    slo = rule_slo(objective=99.5)
    page = alerts(groups_of([slo]))["page"]["expr"]
    selector = f'{{sloth_id="payment-service-api-availability", rs_slo_id="{slo.id}"}}'
    assert page == (
        "(\n"
        f"  max(slo:sli_error:ratio_rate1h{selector} > (14.4 * 0.005)) without (sloth_window)\n"
        "and\n"
        f"  max(slo:sli_error:ratio_rate5m{selector} > (14.4 * 0.005)) without (sloth_window)\n"
        ")\n"
        "or\n"
        "(\n"
        f"  max(slo:sli_error:ratio_rate6h{selector} > (6 * 0.005)) without (sloth_window)\n"
        "and\n"
        f"  max(slo:sli_error:ratio_rate30m{selector} > (6 * 0.005)) without (sloth_window)\n"
        ")"
    )


def test_error_budget_is_written_exactly() -> None:
    recorded = recordings(groups_of([rule_slo(objective=99.95)]), "sloth-slo-meta-recordings-")
    assert recorded["slo:objective:ratio"]["expr"] == "vector(0.9995)"
    assert recorded["slo:error_budget:ratio"]["expr"] == "vector(0.0005)"


# --- calendar windows, manual SLOs, every kind ----------------------------------------------


@pytest.mark.parametrize(("period", "days"), list(NOMINAL_CALENDAR_DAYS.items()))
def test_calendar_slos_export_their_nominal_length_and_say_so(period: str, days: int) -> None:
    slo = rule_slo(calendar_period=period, window_days=7, timezone="Europe/Paris")
    groups = groups_of([slo])
    recorded = recordings(groups, "sloth-slo-sli-recordings-")
    assert f"slo:sli_error:ratio_rate{days}d" in recorded
    assert f"[{days}d]" in recorded[f"slo:sli_error:ratio_rate{days}d"]["expr"]
    meta = recordings(groups, "sloth-slo-meta-recordings-")
    assert meta["slo:time_period:days"]["expr"] == f"vector({days})"
    assert meta["sloth_slo_info"]["labels"]["rs_calendar_period"] == period
    text = prometheus_rules_yaml([slo])
    assert f"calendar {period} (Europe/Paris) SLO" in text
    assert f"exported as a rolling {days}d" in text
    for rule in alerts(groups).values():
        assert f"calendar {period}" in rule["annotations"]["description"]
    # 30 d month: the Workbook's factors; 90 d quarter: three times as large.
    page = alert_thresholds(alerts(groups)["page"])[0][1]
    assert page == ("14.4 * 0.001" if days == 30 else "43.2 * 0.001")


def test_manual_slos_are_skipped() -> None:
    assert prometheus_rules([rule_slo(None)]) == {"groups": []}
    measured = rule_slo(name="Measured")
    groups = groups_of([rule_slo(None, name="Manual"), measured])
    assert {rule["labels"]["rs_slo_id"] for rule in rules_in(groups)} == {str(measured.id)}


@pytest.mark.parametrize("sli", list(SLIS))
def test_every_kind_of_sli_exports(sli: str) -> None:
    groups = groups_of([rule_slo(sli)])
    assert len(groups) == 3
    assert len(recordings(groups, "sloth-slo-sli-recordings-")) == len(BURN_WINDOWS) + 1
    assert set(alerts(groups)) == {"page", "ticket"}


def test_yaml_round_trips_without_anchors_and_with_a_header() -> None:
    slos = [rule_slo(), rule_slo("latency", name="Latency")]
    text = prometheus_rules_yaml(slos)
    assert text.startswith("# ")
    assert "&id" not in text
    assert "*id" not in text
    assert yaml.safe_load(text) == prometheus_rules(slos)


def test_from_model_parses_the_stored_sli() -> None:
    slo = SLO(
        id=uuid.uuid4(),
        name="Availability",
        objective=99.9,
        window_days=28,
        calendar_period=None,
        timezone="UTC",
        sli=SLIS["ratio_good"],
    )
    converted = RuleSLO.from_model(slo, "checkout")
    assert converted.service == "checkout"
    assert converted.window_days == 28
    assert converted.sli == SLI_ADAPTER.validate_python(SLIS["ratio_good"])
    slo.sli = None
    assert RuleSLO.from_model(slo, "checkout").sli is None


# --- promtool check rules -------------------------------------------------------------------


@pytest.mark.parametrize("sli", list(SLIS))
@pytest.mark.parametrize("window", list(WINDOW_TYPES))
def test_promtool_accepts_the_rules(sli: str, window: str, tmp_path: Path) -> None:
    days, calendar = WINDOW_TYPES[window]
    slo = rule_slo(sli, window_days=days, calendar_period=calendar)
    assert_promtool_accepts(prometheus_rules_yaml([slo]), tmp_path / "rules.yml")


def test_promtool_accepts_many_slos_in_one_file(tmp_path: Path) -> None:
    slos = [
        rule_slo(sli, name=f"{sli} {window}", window_days=days, calendar_period=calendar)
        for sli in SLIS
        for window, (days, calendar) in WINDOW_TYPES.items()
    ]
    slos += [rule_slo(None, name="manual"), rule_slo(window_days=1, name="one day")]
    text = prometheus_rules_yaml(slos)
    assert_promtool_accepts(text, tmp_path / "rules.yml")
    result = promtool_check(tmp_path / "rules.yml")
    rule_count = sum(len(group["rules"]) for group in prometheus_rules(slos)["groups"])
    assert f"SUCCESS: {rule_count} rules found" in result.stdout


def test_promtool_accepts_names_that_look_like_templates(tmp_path: Path) -> None:
    # Alert labels and annotations are Go templates: names must never be pasted into them.
    slo = rule_slo(service='svc {{ $x }} "q"', name="Avail {{x}} }} $y\nline")
    assert_promtool_accepts(prometheus_rules_yaml([slo]), tmp_path / "rules.yml")


def test_promtool_accepts_an_empty_export(tmp_path: Path) -> None:
    assert_promtool_accepts(prometheus_rules_yaml([]), tmp_path / "rules.yml")


# --- HTTP API -------------------------------------------------------------------------------


def app_with_rules(settings: Settings) -> FastAPI:
    """The app, with the rules router included unless app.py already includes it."""
    app = create_app(settings)
    # By route name: FastAPI may wrap included routers, so route paths are not always listed.
    try:
        app.url_path_for(rules_router.all_prometheus_rules.__name__)
    except NoMatchFound:
        app.include_router(rules_router.router)
    return app


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of the app with the rules endpoints (lifespan included)."""
    with TestClient(app_with_rules(settings)) as test_client:
        yield test_client


def get_yaml(client: TestClient, path: str, **params: str) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/yaml")
    document: dict[str, Any] = yaml.safe_load(response.text)
    return document


def slo_ids_in(document: dict[str, Any]) -> set[str]:
    return {rule["labels"]["rs_slo_id"] for rule in rules_in(document["groups"])}


def test_one_slos_rules_are_served_as_yaml(client: TestClient, tmp_path: Path) -> None:
    service = create_service(client, name="payment-service")
    slo = create_slo(client, service["id"], name="API Availability", sli=SLIS["ratio_errors"])
    document = get_yaml(client, f"/api/slos/{slo['id']}/prometheus-rules")
    assert [group["name"] for group in document["groups"]] == [
        "sloth-slo-sli-recordings-payment-service-api-availability",
        "sloth-slo-meta-recordings-payment-service-api-availability",
        "sloth-slo-alerts-payment-service-api-availability",
    ]
    assert slo_ids_in(document) == {slo["id"]}
    text = client.get(f"/api/slos/{slo['id']}/prometheus-rules").text
    assert_promtool_accepts(text, tmp_path / "rules.yml")


def test_rules_of_an_unknown_slo_are_404(client: TestClient) -> None:
    assert_problem(client.get(f"/api/slos/{uuid.uuid4()}/prometheus-rules"), 404)


def test_rules_of_a_malformed_slo_id_are_422(client: TestClient) -> None:
    assert_problem(client.get("/api/slos/not-a-uuid/prometheus-rules"), 422, "slo_id")


def test_rules_of_a_manual_slo_are_409(client: TestClient) -> None:
    slo = create_slo(client, create_service(client)["id"])
    problem = assert_problem(client.get(f"/api/slos/{slo['id']}/prometheus-rules"), 409)
    assert "manual" in problem["detail"]


def test_all_rules_hold_every_slo_with_an_sli_and_skip_manual_ones(
    client: TestClient, tmp_path: Path
) -> None:
    payments = create_service(client, name="payments")
    search = create_service(client, name="search")
    measured = [
        create_slo(client, payments["id"], name="availability", sli=SLIS["ratio_errors"]),
        create_slo(client, payments["id"], name="latency", sli=SLIS["latency"]),
        create_slo(
            client,
            search["id"],
            name="probe",
            sli=SLIS["bool_gauge"],
            calendar_period="month",
            timezone="Europe/Paris",
        ),
        create_slo(client, search["id"], name="custom", sli=SLIS["query"]),
    ]
    create_slo(client, search["id"], name="manual")
    document = get_yaml(client, "/api/prometheus-rules")
    assert slo_ids_in(document) == {slo["id"] for slo in measured}
    assert len(document["groups"]) == 3 * len(measured)
    assert_promtool_accepts(client.get("/api/prometheus-rules").text, tmp_path / "rules.yml")

    only_payments = get_yaml(client, "/api/prometheus-rules", service_id=payments["id"])
    assert slo_ids_in(only_payments) == {measured[0]["id"], measured[1]["id"]}


def test_all_rules_without_slos_are_an_empty_rule_file(client: TestClient) -> None:
    assert get_yaml(client, "/api/prometheus-rules") == {"groups": []}
    assert get_yaml(client, "/api/prometheus-rules", service_id=str(uuid.uuid4())) == {"groups": []}


def test_all_rules_with_a_malformed_service_id_are_422(client: TestClient) -> None:
    assert_problem(client.get("/api/prometheus-rules?service_id=nope"), 422, "service_id")


def test_rules_endpoints_are_documented_as_yaml(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/slos/{slo_id}/prometheus-rules", "/api/prometheus-rules"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert "application/yaml" in content


# --- CLI ------------------------------------------------------------------------------------


def rules_cli() -> typer.Typer:
    """A Typer app with `rules` as cli.py registers it under `slo`."""
    cli = typer.Typer()
    slo = typer.Typer()
    slo.command("rules")(rules_command)
    cli.add_typer(slo, name="slo")
    return cli


@pytest.fixture
def sqlite_client(sqlite_settings: Settings) -> Iterator[TestClient]:
    with TestClient(app_with_rules(sqlite_settings)) as test_client:
        yield test_client


def test_cli_prints_and_writes_the_rules(
    sqlite_client: TestClient, sqlite_settings: Settings, tmp_path: Path
) -> None:
    payments = create_service(sqlite_client, name="payments")
    search = create_service(sqlite_client, name="search")
    ours = create_slo(sqlite_client, payments["id"], name="availability", sli=SLIS["ratio_good"])
    theirs = create_slo(sqlite_client, search["id"], name="probe", sli=SLIS["bool_gauge"])
    create_slo(sqlite_client, search["id"], name="manual")
    env = {"DATABASE_URL": sqlite_settings.database_url}
    runner = CliRunner()

    printed = runner.invoke(rules_cli(), ["slo", "rules"], env=env)
    assert printed.exit_code == 0, printed.output
    assert slo_ids_in(yaml.safe_load(printed.stdout)) == {ours["id"], theirs["id"]}
    assert printed.stdout == sqlite_client.get("/api/prometheus-rules").text

    output = tmp_path / "slo-rules.yml"
    for service in ("payments", payments["id"]):
        written = runner.invoke(
            rules_cli(), ["slo", "rules", "--service", service, "--output", str(output)], env=env
        )
        assert written.exit_code == 0, written.output
        assert written.stdout == ""
        assert slo_ids_in(yaml.safe_load(output.read_text())) == {ours["id"]}
    assert_promtool_accepts(output.read_text(), tmp_path / "check.yml")


def test_cli_rejects_an_unknown_service(sqlite_settings: Settings) -> None:
    env = {"DATABASE_URL": sqlite_settings.database_url}
    result = CliRunner().invoke(rules_cli(), ["slo", "rules", "--service", "nope"], env=env)
    assert result.exit_code == 1
    assert "no service named" in result.stderr
