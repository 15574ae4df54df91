"""Prometheus recording and alerting rules for SLOs, in Sloth's shape. Pure, no I/O.

Per SLO with an SLI, three rule groups, named and labelled as Sloth names them so that
Sloth's dashboards and queries work unchanged:

- `sloth-slo-sli-recordings-<id>`: `slo:sli_error:ratio_rate<w>` for every burn window
  (5m … 3d) and for the SLO window (e.g. 30d). Each is computed from COUNTS over that
  window, `sum(increase(bad[w])) / sum(increase(total[w]))` (see promql.py), never as a mean
  of 5-minute ratios as Sloth does for its SLO window: that mean is biased whenever traffic
  is uneven. `query` SLIs record the worst (`max`) of their own ratio expression, as the
  engine measures them.
- `sloth-slo-meta-recordings-<id>`: `slo:objective:ratio`, `slo:error_budget:ratio`,
  `slo:time_period:days`, `slo:current_burn_rate:ratio`, `slo:period_burn_rate:ratio`,
  `slo:period_error_budget_remaining:ratio` and `sloth_slo_info`.
- `sloth-slo-alerts-<id>`: the multi-window multi-burn-rate alerts, in Sloth's expression
  form, with the factors of `budget.burn_rate_rules` for the SLO's window.

Alert naming: every SLO gets the same two alert names, `SLOBurnRatePage` and
`SLOBurnRateTicket`, so that one Alertmanager route serves every SLO. The labels tell the
SLOs apart: `severity` (`page`/`ticket`, also as Sloth's `sloth_severity`), `sloth_id`,
`sloth_service`, `sloth_slo` and `rs_slo_id` (the SLO's id in Reliability Studio).

`<id>` (the `sloth_id` label) is `<service>-<slo>`, both slugged to `[a-z0-9-]`. When two
SLOs of one export slug alike, each of them gets its id's first 8 hex digits appended, so
that group names stay unique, as Prometheus requires.

Calendar SLOs (this month, this quarter) cannot be a fixed range in PromQL: their SLO window
is exported as its nominal length, 30d for a month and 90d for a quarter, and the YAML
says so in a comment and in the alerts' descriptions.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import yaml

from reliability_studio.slos.budget import (
    BURN_WINDOWS,
    AlertSeverity,
    BurnRateRule,
    burn_rate_rules,
)
from reliability_studio.slos.engine import SLI_ADAPTER
from reliability_studio.slos.models import SLO
from reliability_studio.slos.promql import prometheus_duration, window_queries
from reliability_studio.slos.sli import SLI, RatioSLI

ALERT_NAMES: dict[AlertSeverity, str] = {
    "page": "SLOBurnRatePage",
    "ticket": "SLOBurnRateTicket",
}
NOMINAL_CALENDAR_DAYS: dict[str, int] = {"month": 30, "quarter": 90}
SLI_ERROR_METRIC = "slo:sli_error:ratio_rate"
SLOTH_MODE = "reliability-studio"

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class RuleSLO:
    """What the rules need to know of an SLO. `sli` None = a manual SLO (no rules)."""

    id: uuid.UUID
    service: str
    name: str
    objective: float
    window_days: int
    calendar_period: str | None
    timezone: str
    sli: SLI | None

    @classmethod
    def from_model(cls, slo: SLO, service_name: str) -> RuleSLO:
        """From the ORM row (whose `sli` is a JSON document) and its service's name."""
        return cls(
            id=slo.id,
            service=service_name,
            name=slo.name,
            objective=slo.objective,
            window_days=slo.window_days,
            calendar_period=slo.calendar_period,
            timezone=slo.timezone,
            sli=None if slo.sli is None else SLI_ADAPTER.validate_python(slo.sli),
        )

    @property
    def period(self) -> timedelta:
        """The window the budget is spread over; calendar periods at their nominal length."""
        if self.calendar_period is not None:
            return timedelta(days=NOMINAL_CALENDAR_DAYS[self.calendar_period])
        return timedelta(days=self.window_days)


def slug(text: str) -> str:
    """`text` in `[a-z0-9-]`, e.g. `API Availability` → `api-availability`."""
    return _NOT_SLUG.sub("-", text.lower()).strip("-") or "x"


def sloth_ids(slos: Sequence[RuleSLO]) -> dict[uuid.UUID, str]:
    """The `sloth_id` of each SLO: `<service>-<slo>`, made unique within `slos`."""
    base = {slo.id: f"{slug(slo.service)}-{slug(slo.name)}" for slo in slos}
    taken = Counter(base.values())
    return {
        slo_id: value if taken[value] == 1 else f"{value}-{slo_id.hex[:8]}"
        for slo_id, value in base.items()
    }


