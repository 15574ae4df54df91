"""Specification of alert correlation over HTTP: alerts in, incidents out.

Alerts go in through the Alertmanager webhook (or `POST /api/alerts`); the app's background
correlator groups them by the correlation rules (docs/alerts.md) into incidents, which the
tests read back through the incidents, timeline, alerts and alert-groups endpoints. Windows
are exercised in alert time, with explicit `startsAt`; the maximum incident age, which is
wall-clock time, by running a correlation pass with an explicit `now`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reliability_studio.alerts.correlation import CorrelationSettings, correlate_pending
from reliability_studio.alerts.group_effects import flush_summaries
from reliability_studio.app import create_app
from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from tests.alerts.conftest import wait_for_correlation
from tests.support.api import assert_problem, create_service

# Alert time: in the past, so that a resolve "now" always comes after the start.
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
UNKNOWN_ID = "00000000-0000-4000-8000-00000000dead"
ALERTNAME = "HighErrorRate"
STORM_ALERTS = 10_000
STORM_BATCH = 500


# --- helpers ------------------------------------------------------------------------------


def at(minutes: float) -> datetime:
    """`minutes` after T0, in alert time."""
    return T0 + timedelta(minutes=minutes)


def am_alert(
    alertname: str = ALERTNAME,
    *,
    service: str | None = "checkout",
    instance: str = "i-1",
    status: str = "firing",
    starts_at: datetime = T0,
    ends_at: datetime | None = None,
    annotations: dict[str, str] | None = None,
    generator_url: str | None = None,
    **labels: str,
) -> dict[str, Any]:
    """One alert of an Alertmanager v4 webhook."""
    all_labels = {"alertname": alertname, "instance": instance, **labels}
    if service is not None:
        all_labels["service"] = service
    alert: dict[str, Any] = {
        "status": status,
        "labels": all_labels,
        "annotations": annotations or {},
        "startsAt": starts_at.isoformat(),
        "endsAt": (ends_at or datetime(1, 1, 1, tzinfo=UTC)).isoformat(),
    }
    if generator_url is not None:
        alert["generatorURL"] = generator_url
    return alert


def resolved(alert: dict[str, Any], ends_at: datetime) -> dict[str, Any]:
    """The resolved message of `alert`."""
    return {**alert, "status": "resolved", "endsAt": ends_at.isoformat()}


def post_alerts(client: TestClient, *alerts: dict[str, Any]) -> dict[str, Any]:
    """POST an Alertmanager webhook with `alerts`; returns its ingest summary."""
    body = {
        "version": "4",
        "status": "firing",
        "receiver": "reliability-studio",
        "groupKey": "{}:{}",
        "alerts": list(alerts),
    }
    response = client.post("/api/integrations/alertmanager", json=body)
    assert response.status_code == 202, response.text
    summary: dict[str, Any] = response.json()
    return summary


def send(client: TestClient, *alerts: dict[str, Any]) -> dict[str, Any]:
    """Post `alerts` in one webhook and wait until the correlator has acted on them."""
    summary = post_alerts(client, *alerts)
    wait_for_correlation(client)
    return summary


def get_json(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def incidents(client: TestClient) -> list[dict[str, Any]]:
    """Every incident, newest first."""
    items: list[dict[str, Any]] = get_json(client, "/api/incidents", limit=500)["items"]
    return items


def only_incident(client: TestClient) -> dict[str, Any]:
    """The one incident there is."""
    found = incidents(client)
    assert len(found) == 1, [incident["title"] for incident in found]
    return found[0]


def get_incident(client: TestClient, incident_id: str) -> dict[str, Any]:
    body: dict[str, Any] = get_json(client, f"/api/incidents/{incident_id}")
    return body


def timeline(client: TestClient, incident_id: str) -> list[dict[str, Any]]:
    """The incident's timeline, oldest first."""
    items: list[dict[str, Any]] = get_json(
        client, f"/api/incidents/{incident_id}/timeline", limit=500
    )["items"]
    return items


def events_of(client: TestClient, incident_id: str, type_: str) -> list[dict[str, Any]]:
    return [event for event in timeline(client, incident_id) if event["type"] == type_]


