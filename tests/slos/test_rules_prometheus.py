"""The exported rules, loaded into a real Prometheus over the known-answer dataset, fire as
the SRE Workbook says: the `spike` SLO pages (and tickets), the `steady` one stays quiet.

The dataset (tests/support/slo_dataset.py) ends at `now`; Prometheus evaluates the rules
every second at wall-clock time, a few seconds after `now`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from reliability_studio.slos.engine import SLI_ADAPTER
from reliability_studio.slos.rules import RuleSLO, prometheus_rules_yaml
from tests.support.prometheus import PrometheusServer
from tests.support.slo_dataset import build_dataset, default_now, expected_error_ratio

FIRING_TIMEOUT_SECONDS = 30.0
JOBS = ("spike", "steady")


def ratio_slo(job: str) -> RuleSLO:
    """A 99.9 % / 30 d availability SLO on the dataset's `job`."""
    return RuleSLO(
        id=uuid.uuid4(),
        service=f"{job}-service",
        name="availability",
        objective=99.9,
        window_days=30,
        calendar_period=None,
        timezone="UTC",
        sli=SLI_ADAPTER.validate_python(
            {
                "kind": "ratio",
                "errors": f'http_requests_total{{job="{job}",code="500"}}',
                "total": f'http_requests_total{{job="{job}"}}',
            }
        ),
    )


def nothing_good_slo() -> RuleSLO:
    """An SLO counting good events on a series that never appeared: every event is bad."""
    return RuleSLO(
        id=uuid.uuid4(),
        service="outage-service",
        name="availability",
        objective=99.9,
        window_days=30,
        calendar_period=None,
        timezone="UTC",
        sli=SLI_ADAPTER.validate_python(
            {
                "kind": "ratio",
                "good": 'http_requests_total{job="steady",code="204"}',
                "total": 'http_requests_total{job="steady"}',
            }
        ),
    )


@dataclass(frozen=True)
class Loaded:
    server: PrometheusServer
    slos: dict[str, RuleSLO]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    """Prometheus with the spike and steady series backfilled and their SLOs' rules loaded."""
    slos = {job: ratio_slo(job) for job in JOBS}
    slos["outage"] = nothing_good_slo()
    rule_file = tmp_path_factory.mktemp("rules") / "slo-rules.yml"
    rule_file.write_text(prometheus_rules_yaml(list(slos.values())), encoding="utf-8")
    now = default_now()
    series = [one for one in build_dataset(now) if one.labels.get("job") in JOBS]
    with PrometheusServer() as server:
        server.backfill(series)
        server.start(rule_files=[rule_file], evaluation_interval="1s")
        yield Loaded(server, slos)


def firing(server: PrometheusServer, severity: str) -> set[str]:
    """The `rs_slo_id` of every firing alert of `severity`."""
    result = server.query(f'ALERTS{{alertstate="firing", severity="{severity}"}}')
    return {labels["rs_slo_id"] for labels, _ in result}


def wait_for_firing(server: PrometheusServer, severity: str, slo: RuleSLO) -> set[str]:
    deadline = time.monotonic() + FIRING_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        now_firing = firing(server, severity)
        if str(slo.id) in now_firing:
            return now_firing
        time.sleep(0.5)
    raise AssertionError(
        f"no {severity} alert for {slo.service} after {FIRING_TIMEOUT_SECONDS:.0f} s; "
        f"alerts: {server.alerts()}\n{server.log_tail()}"
    )


def test_prometheus_loads_every_exported_rule(loaded: Loaded) -> None:
    groups = loaded.server.api("rules")["groups"]
    assert len(groups) == 3 * len(loaded.slos)
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] != "err", rule


def test_the_spike_pages_and_steady_does_not(loaded: Loaded) -> None:
    spike, steady = loaded.slos["spike"], loaded.slos["steady"]
    paged = wait_for_firing(loaded.server, "page", spike)
    assert str(steady.id) not in paged
    alerts = [
        alert
        for alert in loaded.server.alerts()
        if alert["labels"]["alertname"] == "SLOBurnRatePage"
        and alert["state"] == "firing"
        and alert["labels"]["rs_slo_id"] == str(spike.id)
    ]
    assert len(alerts) == 1
    labels = alerts[0]["labels"]
    assert labels["sloth_service"] == "spike-service"
    assert labels["sloth_slo"] == "availability"
    assert labels["sloth_severity"] == "page"
    assert "sloth_window" not in labels
    assert "spike-service availability" in alerts[0]["annotations"]["summary"]
    # Several evaluations later, steady has still not fired, at either severity.
    time.sleep(3)
    assert str(steady.id) not in firing(loaded.server, "page")
    assert str(steady.id) not in firing(loaded.server, "ticket")


def test_the_spike_also_opens_a_ticket(loaded: Loaded) -> None:
    ticketed = wait_for_firing(loaded.server, "ticket", loaded.slos["spike"])
    assert str(loaded.slos["steady"].id) not in ticketed


def test_no_good_events_at_all_is_a_full_outage_not_silence(loaded: Loaded) -> None:
    outage = loaded.slos["outage"]
    expr = f'slo:sli_error:ratio_rate5m{{rs_slo_id="{outage.id}"}}'
    assert _wait_for_value(loaded.server, expr) == 1.0
    wait_for_firing(loaded.server, "page", outage)


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("window", ["5m", "1h", "6h", "1d", "3d", "30d"])
def test_recorded_error_ratios_are_the_counts_ratios(loaded: Loaded, job: str, window: str) -> None:
    slo = loaded.slos[job]
    seconds = {"5m": 300, "1h": 3600, "6h": 21_600, "1d": 86_400, "3d": 259_200, "30d": 2_592_000}
    expected = expected_error_ratio("spike" if job == "spike" else "steady", seconds[window])
    assert expected is not None
    expr = f'slo:sli_error:ratio_rate{window}{{rs_slo_id="{slo.id}"}}'
    recorded = _wait_for_value(loaded.server, expr)
    # Evaluated up to a minute after the data ends (`now` is rounded down to the minute), the
    # windows slide past the data's edge; observed drift is below 0.3 % (6h, the spike's edge).
    assert recorded == pytest.approx(float(expected), rel=1e-2)


@pytest.mark.parametrize(("job", "remaining"), [("spike", 0.22361), ("steady", 0.5)])
def test_budget_remaining_is_recorded(loaded: Loaded, job: str, remaining: float) -> None:
    slo = loaded.slos[job]
    expr = f'slo:period_error_budget_remaining:ratio{{rs_slo_id="{slo.id}"}}'
    assert _wait_for_value(loaded.server, expr) == pytest.approx(remaining, rel=1e-2)


def _wait_for_value(server: PrometheusServer, expr: str) -> float:
    deadline = time.monotonic() + FIRING_TIMEOUT_SECONDS
    while True:
        result = server.query(expr)
        if result:
            assert len(result) == 1, result
            return result[0][1]
        if time.monotonic() > deadline:
            raise AssertionError(f"{expr} was never recorded\n{server.log_tail()}")
        time.sleep(0.5)


def test_rule_file_is_what_was_loaded(loaded: Loaded) -> None:
    # The server's rule groups are exactly the exported ones, in order.
    names = [group["name"] for group in loaded.server.api("rules")["groups"]]
    expected = [
        f"sloth-slo-{kind}-{job}-service-availability"
        for job in (*JOBS, "outage")
        for kind in ("sli-recordings", "meta-recordings", "alerts")
    ]
    assert sorted(names) == sorted(expected)