def prometheus_rules(slos: Sequence[RuleSLO]) -> dict[str, Any]:
    """The rule file (`{"groups": [...]}`) for every SLO with an SLI; manual ones are skipped."""
    measured = [slo for slo in slos if slo.sli is not None]
    ids = sloth_ids(measured)
    groups: list[dict[str, Any]] = []
    for slo in measured:
        groups.extend(_groups(slo, ids[slo.id]))
    return {"groups": groups}


def prometheus_rules_yaml(slos: Sequence[RuleSLO]) -> str:
    """`prometheus_rules` as YAML for `rule_files`, with a header comment."""
    document = yaml.dump(
        prometheus_rules(slos),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=10_000,
    )
    return _header(slos) + document


# --- groups ---------------------------------------------------------------------------------


def _groups(slo: RuleSLO, sloth_id: str) -> list[dict[str, Any]]:
    assert slo.sli is not None
    labels = {
        "sloth_id": sloth_id,
        "sloth_service": slo.service,
        "sloth_slo": slo.name,
        "rs_slo_id": str(slo.id),
    }
    selector = f'{{sloth_id="{sloth_id}", rs_slo_id="{slo.id}"}}'
    period = prometheus_duration(slo.period)
    return [
        {
            "name": f"sloth-slo-sli-recordings-{sloth_id}",
            "rules": _sli_recordings(slo.sli, slo.period, labels),
        },
        {
            "name": f"sloth-slo-meta-recordings-{sloth_id}",
            "rules": _meta_recordings(slo, period, selector, labels),
        },
        {
            "name": f"sloth-slo-alerts-{sloth_id}",
            "rules": _alerts(slo, selector, labels),
        },
    ]


def _windows(period: timedelta) -> dict[str, timedelta]:
    """The burn windows and the SLO window (once, should it equal a burn window)."""
    windows = dict(BURN_WINDOWS)
    if period not in windows.values():
        windows[prometheus_duration(period)] = period
    return windows


def sli_error_expression(sli: SLI, window: timedelta) -> str:
    """The error ratio of `sli` over `window`, from counts (or a `query` SLI's own ratio)."""
    queries = window_queries(sli, window)
    if queries.ratio is not None:
        # A `query` SLI may give several series: the worst counts, as in the engine.
        return f"max({queries.ratio})"
    assert queries.bad is not None
    assert queries.total is not None
    total = queries.total
    bad = queries.bad
    good_prefix = f"{total} - "
    if isinstance(sli, RatioSLI) and sli.errors is not None:
        # An error counter has no series before the first error: that is 0 errors, not no data.
        bad = f"{bad} or vector(0)"
    elif bad.startswith(good_prefix):
        # Likewise a good-events counter before the first success: every event was bad.
        # (Without `or vector(0)` the subtraction would be empty, and a total outage silent.)
        bad = f"{good_prefix}({bad.removeprefix(good_prefix)} or vector(0))"
    return f"({bad})\n/\n({total})"


def _sli_recordings(sli: SLI, period: timedelta, labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "record": SLI_ERROR_METRIC + name,
            "expr": sli_error_expression(sli, length),
            "labels": {**labels, "sloth_window": name},
        }
        for name, length in _windows(period).items()
    ]


def _meta_recordings(
    slo: RuleSLO, period: str, selector: str, labels: dict[str, str]
) -> list[dict[str, Any]]:
    join = "/ on(sloth_id, sloth_slo, sloth_service, rs_slo_id) group_left\n"
    info_labels = {
        **labels,
        "sloth_mode": SLOTH_MODE,
        "sloth_objective": _number(Decimal(repr(slo.objective))),
        "rs_window": period,
        "rs_sli_kind": slo.sli.kind if slo.sli is not None else "manual",
    }
    if slo.calendar_period is not None:
        info_labels["rs_calendar_period"] = slo.calendar_period
        info_labels["rs_timezone"] = slo.timezone
    return [
        {
            "record": "slo:objective:ratio",
            "expr": f"vector({_number(_objective_ratio(slo))})",
            "labels": labels,
        },
        {
            "record": "slo:error_budget:ratio",
            "expr": f"vector({_number(_budget(slo))})",
            "labels": labels,
        },
        {
            "record": "slo:time_period:days",
            "expr": f"vector({_number(Decimal(slo.period.days))})",
            "labels": labels,
        },
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": f"{SLI_ERROR_METRIC}5m{selector}\n{join}slo:error_budget:ratio{selector}",
            "labels": labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": f"{SLI_ERROR_METRIC}{period}{selector}\n{join}slo:error_budget:ratio{selector}",
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": f"1 - slo:period_burn_rate:ratio{selector}",
            "labels": labels,
        },
        {"record": "sloth_slo_info", "expr": "vector(1)", "labels": info_labels},
    ]