def incident_alerts(client: TestClient, incident_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(
        client, f"/api/incidents/{incident_id}/alerts", limit=500
    )["items"]
    return items


def alert_groups(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(client, "/api/alert-groups", limit=500, **params)[
        "items"
    ]
    return items


def group_of(client: TestClient, incident_id: str) -> dict[str, Any]:
    """The one alert group of an incident."""
    [group] = alert_groups(client, incident_id=incident_id)
    return group


def service_names(incident: dict[str, Any]) -> list[str]:
    return sorted(service["name"] for service in incident["services"])


def create_rule(client: TestClient, **fields: Any) -> dict[str, Any]:
    """POST /api/correlation-rules, asserting that it worked."""
    response = client.post("/api/correlation-rules", json=fields)
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


def rules_by_name(client: TestClient) -> dict[str, dict[str, Any]]:
    return {rule["name"]: rule for rule in get_json(client, "/api/correlation-rules")["items"]}


def patch_incident(
    client: TestClient, incident_id: str, headers: dict[str, str] | None = None, **fields: Any
) -> None:
    response = client.patch(f"/api/incidents/{incident_id}", json=fields, headers=headers)
    assert response.status_code == 200, response.text


def add_note(client: TestClient, incident_id: str) -> None:
    """A human writes on the incident's timeline."""
    response = client.post(
        f"/api/incidents/{incident_id}/timeline",
        json={"type": "note", "title": "Looking at the connection pool"},
        headers={"X-Actor": "alice"},
    )
    assert response.status_code == 201, response.text


def correlate_at(
    client: TestClient, now: datetime, settings: CorrelationSettings | None = None
) -> int:
    """Run one correlation pass in the app's database as if the wall clock read `now`."""
    app = cast(FastAPI, client.app)

    async def run() -> int:
        async with app.state.sessionmaker() as session:
            return await correlate_pending(session, settings or CorrelationSettings(), now)

    assert client.portal is not None, "use the client inside its context manager"
    return client.portal.call(run)


def flush_summaries_at(client: TestClient, now: datetime) -> None:
    """Put the storm summaries due at `now` on the timelines (what every pass ends with),
    without waiting for the turn of the running correlator."""
    app = cast(FastAPI, client.app)

    async def run() -> None:
        async with app.state.sessionmaker() as session:
            await flush_summaries(session, timedelta(seconds=60), now)
            await session.commit()

    assert client.portal is not None, "use the client inside its context manager"
    client.portal.call(run)


@pytest.fixture
def manual_client(settings: Settings) -> Iterator[TestClient]:
    """A client of an app without a background correlator: the test runs the passes."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


# --- a firing alert opens an incident -----------------------------------------------------


def test_a_firing_alert_opens_exactly_one_incident_linked_to_its_service(
    client: TestClient,
) -> None:
    checkout = create_service(client, name="checkout")
    send(client, am_alert(annotations={"summary": "Checkout error rate above 5%"}))

    incident = only_incident(client)
    assert incident["status"] == "open"
    assert [service["id"] for service in incident["services"]] == [checkout["id"]]
    assert "Checkout error rate above 5%" in incident["title"]


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("critical", "critical"), ("warning", "medium"), ("sev-unknown", "medium")],
)
def test_the_incident_severity_is_mapped_from_the_severity_label(
    client: TestClient, severity: str, expected: str
) -> None:
    send(client, am_alert(severity=severity))
    assert only_incident(client)["severity"] == expected


def test_an_alert_without_a_severity_label_opens_an_incident_of_the_default_severity(
    client: TestClient,
) -> None:
    send(client, am_alert())
    assert only_incident(client)["severity"] == "medium"


def test_an_alert_posted_to_the_alerts_api_opens_an_incident_with_its_severity(
    client: TestClient,
) -> None:
    create_service(client, name="checkout")
    response = client.post(
        "/api/alerts",
        json={
            "title": "Checkout error rate above 5%",
            "severity": "page",
            "labels": {"service": "checkout"},
            "starts_at": T0.isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    wait_for_correlation(client)

    incident = only_incident(client)
    assert incident["severity"] == "critical"
    assert "Checkout error rate above 5%" in incident["title"]
    assert service_names(incident) == ["checkout"]


def test_the_new_incident_timeline_has_its_creation_and_the_firing_alert(
    client: TestClient,
) -> None:
    create_service(client, name="checkout")
    send(client, am_alert())
    incident = only_incident(client)
    assert sorted(event["type"] for event in timeline(client, incident["id"])) == [
        "alert_firing",
        "incident_created",
    ]


def test_the_alert_firing_event_carries_labels_annotations_and_generator_url(
    client: TestClient,
) -> None:
    url = "http://prometheus:9090/graph?g0.expr=errors"
    alert = am_alert(
        severity="critical",
        annotations={"summary": "Checkout errors", "runbook_url": "https://runbooks/errors"},
        generator_url=url,
    )
    send(client, alert)

    [event] = events_of(client, only_incident(client)["id"], "alert_firing")
    assert event["metadata"]["labels"] == alert["labels"]
    assert event["metadata"]["annotations"] == alert["annotations"]
    assert event["metadata"]["generator_url"] == url
    assert event["actor"] == "alert-correlation"


def test_the_incident_lists_its_alert_and_the_alert_names_its_incident_and_group(
    client: TestClient,
) -> None:
    summary = send(client, am_alert())
    [alert_id] = summary["alert_ids"]
    incident = only_incident(client)

    [listed] = incident_alerts(client, incident["id"])
    assert listed["id"] == alert_id
    alert = get_json(client, f"/api/alerts/{alert_id}")
    assert alert["incident_id"] == incident["id"]
    assert alert["alert_group_id"] == group_of(client, incident["id"])["id"]
    assert alert["correlated"] is True


def test_the_group_of_a_new_incident_is_open_under_the_default_rule(client: TestClient) -> None:
    send(client, am_alert())
    group = group_of(client, only_incident(client)["id"])
    assert group["status"] == "open"
    assert group["rule_name"] == "default"
    assert group["group_labels"] == {"service": "checkout", "alertname": ALERTNAME}
    assert group["alert_count"] == 1
    assert group["firing_count"] == 1


def test_an_alert_for_a_service_not_in_the_catalog_still_opens_an_incident(
    client: TestClient,
) -> None:
    send(client, am_alert(service="billing"))
    incident = only_incident(client)
    assert incident["services"] == []
    assert "Service 'billing' is not in the catalog." in incident["description"]


# --- grouping ----------------------------------------------------------------------------


def test_the_same_alert_for_two_services_opens_an_incident_per_service(
    client: TestClient,
) -> None:
    create_service(client, name="checkout")
    create_service(client, name="payments")
    send(client, am_alert(service="checkout"), am_alert(service="payments"))

    found = incidents(client)
    assert sorted(service_names(incident) for incident in found) == [["checkout"], ["payments"]]


def test_alerts_of_one_service_and_alertname_on_different_instances_share_one_incident(
    client: TestClient,
) -> None:
    send(client, am_alert(instance="i-1"), am_alert(instance="i-2"))
    send(client, am_alert(instance="i-3", starts_at=at(1)))

    incident = only_incident(client)
    assert len(incident_alerts(client, incident["id"])) == 3
    assert group_of(client, incident["id"])["alert_count"] == 3


def test_different_alertnames_of_one_service_open_separate_incidents(client: TestClient) -> None:
    send(client, am_alert("HighErrorRate"), am_alert("HighLatency"))
    assert len(incidents(client)) == 2


def test_a_rule_grouping_by_alertname_puts_every_service_in_one_incident(
    client: TestClient,
) -> None:
    create_service(client, name="checkout")
    create_service(client, name="payments")
    create_rule(client, name="by-alertname", position=50, group_by=["alertname"])
    send(client, am_alert(service="checkout"), am_alert(service="payments"))

    incident = only_incident(client)
    assert service_names(incident) == ["checkout", "payments"]
    assert group_of(client, incident["id"])["rule_name"] == "by-alertname"


def test_a_later_alert_of_another_service_links_its_service_to_the_open_incident(
    client: TestClient,
) -> None:
    create_service(client, name="checkout")
    create_service(client, name="payments")
    create_rule(client, name="by-alertname", position=50, group_by=["alertname"])
    send(client, am_alert(service="checkout"))
    send(client, am_alert(service="payments", starts_at=at(1)))

    incident = only_incident(client)
    assert service_names(incident) == ["checkout", "payments"]
    [changed] = events_of(client, incident["id"], "services_changed")
    assert changed["metadata"]["added"] == ["payments"]


# --- the window ---------------------------------------------------------------------------


def short_window_rule(client: TestClient) -> dict[str, Any]:
    """A rule like the default one with a five-minute window."""
    return create_rule(client, name="five-minutes", position=50, window_seconds=300)


def test_an_alert_within_the_window_joins_the_groups_incident(client: TestClient) -> None:
    short_window_rule(client)
    send(client, am_alert(instance="i-1", starts_at=at(0)))
    send(client, am_alert(instance="i-2", starts_at=at(2)))

    incident = only_incident(client)
    assert len(incident_alerts(client, incident["id"])) == 2


def test_the_window_slides_with_each_alert_that_joins(client: TestClient) -> None:
    short_window_rule(client)
    for minute, instance in ((0, "i-1"), (4, "i-2"), (8, "i-3")):
        send(client, am_alert(instance=instance, starts_at=at(minute)))
    assert len(incidents(client)) == 1


def test_an_alert_past_the_window_opens_a_new_incident(client: TestClient) -> None:
    short_window_rule(client)
    send(client, am_alert(instance="i-1", starts_at=at(0)))
    first = only_incident(client)
    send(client, am_alert(instance="i-2", starts_at=at(10)))

    found = incidents(client)
    assert len(found) == 2
    assert [alert["labels"]["instance"] for alert in incident_alerts(client, first["id"])] == [
        "i-1"
    ]


def test_an_alert_past_the_window_closes_the_old_group_and_names_its_incident(
    client: TestClient,
) -> None:
    short_window_rule(client)
    send(client, am_alert(instance="i-1", starts_at=at(0)))
    first = only_incident(client)
    send(client, am_alert(instance="i-2", starts_at=at(10)))
    [second] = [incident for incident in incidents(client) if incident["id"] != first["id"]]

    old_group = group_of(client, first["id"])
    assert old_group["status"] == "closed"
    assert old_group["closed_at"] is not None
    new_group = group_of(client, second["id"])
    assert new_group["status"] == "open"
    assert new_group["previous_incident_id"] == first["id"]


def test_the_incident_after_an_expired_window_names_the_earlier_one_on_its_timeline(
    client: TestClient,
) -> None:
    short_window_rule(client)
    send(client, am_alert(instance="i-1", starts_at=at(0)))
    first = only_incident(client)
    send(client, am_alert(instance="i-2", starts_at=at(10)))
    [second] = [incident for incident in incidents(client) if incident["id"] != first["id"]]

    [related] = events_of(client, second["id"], "related_incident")
    assert related["metadata"]["previous_incident_id"] == first["id"]
    assert events_of(client, first["id"], "related_incident") == []


def test_alerts_of_one_group_sent_together_but_further_apart_than_the_window_open_two_incidents(
    client: TestClient,
) -> None:
    short_window_rule(client)
    summary = send(
        client,
        am_alert(instance="i-1", starts_at=at(0)),
        am_alert(instance="i-2", starts_at=at(10)),
    )

    alerts = [get_json(client, f"/api/alerts/{alert_id}") for alert_id in summary["alert_ids"]]
    assert {alert["labels"]["instance"]: alert["incident_id"] is not None for alert in alerts} == {
        "i-1": True,
        "i-2": True,
    }
    assert len(incidents(client)) == 2


def test_a_backlog_correlated_in_one_pass_gives_every_firing_alert_an_incident(
    manual_client: TestClient,
) -> None:
    client = manual_client
    post_alerts(client, am_alert(instance="i-1", starts_at=at(0)))
    post_alerts(client, am_alert(instance="i-2", starts_at=at(120)))  # past the 1 h window
    correlate_at(client, utcnow())  # the correlator catches up after a pause

    alerts = get_json(client, "/api/alerts", limit=500)["items"]
    assert {alert["labels"]["instance"]: alert["incident_id"] is not None for alert in alerts} == {
        "i-1": True,
        "i-2": True,
    }
    assert len(incidents(client)) == 2


# --- the maximum incident age (wall clock; passes run with an explicit `now`) --------------


def test_an_alert_for_an_incident_past_its_maximum_age_opens_a_new_incident(
    manual_client: TestClient,
) -> None:
    client = manual_client
    post_alerts(client, am_alert(instance="i-1", starts_at=at(0)))
    correlate_at(client, utcnow())
    first = only_incident(client)

    post_alerts(client, am_alert(instance="i-2", starts_at=at(1)))
    correlate_at(client, utcnow() + timedelta(hours=25))  # the default maximum age is a day

    [second] = [incident for incident in incidents(client) if incident["id"] != first["id"]]
    assert group_of(client, first["id"])["status"] == "closed"
    assert group_of(client, second["id"])["previous_incident_id"] == first["id"]


def test_an_alert_for_an_incident_younger_than_its_maximum_age_joins_it(
    manual_client: TestClient,
) -> None:
    client = manual_client
    post_alerts(client, am_alert(instance="i-1", starts_at=at(0)))
    correlate_at(client, utcnow())
    post_alerts(client, am_alert(instance="i-2", starts_at=at(1)))
    correlate_at(client, utcnow() + timedelta(hours=23))

    incident = only_incident(client)
    assert len(incident_alerts(client, incident["id"])) == 2


def test_a_short_maximum_age_passes_in_real_time(client: TestClient) -> None:
    create_rule(client, name="one-second", position=50, max_incident_age_seconds=1)
    send(client, am_alert(instance="i-1", starts_at=at(0)))
    time.sleep(1.1)
    send(client, am_alert(instance="i-2", starts_at=at(1)))
    assert len(incidents(client)) == 2


# --- ended incidents are not joined -------------------------------------------------------


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_a_firing_alert_does_not_join_an_ended_incident(client: TestClient, status: str) -> None:
    send(client, am_alert(instance="i-1", starts_at=at(0)))
    first = only_incident(client)
    patch_incident(client, first["id"], status=status)
    send(client, am_alert(instance="i-2", starts_at=at(1)))

    [second] = [incident for incident in incidents(client) if incident["id"] != first["id"]]
    assert second["status"] == "open"
    assert get_incident(client, first["id"])["status"] == status
    assert group_of(client, second["id"])["previous_incident_id"] == first["id"]


# --- the threshold ------------------------------------------------------------------------


def threshold_rule(client: TestClient) -> dict[str, Any]:
    return create_rule(client, name="three-alerts", position=50, threshold=3)


def test_below_the_threshold_no_incident_opens_and_the_group_is_pending(
    client: TestClient,
) -> None:
    threshold_rule(client)
    send(client, am_alert(instance="i-1"), am_alert(instance="i-2"))

    assert incidents(client) == []
    [group] = alert_groups(client)
    assert group["status"] == "pending"
    assert group["incident_id"] is None
    assert group["alert_count"] == 2


def test_reaching_the_threshold_opens_one_incident_with_every_alert_of_the_group(
    client: TestClient,
) -> None:
    threshold_rule(client)
    send(client, am_alert(instance="i-1"), am_alert(instance="i-2"))
    send(client, am_alert(instance="i-3", starts_at=at(1)))

    incident = only_incident(client)
    assert len(incident_alerts(client, incident["id"])) == 3
    assert group_of(client, incident["id"])["status"] == "open"
    assert len(events_of(client, incident["id"], "alert_firing")) == 3


def test_repeats_of_the_same_alert_do_not_count_towards_the_threshold(
    client: TestClient,
) -> None:
    threshold_rule(client)
    send(client, am_alert(instance="i-1"))
    send(client, am_alert(instance="i-1"))
    send(client, am_alert(instance="i-1"), am_alert(instance="i-2"))

    assert incidents(client) == []
    [group] = alert_groups(client)
    assert group["status"] == "pending"
    assert group["alert_count"] == 2


def test_the_threshold_counts_alerts_of_one_request_together(client: TestClient) -> None:
    threshold_rule(client)
    send(client, *(am_alert(instance=f"i-{n}") for n in range(3)))
    assert len(incident_alerts(client, only_incident(client)["id"])) == 3


# --- what never opens an incident ---------------------------------------------------------


def test_a_resolved_alert_alone_opens_no_incident(client: TestClient) -> None:
    summary = send(client, resolved(am_alert(), ends_at=at(5)))
    assert incidents(client) == []
    [alert_id] = summary["alert_ids"]
    alert = get_json(client, f"/api/alerts/{alert_id}")
    assert alert["status"] == "resolved"
    assert alert["incident_id"] is None


def test_a_heartbeat_alert_is_stored_but_never_opens_an_incident(client: TestClient) -> None:
    summary = send(client, am_alert("Watchdog", service=None, severity="none"))

    assert incidents(client) == []
    assert alert_groups(client) == []
    [alert_id] = summary["alert_ids"]
    alert = get_json(client, f"/api/alerts/{alert_id}")
    assert alert["labels"]["alertname"] == "Watchdog"
    assert alert["correlated"] is True
    assert alert["incident_id"] is None
    assert alert["alert_group_id"] is None


def test_a_heartbeat_alert_with_a_service_label_opens_no_incident_either(
    client: TestClient,
) -> None:
    create_service(client, name="checkout")
    send(client, am_alert("DeadMansSwitch", service="checkout"))
    assert incidents(client) == []


# --- severity -----------------------------------------------------------------------------


def test_a_more_severe_alert_joining_raises_the_incident_severity(client: TestClient) -> None:
    send(client, am_alert(instance="i-1", severity="warning"))
    incident = only_incident(client)
    assert incident["severity"] == "medium"
    send(client, am_alert(instance="i-2", severity="critical", starts_at=at(1)))

    assert get_incident(client, incident["id"])["severity"] == "critical"
    [change] = events_of(client, incident["id"], "severity_change")
    assert change["metadata"] == {"from": "medium", "to": "critical"}
    assert change["actor"] == "alert-correlation"


def test_a_less_severe_alert_joining_never_lowers_the_incident_severity(
    client: TestClient,
) -> None:
    send(client, am_alert(instance="i-1", severity="critical"))
    send(client, am_alert(instance="i-2", severity="info", starts_at=at(1)))

    incident = only_incident(client)
    assert incident["severity"] == "critical"
    assert events_of(client, incident["id"], "severity_change") == []


def test_an_incident_opened_by_several_alerts_takes_the_most_severe(client: TestClient) -> None:
    send(
        client,
        am_alert(instance="i-1", severity="info"),
        am_alert(instance="i-2", severity="error"),
        am_alert(instance="i-3", severity="warning"),
    )
    assert only_incident(client)["severity"] == "high"


def test_a_more_severe_alert_does_not_raise_an_incident_a_human_has_written_on(
    client: TestClient,
) -> None:
    send(client, am_alert(instance="i-1", severity="warning"))
    incident = only_incident(client)
    add_note(client, incident["id"])
    send(client, am_alert(instance="i-2", severity="critical", starts_at=at(1)))

    assert get_incident(client, incident["id"])["severity"] == "medium"
    assert events_of(client, incident["id"], "severity_change") == []
    assert len(incident_alerts(client, incident["id"])) == 2


def test_a_more_severe_alert_does_not_raise_an_incident_whose_status_a_human_changed(
    client: TestClient,
) -> None:
    send(client, am_alert(instance="i-1", severity="warning"))
    incident = only_incident(client)
    patch_incident(client, incident["id"], status="investigating")
    send(client, am_alert(instance="i-2", severity="critical", starts_at=at(1)))

    assert get_incident(client, incident["id"])["severity"] == "medium"


# --- resolution ---------------------------------------------------------------------------


def fire_then_resolve(client: TestClient, *, note: bool = False) -> dict[str, Any]:
    """Fire one alert, let it open its incident, then resolve it; returns the incident as
    it is now."""
    alert = am_alert()
    send(client, alert)
    incident = only_incident(client)
    if note:
        add_note(client, incident["id"])
    send(client, resolved(alert, ends_at=at(5)))
    return get_incident(client, incident["id"])


def test_when_every_alert_resolves_the_incident_moves_to_monitoring(client: TestClient) -> None:
    incident = fire_then_resolve(client)
    assert incident["status"] == "monitoring"
    [change] = events_of(client, incident["id"], "status_change")
    assert change["metadata"] == {"from": "open", "to": "monitoring"}
    assert change["actor"] == "alert-correlation"


def test_a_resolved_alert_goes_on_the_timeline(client: TestClient) -> None:
    incident = fire_then_resolve(client)
    [event] = events_of(client, incident["id"], "alert_resolved")
    assert event["metadata"]["labels"]["alertname"] == ALERTNAME


def test_the_group_stays_open_while_its_incident_is_monitored(client: TestClient) -> None:
    incident = fire_then_resolve(client)
    group = group_of(client, incident["id"])
    assert group["status"] == "open"
    assert group["firing_count"] == 0


def test_with_the_resolved_policy_the_incident_resolves_and_its_group_closes(
    client: TestClient,
) -> None:
    create_rule(client, name="auto-resolve", position=50, resolve_policy="resolved")
    incident = fire_then_resolve(client)
    assert incident["status"] == "resolved"
    assert incident["resolved_at"] is not None
    assert group_of(client, incident["id"])["status"] == "closed"


def test_with_the_manual_policy_the_incident_stays_open(client: TestClient) -> None:
    create_rule(client, name="by-hand", position=50, resolve_policy="manual")
    incident = fire_then_resolve(client)
    assert incident["status"] == "open"
    assert events_of(client, incident["id"], "status_change") == []


def test_an_incident_a_human_has_written_on_does_not_move_when_its_alerts_resolve(
    client: TestClient,
) -> None:
    incident = fire_then_resolve(client, note=True)
    assert incident["status"] == "open"


def test_an_incident_a_human_moved_to_investigating_stays_there_when_its_alerts_resolve(
    client: TestClient,
) -> None:
    alert = am_alert()
    send(client, alert)
    incident = only_incident(client)
    patch_incident(client, incident["id"], status="investigating")
    send(client, resolved(alert, ends_at=at(5)))

    assert get_incident(client, incident["id"])["status"] == "investigating"


def test_while_one_alert_still_fires_the_incident_does_not_move(client: TestClient) -> None:
    first, second = am_alert(instance="i-1"), am_alert(instance="i-2")
    send(client, first, second)
    incident = only_incident(client)
    send(client, resolved(first, ends_at=at(5)))

    assert get_incident(client, incident["id"])["status"] == "open"
    assert group_of(client, incident["id"])["firing_count"] == 1


def test_when_the_last_of_several_alerts_resolves_the_incident_moves(client: TestClient) -> None:
    first, second = am_alert(instance="i-1"), am_alert(instance="i-2")
    send(client, first, second)
    incident = only_incident(client)
    send(client, resolved(first, ends_at=at(5)))
    send(client, resolved(second, ends_at=at(6)))

    assert get_incident(client, incident["id"])["status"] == "monitoring"


def test_an_alert_firing_again_while_monitored_moves_the_incident_to_investigating(
    client: TestClient,
) -> None:
    incident = fire_then_resolve(client)
    assert incident["status"] == "monitoring"
    send(client, am_alert(starts_at=at(10)))

    assert get_incident(client, incident["id"])["status"] == "investigating"
    assert len(incident_alerts(client, incident["id"])) == 2
    assert only_incident(client)["id"] == incident["id"]


def test_an_alert_firing_again_after_an_automatic_resolve_opens_a_new_incident(
    client: TestClient,
) -> None:
    create_rule(client, name="auto-resolve", position=50, resolve_policy="resolved")
    first = fire_then_resolve(client)
    send(client, am_alert(starts_at=at(10)))

    [second] = [incident for incident in incidents(client) if incident["id"] != first["id"]]
    assert get_incident(client, first["id"])["status"] == "resolved"
    assert group_of(client, second["id"])["previous_incident_id"] == first["id"]
    [related] = events_of(client, second["id"], "related_incident")
    assert related["metadata"]["previous_incident_id"] == first["id"]


def test_an_alert_firing_again_does_not_move_a_monitored_incident_a_human_worked_on(
    client: TestClient,
) -> None:
    alert = am_alert()
    send(client, alert)
    incident = only_incident(client)
    patch_incident(client, incident["id"], status="monitoring")
    send(client, resolved(alert, ends_at=at(5)))
    send(client, am_alert(starts_at=at(10)))

    assert get_incident(client, incident["id"])["status"] == "monitoring"


# --- a storm ------------------------------------------------------------------------------


def test_an_alert_storm_opens_one_incident_with_a_bounded_timeline(client: TestClient) -> None:
    create_service(client, name="checkout")
    started = time.monotonic()
    for batch in range(STORM_ALERTS // STORM_BATCH):
        first = batch * STORM_BATCH
        summary = post_alerts(
            client, *(am_alert(instance=f"i-{n}") for n in range(first, first + STORM_BATCH))
        )
        assert summary["created"] == STORM_BATCH
    wait_for_correlation(client)
    # Summaries come at most once a minute; a minute on, the rest goes on the timeline.
    flush_summaries_at(client, utcnow() + timedelta(seconds=61))
    elapsed = time.monotonic() - started

    incident = only_incident(client)
    events = timeline(client, incident["id"])
    storms = [event for event in events if event["type"] == "alert_storm"]
    assert len(events) <= 15, [event["type"] for event in events]
    assert sum(event["type"] == "incident_created" for event in events) == 1
    assert sum(event["type"] == "alert_firing" for event in events) == 10
    assert storms
    assert sum(event["metadata"]["firing"] for event in storms) == STORM_ALERTS - 10
    assert sum(event["metadata"]["alertnames"][ALERTNAME] for event in storms) == (
        STORM_ALERTS - 10
    )
    group = group_of(client, incident["id"])
    assert group["alert_count"] == STORM_ALERTS
    assert group["firing_count"] == STORM_ALERTS
    assert elapsed < 60, f"the storm took {elapsed:.1f} s"


@pytest.fixture
def two_detail_client(settings: Settings) -> Iterator[TestClient]:
    """A live client with ALERT_TIMELINE_DETAIL_LIMIT=2."""
    live = settings.model_copy(
        update={
            "alert_correlation_enabled": True,
            "alert_correlation_poll_seconds": 0.05,
            "alert_timeline_detail_limit": 2,
        }
    )
    with TestClient(create_app(live)) as test_client:
        yield test_client


def test_past_the_detail_limit_alerts_are_summed_in_a_storm_event(
    two_detail_client: TestClient,
) -> None:
    client = two_detail_client
    send(client, *(am_alert(instance=f"i-{n}") for n in range(5)))

    incident = only_incident(client)
    assert len(events_of(client, incident["id"], "alert_firing")) == 2
    [storm] = events_of(client, incident["id"], "alert_storm")
    assert storm["title"] == f"Alert storm: 3 more alerts firing (top: {ALERTNAME} x3)"
    assert storm["metadata"]["firing"] == 3
    assert storm["metadata"]["resolved"] == 0
    assert storm["metadata"]["alertnames"] == {ALERTNAME: 3}
    assert storm["metadata"]["alerts_in_group"] == 5


def test_storm_summaries_come_at_most_once_per_interval(manual_client: TestClient) -> None:
    client = manual_client
    settings = CorrelationSettings(detail_limit=2, summary_interval=timedelta(seconds=60))
    start = utcnow()
    post_alerts(client, *(am_alert(instance=f"i-{n}") for n in range(5)))
    correlate_at(client, start, settings)
    incident = only_incident(client)
    post_alerts(client, *(am_alert(instance=f"j-{n}", starts_at=at(1)) for n in range(4)))

    correlate_at(client, start + timedelta(seconds=30), settings)
    assert [e["metadata"]["firing"] for e in events_of(client, incident["id"], "alert_storm")] == [
        3
    ]
    correlate_at(client, start + timedelta(seconds=61), settings)
    assert [e["metadata"]["firing"] for e in events_of(client, incident["id"], "alert_storm")] == [
        3,
        4,
    ]


def test_resolved_alerts_past_the_detail_limit_are_counted_as_resolved(
    manual_client: TestClient,
) -> None:
    client = manual_client
    settings = CorrelationSettings(detail_limit=2, summary_interval=timedelta(seconds=60))
    start = utcnow()
    alerts = [am_alert(instance=f"i-{n}") for n in range(2)]
    post_alerts(client, *alerts)
    correlate_at(client, start, settings)
    post_alerts(client, *(resolved(alert, ends_at=at(5)) for alert in alerts))
    correlate_at(client, start + timedelta(seconds=1), settings)

    incident = only_incident(client)
    [storm] = events_of(client, incident["id"], "alert_storm")
    assert storm["metadata"]["resolved"] == 2
    assert storm["metadata"]["firing"] == 0
    assert get_incident(client, incident["id"])["status"] == "monitoring"


# --- correlation rules: the API -----------------------------------------------------------


def test_the_default_rules_are_listed_in_the_order_they_are_tried(client: TestClient) -> None:
    items = get_json(client, "/api/correlation-rules")["items"]
    assert [(rule["name"], rule["position"]) for rule in items] == [
        ("heartbeats", 10),
        ("default", 100),
    ]
    heartbeats, default = items
    assert heartbeats["action"] == "record_only"
    assert default["matchers"] == []
    assert default["group_by"] == ["service", "alertname"]


def test_creating_a_rule_answers_201_with_its_location_and_the_rule(client: TestClient) -> None:
    response = client.post(
        "/api/correlation-rules",
        json={"name": "databases", "position": 40, "matchers": ['team=~"db|dba"']},
    )
    assert response.status_code == 201, response.text
    rule = response.json()
    assert response.headers["location"] == f"/api/correlation-rules/{rule['id']}"
    assert rule["name"] == "databases"
    assert rule["matchers"] == ['team=~"db|dba"']
    assert rule["window_seconds"] == 3600
    assert rule["resolve_policy"] == "monitoring"
    assert get_json(client, response.headers["location"]) == rule


def test_a_created_rule_is_listed_by_position(client: TestClient) -> None:
    create_rule(client, name="databases", position=40)
    names = [rule["name"] for rule in get_json(client, "/api/correlation-rules")["items"]]
    assert names == ["heartbeats", "databases", "default"]


def test_patching_a_rule_changes_only_the_fields_sent(client: TestClient) -> None:
    rule = create_rule(client, name="databases", position=40, threshold=2)
    response = client.patch(
        f"/api/correlation-rules/{rule['id']}", json={"window_seconds": 600, "enabled": False}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["window_seconds"] == 600
    assert body["enabled"] is False
    assert body["threshold"] == 2
    assert body["position"] == 40
    assert get_json(client, f"/api/correlation-rules/{rule['id']}") == body


def test_patching_the_description_to_null_clears_it(client: TestClient) -> None:
    rule = create_rule(client, name="databases", description="For the DBAs")
    response = client.patch(f"/api/correlation-rules/{rule['id']}", json={"description": None})
    assert response.status_code == 200, response.text
    assert response.json()["description"] is None


def test_deleting_a_rule_answers_204_and_it_is_gone(client: TestClient) -> None:
    rule = create_rule(client, name="databases")
    response = client.delete(f"/api/correlation-rules/{rule['id']}")
    assert response.status_code == 204, response.text
    assert_problem(client.get(f"/api/correlation-rules/{rule['id']}"), 404)
    assert "databases" not in rules_by_name(client)


def test_deleting_a_rule_closes_its_live_groups_and_leaves_their_incidents(
    client: TestClient,
) -> None:
    rule = create_rule(client, name="everything", position=50)
    send(client, am_alert())
    incident = only_incident(client)
    group = group_of(client, incident["id"])
    assert group["rule_id"] == rule["id"]

    response = client.delete(f"/api/correlation-rules/{rule['id']}")
    assert response.status_code == 204, response.text
    closed = get_json(client, f"/api/alert-groups/{group['id']}")
    assert closed["status"] == "closed"
    assert get_incident(client, incident["id"])["status"] == "open"


def test_after_its_rule_is_deleted_the_next_alert_goes_to_the_next_rule(
    client: TestClient,
) -> None:
    rule = create_rule(client, name="everything", position=50)
    send(client, am_alert(instance="i-1"))
    first = only_incident(client)
    assert client.delete(f"/api/correlation-rules/{rule['id']}").status_code == 204
    send(client, am_alert(instance="i-2", starts_at=at(1)))

    [second] = [incident for incident in incidents(client) if incident["id"] != first["id"]]
    assert group_of(client, second["id"])["rule_name"] == "default"


def test_a_duplicate_rule_name_is_a_conflict_naming_the_name(client: TestClient) -> None:
    problem = assert_problem(client.post("/api/correlation-rules", json={"name": "default"}), 409)
    assert "'default'" in problem["detail"]


def test_renaming_a_rule_to_a_taken_name_is_a_conflict(client: TestClient) -> None:
    rule = create_rule(client, name="databases")
    response = client.patch(f"/api/correlation-rules/{rule['id']}", json={"name": "heartbeats"})
    problem = assert_problem(response, 409)
    assert "'heartbeats'" in problem["detail"]
    assert get_json(client, f"/api/correlation-rules/{rule['id']}")["name"] == "databases"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"matchers": ["severity critical"]}, "matchers.0"),
        ({"matchers": ['team="db"', 'alertname=~"(unclosed"']}, "matchers.1"),
        ({"group_by": []}, "group_by"),
        ({"group_by": ["service", "team-name"]}, "group_by.1"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"max_incident_age_seconds": 0}, "max_incident_age_seconds"),
        ({"threshold": 0}, "threshold"),
        ({"default_severity": "urgent"}, "default_severity"),
        ({"severity_map": {"page": "urgent"}}, "severity_map.page"),
        ({"resolve_policy": "sometimes"}, "resolve_policy"),
        ({"action": "page_everyone"}, "action"),
        ({"name": ""}, "name"),
        ({"surprise": True}, "surprise"),
    ],
    ids=[
        "matcher-syntax",
        "matcher-regex",
        "group-by-empty",
        "group-by-dash",
        "window-zero",
        "max-age-zero",
        "threshold-zero",
        "default-severity",
        "severity-map-value",
        "resolve-policy",
        "action",
        "empty-name",
        "unknown-field",
    ],
)
def test_an_invalid_rule_is_refused_naming_the_field(
    client: TestClient, fields: dict[str, Any], field: str
) -> None:
    response = client.post("/api/correlation-rules", json={"name": "bad", **fields})
    assert_problem(response, 422, field)
    assert "bad" not in rules_by_name(client)


@pytest.mark.parametrize(
    "field",
    ["name", "enabled", "position", "matchers", "group_by", "window_seconds", "resolve_policy"],
)
def test_patching_a_required_field_to_null_is_refused_naming_it(
    client: TestClient, field: str
) -> None:
    default = rules_by_name(client)["default"]
    response = client.patch(f"/api/correlation-rules/{default['id']}", json={field: None})
    assert_problem(response, 422, field)
    assert rules_by_name(client)["default"] == default


def test_patching_with_an_invalid_value_is_refused_naming_the_field(client: TestClient) -> None:
    default = rules_by_name(client)["default"]
    response = client.patch(
        f"/api/correlation-rules/{default['id']}", json={"matchers": ["=nothing"]}
    )
    assert_problem(response, 422, "matchers.0")


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_an_unknown_rule_is_not_found(client: TestClient, method: str) -> None:
    kwargs: dict[str, Any] = {"json": {"threshold": 2}} if method == "patch" else {}
    response = client.request(method.upper(), f"/api/correlation-rules/{UNKNOWN_ID}", **kwargs)
    assert_problem(response, 404)


def test_the_alerts_of_an_unknown_incident_are_not_found(client: TestClient) -> None:
    assert_problem(client.get(f"/api/incidents/{UNKNOWN_ID}/alerts"), 404)


def test_an_unknown_alert_group_is_not_found(client: TestClient) -> None:
    assert_problem(client.get(f"/api/alert-groups/{UNKNOWN_ID}"), 404)


# --- correlation rules: which one takes an alert -----------------------------------------


def test_rules_are_tried_by_position_not_by_name_or_creation(client: TestClient) -> None:
    create_rule(client, name="a-later", position=60, group_by=["service"])
    create_rule(client, name="z-earlier", position=40, group_by=["service"])
    send(client, am_alert())
    assert group_of(client, only_incident(client)["id"])["rule_name"] == "z-earlier"


def test_rules_at_the_same_position_are_tried_by_name(client: TestClient) -> None:
    create_rule(client, name="beta", position=50, group_by=["service"])
    create_rule(client, name="alpha", position=50, group_by=["service"])
    send(client, am_alert())
    assert group_of(client, only_incident(client)["id"])["rule_name"] == "alpha"


def test_a_rule_whose_matchers_do_not_match_is_passed_over(client: TestClient) -> None:
    create_rule(client, name="databases", position=50, matchers=['team="db"'])
    send(client, am_alert(team="web"))
    assert group_of(client, only_incident(client)["id"])["rule_name"] == "default"


def test_an_earlier_record_only_rule_keeps_matching_alerts_out_of_incidents(
    client: TestClient,
) -> None:
    create_rule(
        client, name="sandbox", position=50, matchers=['env="sandbox"'], action="record_only"
    )
    send(client, am_alert(env="sandbox"), am_alert("HighLatency", env="prod"))

    incident = only_incident(client)
    assert [alert["labels"]["env"] for alert in incident_alerts(client, incident["id"])] == ["prod"]


def test_a_disabled_rule_is_skipped_and_the_next_rule_takes_the_alert(client: TestClient) -> None:
    create_rule(client, name="sandbox", position=50, action="record_only", enabled=False)
    send(client, am_alert())
    assert group_of(client, only_incident(client)["id"])["rule_name"] == "default"


def test_moving_a_rule_earlier_makes_it_take_new_alerts(client: TestClient) -> None:
    rule = create_rule(client, name="by-service", position=200, group_by=["service"])
    send(client, am_alert("HighErrorRate"))
    response = client.patch(f"/api/correlation-rules/{rule['id']}", json={"position": 50})
    assert response.status_code == 200, response.text
    send(client, am_alert("HighLatency", starts_at=at(1)))

    names = sorted(group["rule_name"] for group in alert_groups(client))
    assert names == ["by-service", "default"]
