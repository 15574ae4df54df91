"""Correlation rules as pure logic (grouping.py): which rule takes an alert, its group key,
its severity, and when a group stops taking alerts. One behaviour per test; no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from reliability_studio.alerts.grouping import (
    RuleSpec,
    alert_severity,
    expiry_reason,
    group_key,
    group_labels,
    is_more_severe,
    most_severe,
    select_rule,
)
from reliability_studio.alerts.matchers import parse_matcher
from reliability_studio.alerts.rule_schemas import DEFAULT_SEVERITY_MAP
from reliability_studio.incidents.lifecycle import Severity

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CHECKOUT = {"service": "checkout", "alertname": "HighErrorRate", "instance": "a:9100"}


def rule(
    name: str = "default",
    *,
    matchers: tuple[str, ...] = (),
    group_by: tuple[str, ...] = ("service", "alertname"),
    window_seconds: int = 3600,
    max_age_seconds: int = 86400,
    severity_label: str = "severity",
    severity_map: Mapping[str, Severity] = DEFAULT_SEVERITY_MAP,
    default_severity: Severity = "medium",
) -> RuleSpec:
    """A rule with the default rule's values unless told otherwise."""
    return RuleSpec(
        id=uuid.uuid4(),
        name=name,
        matchers=tuple(parse_matcher(text) for text in matchers),
        action="open_incident",
        group_by=group_by,
        window=timedelta(seconds=window_seconds),
        max_incident_age=timedelta(seconds=max_age_seconds),
        threshold=1,
        severity_label=severity_label,
        severity_map=dict(severity_map),
        default_severity=default_severity,
        resolve_policy="monitoring",
    )


def expiry(
    spec: RuleSpec,
    *,
    started_after_last: timedelta = timedelta(0),
    incident_age: timedelta | None = timedelta(0),
    incident_status: str | None = "open",
) -> str | None:
    """`expiry_reason` for an alert starting `started_after_last` after the group's last
    alert, with an incident opened `incident_age` ago (None: no incident yet)."""
    now = T0 + timedelta(days=400)
    return expiry_reason(
        spec,
        last_alert_at=T0,
        alert_started_at=T0 + started_after_last,
        incident_opened_at=None if incident_age is None else now - incident_age,
        incident_status=incident_status,
        now=now,
    )


# select_rule


def test_select_rule_takes_the_first_matching_rule_in_the_given_order() -> None:
    first, second = rule("first"), rule("second")
    assert select_rule([first, second], CHECKOUT) is first
    assert select_rule([second, first], CHECKOUT) is second


def test_select_rule_skips_a_rule_whose_matchers_do_not_match() -> None:
    payments_only = rule("payments", matchers=('service="payments"',))
    fallback = rule("fallback")
    assert select_rule([payments_only, fallback], CHECKOUT) is fallback


def test_select_rule_needs_every_matcher_of_a_rule_to_match() -> None:
    both = rule("both", matchers=('service="checkout"', 'severity="critical"'))
    assert select_rule([both], {**CHECKOUT, "severity": "warning"}) is None
    assert select_rule([both], {**CHECKOUT, "severity": "critical"}) is both


def test_select_rule_with_no_matchers_takes_every_alert() -> None:
    catch_all = rule("catch-all")
    assert select_rule([catch_all], {}) is catch_all


def test_select_rule_matches_regexes_against_the_whole_value() -> None:
    heartbeats = rule("heartbeats", matchers=('alertname=~"Watchdog|DeadMansSwitch"',))
    assert select_rule([heartbeats], {"alertname": "Watchdog"}) is heartbeats
    assert select_rule([heartbeats], {"alertname": "WatchdogFailed"}) is None


def test_select_rule_reads_an_absent_label_as_empty() -> None:
    no_team = rule("no-team", matchers=('team=""',))
    assert select_rule([no_team], CHECKOUT) is no_team
    assert select_rule([no_team], {**CHECKOUT, "team": "db"}) is None


def test_select_rule_returns_none_when_no_rule_matches() -> None:
    assert select_rule([rule(matchers=('service="payments"',))], CHECKOUT) is None


def test_select_rule_returns_none_without_rules() -> None:
    assert select_rule([], CHECKOUT) is None


# group_key and group_labels


def test_group_key_is_the_same_for_the_same_group_by_values() -> None:
    spec = rule()
    assert group_key(spec, CHECKOUT) == group_key(spec, dict(CHECKOUT))


def test_group_key_ignores_labels_outside_group_by() -> None:
    spec = rule()
    other_instance = {**CHECKOUT, "instance": "b:9100", "severity": "critical"}
    assert group_key(spec, other_instance) == group_key(spec, CHECKOUT)


def test_group_key_does_not_depend_on_the_order_of_the_labels() -> None:
    spec = rule()
    reversed_labels = dict(reversed(list(CHECKOUT.items())))
    assert group_key(spec, reversed_labels) == group_key(spec, CHECKOUT)