def _alerts(slo: RuleSLO, selector: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    budget = _number(_budget(slo))
    rules = burn_rate_rules(slo.period, slo.objective)
    alerts = []
    for severity in ALERT_NAMES:
        chosen = [rule for rule in rules if rule.severity == severity]
        if not chosen:  # a window too short for this severity's long windows
            continue
        alerts.append(
            {
                "alert": ALERT_NAMES[severity],
                "expr": "\nor\n".join(_condition(rule, selector, budget) for rule in chosen),
                # The names come with the recorded series. Alert labels are templates,
                # so a `{{` in a name written here would break the rule.
                "labels": {
                    "sloth_id": labels["sloth_id"],
                    "rs_slo_id": labels["rs_slo_id"],
                    "severity": severity,
                    "sloth_severity": severity,
                },
                "annotations": _annotations(slo, severity, chosen),
            }
        )
    return alerts


def _condition(rule: BurnRateRule, selector: str, budget: str) -> str:
    threshold = f"({_number(Decimal(repr(rule.factor)))} * {budget})"
    both = [
        f"  max({SLI_ERROR_METRIC}{window}{selector} > {threshold}) without (sloth_window)"
        for window in (rule.long_window, rule.short_window)
    ]
    return "(\n" + "\nand\n".join(both) + "\n)"


def _annotations(
    slo: RuleSLO, severity: AlertSeverity, rules: list[BurnRateRule]
) -> dict[str, str]:
    # Names come in through labels, never as template text: a `{{` in a name cannot break it.
    names = "{{ $labels.sloth_service }} {{ $labels.sloth_slo }}"
    conditions = " or ".join(
        f"{rule.long_window} and {rule.short_window} above {_number(Decimal(repr(rule.factor)))}"
        for rule in rules
    )
    window = prometheus_duration(slo.period)
    if slo.calendar_period is not None:
        window = f"calendar {slo.calendar_period} ({slo.timezone}), exported as a rolling {window}"
    return {
        "summary": f"({severity}) {names} SLO error budget burn rate is too fast.",
        "title": f"({severity}) {names} SLO error budget burn rate is too fast.",
        "description": (
            f"The error budget burns too fast: burn rate over {conditions} "
            f"(objective {_number(Decimal(repr(slo.objective)))}% over {window}). "
            "Error ratio over the long window: {{ $value | humanizePercentage }}."
        ),
    }


# --- numbers and text -----------------------------------------------------------------------


def _objective_ratio(slo: RuleSLO) -> Decimal:
    return Decimal(repr(slo.objective)) / 100


def _budget(slo: RuleSLO) -> Decimal:
    """1 - objective, exactly as written (99.9 → 0.001, not 0.0010000000000000009)."""
    return 1 - _objective_ratio(slo)


def _number(value: Decimal) -> str:
    """A PromQL number literal without exponent or trailing zeros: `14.4`, `6`, `0.001`."""
    return format(value.normalize(), "f")


def _header(slos: Sequence[RuleSLO]) -> str:
    lines = [
        "# Prometheus rules for Reliability Studio SLOs, in Sloth's naming (slo:sli_error:...).",
        "# Error ratios are computed from event counts over each window, never by averaging",
        "# shorter ratios. Check with: promtool check rules <this file>",
    ]
    calendar = [slo for slo in slos if slo.sli is not None and slo.calendar_period is not None]
    for slo in calendar:
        assert slo.calendar_period is not None
        days = NOMINAL_CALENDAR_DAYS[slo.calendar_period]
        lines.append(
            f"# {_one_line(slo.service)} / {_one_line(slo.name)}: a calendar "
            f"{slo.calendar_period} ({slo.timezone}) SLO; Prometheus cannot range over a "
            f"calendar period, so its SLO window is exported as a rolling {days}d."
        )
    skipped = [slo for slo in slos if slo.sli is None]
    for slo in skipped:
        lines.append(f"# {_one_line(slo.service)} / {_one_line(slo.name)}: manual SLO, no rules.")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (the expressions) as literal blocks, and
    repeats shared label sets instead of writing YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
