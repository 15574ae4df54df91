"""Correlation rules as pure logic: which rule takes an alert, its group key, its severity,
and when a group stops taking alerts. No I/O; `correlation.py` applies it to the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from reliability_studio.alerts.matchers import Matcher, matches_all
from reliability_studio.incidents.lifecycle import SEVERITIES, Severity

# Most severe first, as in SEVERITIES.
_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class RuleSpec:
    """A correlation rule, parsed and ready to apply."""

    id: uuid.UUID
    name: str
    matchers: tuple[Matcher, ...]
    action: str
    group_by: tuple[str, ...]
    window: timedelta
    max_incident_age: timedelta
    threshold: int
    severity_label: str
    severity_map: Mapping[str, Severity]
    default_severity: Severity
    resolve_policy: str

    @property
    def opens_incidents(self) -> bool:
        """Whether alerts taken by this rule may open incidents at all."""
        return self.action == "open_incident"


def select_rule(rules: Sequence[RuleSpec], labels: Mapping[str, str]) -> RuleSpec | None:
    """The first rule (in the given order) whose matchers all match, or None."""
    for rule in rules:
        if matches_all(rule.matchers, labels):
            return rule
    return None


def group_labels(rule: RuleSpec, labels: Mapping[str, str]) -> dict[str, str]:
    """The values of the rule's `group_by` labels; an absent label counts as ""."""
    return {name: labels.get(name, "") for name in rule.group_by}


def group_key(rule: RuleSpec, labels: Mapping[str, str]) -> str:
    """A canonical text for the group: the same labels always give the same key."""
    return orjson.dumps(list(group_labels(rule, labels).items())).decode()


def alert_severity(rule: RuleSpec, labels: Mapping[str, str]) -> Severity:
    """The incident severity an alert maps to under the rule."""
    return rule.severity_map.get(labels.get(rule.severity_label, ""), rule.default_severity)


def most_severe(first: Severity, second: Severity) -> Severity:
    """The more severe of two severities."""
    return first if _RANK[first] <= _RANK[second] else second


def is_more_severe(candidate: str, than: str) -> bool:
    """Whether `candidate` is strictly more severe than `than`."""
    return _RANK.get(candidate, len(_RANK)) < _RANK.get(than, len(_RANK))


def expiry_reason(
    rule: RuleSpec,
    *,
    last_alert_at: datetime,
    alert_started_at: datetime,
    incident_opened_at: datetime | None,
    incident_status: str | None,
    now: datetime,
) -> str | None:
    """Why a group can take this alert no more, or None when the alert joins it.

    The window slides in alert time (`starts_at`), so that a replay or a late delivery
    groups as the alerts happened; the maximum age is wall-clock time since the incident
    opened, so that no incident stays open for ever under a steady trickle of alerts.
    """
    if incident_status in ("resolved", "closed"):
        return f"its incident is {incident_status}"
    if alert_started_at - last_alert_at > rule.window:
        return f"no alert for longer than the window ({_duration(rule.window)})"
    if incident_opened_at is not None and now - incident_opened_at > rule.max_incident_age:
        return f"the incident is older than the maximum age ({_duration(rule.max_incident_age)})"
    return None


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