def test_group_key_differs_when_a_group_by_value_differs() -> None:
    spec = rule()
    assert group_key(spec, {**CHECKOUT, "service": "payments"}) != group_key(spec, CHECKOUT)
    assert group_key(spec, {**CHECKOUT, "alertname": "HighLatency"}) != group_key(spec, CHECKOUT)


def test_group_key_values_cannot_run_into_each_other() -> None:
    spec = rule()
    assert group_key(spec, {"service": "a,b", "alertname": "c"}) != group_key(
        spec, {"service": "a", "alertname": "b,c"}
    )


def test_group_key_of_an_absent_label_equals_that_of_an_empty_one() -> None:
    spec = rule()
    assert group_key(spec, {"alertname": "HighErrorRate"}) == group_key(
        spec, {"alertname": "HighErrorRate", "service": ""}
    )


def test_group_key_of_an_absent_label_differs_from_a_present_value() -> None:
    spec = rule()
    assert group_key(spec, {"alertname": "HighErrorRate"}) != group_key(spec, CHECKOUT)


def test_group_key_is_stable_text() -> None:
    spec = rule(group_by=("service", "alertname"))
    assert group_key(spec, CHECKOUT) == '[["service","checkout"],["alertname","HighErrorRate"]]'


def test_group_labels_are_the_group_by_values_with_absent_ones_empty() -> None:
    spec = rule(group_by=("service", "alertname", "cluster"))
    assert group_labels(spec, CHECKOUT) == {
        "service": "checkout",
        "alertname": "HighErrorRate",
        "cluster": "",
    }


# alert_severity


@pytest.mark.parametrize(
    ("value", "expected"),
    [("critical", "critical"), ("page", "critical"), ("error", "high"), ("warning", "medium")],
)
def test_alert_severity_maps_the_severity_label(value: str, expected: Severity) -> None:
    assert alert_severity(rule(), {**CHECKOUT, "severity": value}) == expected


def test_alert_severity_of_an_unknown_value_is_the_default() -> None:
    spec = rule(default_severity="low")
    assert alert_severity(spec, {**CHECKOUT, "severity": "catastrophic"}) == "low"


def test_alert_severity_without_the_label_is_the_default() -> None:
    assert alert_severity(rule(default_severity="high"), CHECKOUT) == "high"


def test_alert_severity_reads_the_rules_severity_label() -> None:
    spec = rule(severity_label="priority", severity_map={"P1": "critical"})
    assert alert_severity(spec, {**CHECKOUT, "priority": "P1", "severity": "info"}) == "critical"


def test_alert_severity_uses_only_the_rules_own_map() -> None:
    spec = rule(severity_map={"sev1": "critical"}, default_severity="low")
    assert alert_severity(spec, {**CHECKOUT, "severity": "critical"}) == "low"


# most_severe and is_more_severe


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("critical", "low", "critical"),
        ("low", "critical", "critical"),
        ("high", "medium", "high"),
        ("medium", "high", "high"),
        ("medium", "low", "medium"),
        ("low", "low", "low"),
    ],
)
def test_most_severe_is_the_more_severe_of_the_two(
    first: Severity, second: Severity, expected: Severity
) -> None:
    assert most_severe(first, second) == expected


def test_is_more_severe_is_strict() -> None:
    assert is_more_severe("critical", "medium")
    assert not is_more_severe("medium", "critical")
    assert not is_more_severe("high", "high")


# expiry_reason


def test_an_alert_within_the_window_joins() -> None:
    assert expiry(rule(window_seconds=300), started_after_last=timedelta(minutes=2)) is None


def test_an_alert_exactly_one_window_after_the_last_still_joins() -> None:
    assert expiry(rule(window_seconds=300), started_after_last=timedelta(seconds=300)) is None


def test_an_alert_past_the_window_does_not_join_and_says_why() -> None:
    reason = expiry(rule(window_seconds=300), started_after_last=timedelta(minutes=10))
    assert reason is not None
    assert "window" in reason
    assert "5m" in reason


def test_an_alert_that_started_before_the_groups_last_one_joins() -> None:
    assert expiry(rule(window_seconds=300), started_after_last=-timedelta(hours=5)) is None


def test_an_alert_for_an_incident_past_its_maximum_age_does_not_join_and_says_why() -> None:
    reason = expiry(rule(max_age_seconds=86400), incident_age=timedelta(hours=25))
    assert reason is not None
    assert "maximum age" in reason
    assert "1d" in reason


def test_an_alert_for_an_incident_exactly_at_its_maximum_age_joins() -> None:
    assert expiry(rule(max_age_seconds=3600), incident_age=timedelta(seconds=3600)) is None


def test_the_maximum_age_does_not_apply_before_the_group_has_an_incident() -> None:
    assert expiry(rule(max_age_seconds=60), incident_age=None, incident_status=None) is None


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_an_alert_for_an_ended_incident_does_not_join_and_says_why(status: str) -> None:
    reason = expiry(rule(), incident_status=status)
    assert reason is not None
    assert status in reason


@pytest.mark.parametrize("status", ["open", "investigating", "identified", "monitoring"])
def test_an_alert_for_an_incident_still_in_progress_joins(status: str) -> None:
    assert expiry(rule(), incident_status=status) is None
