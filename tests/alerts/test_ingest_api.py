"""Specification of alert ingestion over HTTP: the Alertmanager and Grafana webhooks,
`POST /api/alerts`, deduplication, refusals (bad payloads, tokens, rate limits), and
browsing alerts with `GET /api/alerts`.

Every test runs on SQLite and on PostgreSQL; `client` runs the background correlator, as
`serve` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from reliability_studio.app import create_app
from reliability_studio.config import Settings
from tests.alerts.conftest import wait_for_correlation
from tests.support.alertmanager_samples import REAL_FINGERPRINT, REAL_LABELS
from tests.support.api import (
    ALERTMANAGER_WEBHOOK,
    alertmanager_alert,
    alertmanager_payload,
    assert_problem,
    collect_pages,
    create_service,
    post_alertmanager,
)

GRAFANA_WEBHOOK = "/api/integrations/grafana"
UNKNOWN_ID = "00000000-0000-4000-8000-00000000dead"
TOKEN = "am-7f3a9c2e-secret"
CORRELATOR_FIELDS = ("correlated", "alert_group_id", "incident_id")


# --- helpers ------------------------------------------------------------------------------


@contextmanager
def app_client(settings: Settings, **update: Any) -> Iterator[TestClient]:
    """A client of an app with `settings` changed by `update` (no correlator unless asked)."""
    with TestClient(create_app(settings.model_copy(update=update))) as test_client:
        yield test_client


def list_alerts(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """The first 500 alerts `GET /api/alerts` serves for `params`."""
    response = client.get("/api/alerts", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def only_alert(client: TestClient, **params: Any) -> dict[str, Any]:
    """The one alert listed for `params`."""
    [alert] = list_alerts(client, **params)
    return alert


def without_correlation(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert without the fields the background correlator may change at any moment."""
    return {k: v for k, v in alert.items() if k not in CORRELATOR_FIELDS}


def names(alerts: list[dict[str, Any]]) -> list[str]:
    """The `alertname` label of each alert, in order."""
    return [alert["labels"]["alertname"] for alert in alerts]


def parse_time(value: str) -> datetime:
    """A time from a response, which must carry its offset."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def utc(text: str) -> datetime:
    """An RFC 3339 time as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def summary_counts(summary: dict[str, Any]) -> dict[str, int]:
    """The counters of an ingest summary."""
    return {key: summary[key] for key in ("received", "created", "updated", "duplicates", "stale")}


def counts(
    received: int, created: int = 0, updated: int = 0, duplicates: int = 0, stale: int = 0
) -> dict[str, int]:
    """Expected counters of an ingest summary."""
    return {
        "received": received,
        "created": created,
        "updated": updated,
        "duplicates": duplicates,
        "stale": stale,
    }


def grafana_payload() -> dict[str, Any]:
    """A message of Grafana alerting's webhook contact point, as Grafana 10 sends it."""
    return {
        "receiver": "reliability-studio",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "High memory usage",
                    "grafana_folder": "Checkout",
                    "service": "checkout",
                    "severity": "warning",
                },
                "annotations": {
                    "description": "Memory usage is above 90% on checkout",
                    "runbook_url": "https://runbooks.example.com/memory",
                    "summary": "Checkout memory above 90%",
                },
                "startsAt": "2026-11-26T11:51:03.157076+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://grafana.example.com/alerting/grafana/fe1b3d6/view",
                "fingerprint": "c6eadffa33fcdf37",
                "silenceURL": "https://grafana.example.com/alerting/silence/new?alertmanager=grafana",
                "dashboardURL": "https://grafana.example.com/d/checkout",
                "panelURL": "https://grafana.example.com/d/checkout?viewPanel=4",
                "values": {"B": 93.41, "C": 1},
                "valueString": "[ var='B' labels={service=checkout} value=93.41 ]",
            }
        ],
        "groupLabels": {"alertname": "High memory usage"},
        "commonLabels": {
            "alertname": "High memory usage",
            "grafana_folder": "Checkout",
            "service": "checkout",
            "severity": "warning",
        },
        "commonAnnotations": {"summary": "Checkout memory above 90%"},
        "externalURL": "https://grafana.example.com/",
        "version": "1",
        "groupKey": '{}/{service="checkout"}:{alertname="High memory usage"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] High memory usage Checkout (checkout warning)",
        "state": "alerting",
        "message": "**Firing**\n\nValue: B=93.41, C=1\nLabels:\n - alertname = High memory usage",
    }


@pytest.fixture
def quiet(settings: Settings) -> Iterator[TestClient]:
    """A client of an app without a correlator, for what correlation plays no part in."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


# --- the Alertmanager webhook -------------------------------------------------------------


def test_an_alertmanager_v4_webhook_answers_202_with_the_ingest_summary(
    client: TestClient,
) -> None:
    create_service(client, name="checkout")
    payload = alertmanager_payload(
        alertmanager_alert("HighErrorRate"),
        alertmanager_alert("HighLatency", labels={"severity": "warning"}),
    )
    response = client.post(ALERTMANAGER_WEBHOOK, json=payload)
    assert response.status_code == 202, response.text
    summary = response.json()
    assert summary_counts(summary) == counts(received=2, created=2)
    assert summary["unknown_services"] == []
    listed = {alert["id"] for alert in list_alerts(client)}
    assert len(summary["alert_ids"]) == 2
    assert set(summary["alert_ids"]) == listed


def test_webhook_alerts_are_browsable_under_the_fingerprint_alertmanager_sent(
    client: TestClient,
) -> None:
    sent = alertmanager_alert("HighErrorRate", starts_at="2026-11-26T10:00:00.123Z")
    summary = post_alertmanager(client, sent)
    alert = only_alert(client, fingerprint=sent["fingerprint"])
    assert alert["id"] == summary["alert_ids"][0]
    assert alert["fingerprint"] == sent["fingerprint"]
    assert alert["integration"] == "alertmanager"
    assert alert["status"] == "firing"
    assert alert["labels"] == sent["labels"]
    assert alert["annotations"] == sent["annotations"]
    assert alert["generator_url"] == sent["generatorURL"]
    assert alert["severity"] == "critical"
    assert parse_time(alert["starts_at"]) == utc("2026-11-26T10:00:00.123Z")
    assert alert["ends_at"] is None  # Go's zero time means "not ended"
    assert alert["receive_count"] == 1
    fetched = client.get(f"/api/alerts/{alert['id']}").json()
    assert without_correlation(fetched) == without_correlation(alert)


def test_the_expected_end_prometheus_sends_with_a_firing_alert_is_not_an_end(
    client: TestClient,
) -> None:
    post_alertmanager(
        client,
        alertmanager_alert(starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:04:00Z"),
    )
    alert = only_alert(client)
    assert alert["status"] == "firing"
    assert alert["ends_at"] is None


def test_the_title_of_a_webhook_alert_is_its_summary_annotation(client: TestClient) -> None:
    post_alertmanager(
        client,
        alertmanager_alert(
            "HighErrorRate",
            annotations={"summary": "Checkout error rate above 5%", "description": "details"},
        ),
    )
    assert only_alert(client)["title"] == "Checkout error rate above 5%"


def test_a_webhook_alert_without_a_summary_is_titled_by_its_alertname(
    client: TestClient,
) -> None:
    post_alertmanager(client, alertmanager_alert("DiskFull", annotations={}))
    assert only_alert(client)["title"] == "DiskFull"


def test_a_webhook_alert_is_linked_to_the_catalog_service_its_service_label_names(
    client: TestClient,
) -> None:
    checkout = create_service(client, name="checkout")
    create_service(client, name="payments")
    summary = post_alertmanager(client, alertmanager_alert(labels={"service": "checkout"}))
    alert = only_alert(client)
    assert alert["service_id"] == checkout["id"]
    assert alert["service_name"] == "checkout"
    assert summary["unknown_services"] == []


# --- deduplication ------------------------------------------------------------------------


def test_the_same_payload_posted_three_times_is_one_alert_received_three_times(
    client: TestClient,
) -> None:
    payload = alertmanager_payload(alertmanager_alert())
    summaries = []
    seen = []
    for _ in range(3):
        response = client.post(ALERTMANAGER_WEBHOOK, json=payload)
        assert response.status_code == 202, response.text
        summaries.append(response.json())
        seen.append(parse_time(only_alert(client)["last_seen_at"]))
    assert summary_counts(summaries[0]) == counts(received=1, created=1)
    assert summary_counts(summaries[1]) == counts(received=1, duplicates=1)
    assert summary_counts(summaries[2]) == counts(received=1, duplicates=1)
    assert len({summary["alert_ids"][0] for summary in summaries}) == 1
    alert = only_alert(client)
    assert alert["receive_count"] == 3
    assert seen[0] < seen[1] < seen[2]
    assert parse_time(alert["first_seen_at"]) == seen[0]


def test_changed_annotations_count_as_an_update_of_the_known_alert(client: TestClient) -> None:
    post_alertmanager(client, alertmanager_alert(annotations={"summary": "Errors at 5%"}))
    changed = {"summary": "Errors at 9%", "description": "still rising"}
    summary = post_alertmanager(client, alertmanager_alert(annotations=changed))
    assert summary_counts(summary) == counts(received=1, updated=1)
    alert = only_alert(client)
    assert alert["annotations"] == changed
    assert alert["title"] == "Errors at 9%"
    assert alert["receive_count"] == 2


# --- out of order and re-firing -----------------------------------------------------------


def test_a_resolved_alert_resolves_the_firing_one(client: TestClient) -> None:
    post_alertmanager(client, alertmanager_alert(starts_at="2026-11-26T10:00:00Z"))
    summary = post_alertmanager(
        client,
        alertmanager_alert(
            status="resolved", starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:12:00Z"
        ),
    )
    assert summary_counts(summary) == counts(received=1, updated=1)
    alert = only_alert(client)
    assert alert["status"] == "resolved"
    assert parse_time(alert["ends_at"]) == utc("2026-11-26T10:12:00Z")


def test_a_late_firing_after_its_resolved_is_stale_and_the_alert_stays_resolved(
    client: TestClient,
) -> None:
    firing = alertmanager_alert(starts_at="2026-11-26T10:00:00Z")
    resolved = alertmanager_alert(
        status="resolved", starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:12:00Z"
    )
    post_alertmanager(client, firing)
    post_alertmanager(client, resolved)
    summary = post_alertmanager(client, firing)  # a retry that lost the race
    assert summary_counts(summary) == counts(received=1, stale=1)
    alert = only_alert(client)
    assert alert["status"] == "resolved"
    assert parse_time(alert["ends_at"]) == utc("2026-11-26T10:12:00Z")
    assert alert["receive_count"] == 3


def test_a_firing_overtaken_by_its_own_resolved_is_stale(client: TestClient) -> None:
    post_alertmanager(
        client,
        alertmanager_alert(
            status="resolved", starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:12:00Z"
        ),
    )
    summary = post_alertmanager(client, alertmanager_alert(starts_at="2026-11-26T10:00:00Z"))
    assert summary_counts(summary) == counts(received=1, stale=1)
    alert = only_alert(client)
    assert alert["status"] == "resolved"
    assert alert["receive_count"] == 2


def test_a_resolved_alert_arriving_before_any_firing_is_stored_resolved_and_opens_nothing(
    client: TestClient,
) -> None:
    summary = post_alertmanager(
        client,
        alertmanager_alert(
            status="resolved", starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:12:00Z"
        ),
    )
    assert summary_counts(summary) == counts(received=1, created=1)
    wait_for_correlation(client)
    alert = only_alert(client)
    assert alert["status"] == "resolved"
    assert parse_time(alert["ends_at"]) == utc("2026-11-26T10:12:00Z")
    assert alert["correlated"] is True
    assert alert["incident_id"] is None
    assert client.get("/api/incidents").json()["items"] == []


def test_a_repeated_resolved_alert_changes_nothing_but_its_counter(client: TestClient) -> None:
    resolved = alertmanager_alert(
        status="resolved", starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:12:00Z"
    )
    post_alertmanager(client, alertmanager_alert(starts_at="2026-11-26T10:00:00Z"))
    post_alertmanager(client, resolved)
    wait_for_correlation(client)
    before = only_alert(client)
    summary = post_alertmanager(client, resolved)
    assert summary_counts(summary) == counts(received=1, duplicates=1)
    after = only_alert(client)
    assert after["receive_count"] == before["receive_count"] + 1
    assert parse_time(after["last_seen_at"]) > parse_time(before["last_seen_at"])
    unchanged = {key for key in before if key not in ("receive_count", "last_seen_at")}
    assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}
    assert after["correlated"] is True  # nothing new for the correlator


def test_firing_again_after_resolving_with_a_later_start_is_a_new_alert(
    client: TestClient,
) -> None:
    first = alertmanager_alert(starts_at="2026-11-26T10:00:00Z")
    post_alertmanager(client, first)
    post_alertmanager(
        client,
        alertmanager_alert(
            status="resolved", starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:12:00Z"
        ),
    )
    summary = post_alertmanager(client, alertmanager_alert(starts_at="2026-11-26T10:30:00Z"))
    assert summary_counts(summary) == counts(received=1, created=1)
    newest, older = list_alerts(client, fingerprint=first["fingerprint"])
    assert newest["id"] == summary["alert_ids"][0]
    assert newest["status"] == "firing"
    assert parse_time(newest["starts_at"]) == utc("2026-11-26T10:30:00Z")
    assert newest["receive_count"] == 1
    assert older["status"] == "resolved"
    assert parse_time(older["starts_at"]) == utc("2026-11-26T10:00:00Z")
    assert [a["id"] for a in list_alerts(client, status="firing")] == [newest["id"]]


def test_one_batch_can_carry_a_firing_its_resolved_and_the_next_firing(
    client: TestClient,
) -> None:
    summary = post_alertmanager(
        client,
        alertmanager_alert(starts_at="2026-11-26T10:00:00Z"),
        alertmanager_alert(
            status="resolved", starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:12:00Z"
        ),
        alertmanager_alert(starts_at="2026-11-26T10:30:00Z"),
    )
    assert summary_counts(summary) == counts(received=3, created=2, updated=1)
    first, resolved, again = summary["alert_ids"]
    assert first == resolved != again
    newest, older = list_alerts(client)
    assert (newest["id"], newest["status"]) == (again, "firing")
    assert (older["id"], older["status"]) == (first, "resolved")


def test_after_firing_again_repeats_update_the_new_occurrence(client: TestClient) -> None:
    post_alertmanager(client, alertmanager_alert(starts_at="2026-11-26T10:00:00Z"))
    post_alertmanager(
        client,
        alertmanager_alert(
            status="resolved", starts_at="2026-11-26T10:00:00Z", ends_at="2026-11-26T10:12:00Z"
        ),
    )
    again = alertmanager_alert(starts_at="2026-11-26T10:30:00Z")
    created = post_alertmanager(client, again)
    repeated = post_alertmanager(client, again)
    assert summary_counts(repeated) == counts(received=1, duplicates=1)
    assert repeated["alert_ids"] == created["alert_ids"]
    newest, older = list_alerts(client)
    assert (newest["receive_count"], older["receive_count"]) == (2, 2)


# --- POST /api/alerts ---------------------------------------------------------------------


def test_posting_a_new_alert_answers_201_with_its_location(client: TestClient) -> None:
    response = client.post(
        "/api/alerts",
        json={
            "title": "Checkout error rate above 5%",
            "severity": "critical",
            "labels": {"service": "checkout", "alertname": "HighErrorRate"},
            "annotations": {"runbook_url": "https://runbooks.example.com/errors"},
            "starts_at": "2026-11-26T10:00:00Z",
            "generator_url": "https://ci.example.com/checks/42",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/alerts/{body['id']}"
    assert body["integration"] == "api"
    assert body["title"] == "Checkout error rate above 5%"
    assert body["status"] == "firing"
    assert body["annotations"] == {"runbook_url": "https://runbooks.example.com/errors"}
    assert body["generator_url"] == "https://ci.example.com/checks/42"
    assert parse_time(body["starts_at"]) == utc("2026-11-26T10:00:00Z")
    fetched = client.get(response.headers["location"]).json()
    assert without_correlation(fetched) == without_correlation(body)


def test_posting_the_same_alert_again_answers_200_with_the_same_location(
    client: TestClient,
) -> None:
    body = {"title": "Queue backlog", "labels": {"service": "billing", "queue": "invoices"}}
    first = client.post("/api/alerts", json=body)
    again = client.post("/api/alerts", json=body)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["receive_count"] == 2
    assert len(list_alerts(client)) == 1


def test_the_severity_of_a_posted_alert_is_copied_to_its_labels(client: TestClient) -> None:
    response = client.post(
        "/api/alerts", json={"title": "Queue backlog", "severity": "page", "labels": {}}
    )
    assert response.status_code == 201, response.text
    assert response.json()["labels"]["severity"] == "page"
    assert response.json()["severity"] == "page"


def test_a_severity_label_wins_over_the_severity_field(client: TestClient) -> None:
    response = client.post(
        "/api/alerts",
        json={"title": "Queue backlog", "severity": "page", "labels": {"severity": "warning"}},
    )
    assert response.status_code == 201, response.text
    assert response.json()["labels"]["severity"] == "warning"


def test_a_posted_alert_defaults_to_firing_now_named_by_its_title(client: TestClient) -> None:
    before = datetime.now(UTC)
    response = client.post("/api/alerts", json={"title": "Queue backlog"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "firing"
    assert body["labels"] == {"alertname": "Queue backlog"}
    assert before <= parse_time(body["starts_at"]) <= datetime.now(UTC)
    assert body["ends_at"] is None


def test_the_default_fingerprint_is_alertmanagers_hash_of_the_labels(client: TestClient) -> None:
    labels = {name: value for name, value in REAL_LABELS.items() if name != "severity"}
    response = client.post(
        "/api/alerts", json={"title": "TEST122", "severity": "critical", "labels": labels}
    )
    assert response.status_code == 201, response.text
    assert response.json()["fingerprint"] == REAL_FINGERPRINT


def test_the_same_alert_from_alertmanager_and_from_the_api_is_one_alert(
    client: TestClient,
) -> None:
    sent = alertmanager_alert("HighErrorRate")
    summary = post_alertmanager(client, sent)
    labels = {name: value for name, value in sent["labels"].items() if name != "severity"}
    response = client.post(
        "/api/alerts",
        json={"title": "Checkout errors", "severity": "critical", "labels": labels},
    )
    assert response.status_code == 200, response.text
    assert response.headers["location"] == f"/api/alerts/{summary['alert_ids'][0]}"
    alert = only_alert(client)
    assert alert["fingerprint"] == sent["fingerprint"]
    assert alert["receive_count"] == 2


def test_an_explicit_fingerprint_is_the_identity_of_a_posted_alert(client: TestClient) -> None:
    first = client.post(
        "/api/alerts",
        json={"title": "Backup failed", "labels": {"run": "1"}, "fingerprint": "backup-nightly"},
    )
    second = client.post(
        "/api/alerts",
        json={"title": "Backup failed", "labels": {"run": "2"}, "fingerprint": "backup-nightly"},
    )
    assert (first.status_code, second.status_code) == (201, 200), second.text
    alert = only_alert(client)
    assert alert["fingerprint"] == "backup-nightly"
    assert alert["receive_count"] == 2


def test_a_posted_alert_without_a_title_is_refused_naming_it(quiet: TestClient) -> None:
    response = quiet.post("/api/alerts", json={"labels": {"service": "checkout"}})
    assert_problem(response, 422, "title")
    assert list_alerts(quiet) == []


# --- the Grafana webhook ------------------------------------------------------------------


def test_a_grafana_webhook_answers_202_and_stores_grafana_alerts(client: TestClient) -> None:
    response = client.post(GRAFANA_WEBHOOK, json=grafana_payload())
    assert response.status_code == 202, response.text
    assert summary_counts(response.json()) == counts(received=1, created=1)
    alert = only_alert(client)
    assert alert["integration"] == "grafana"
    assert alert["fingerprint"] == "c6eadffa33fcdf37"
    assert alert["title"] == "Checkout memory above 90%"
    assert alert["severity"] == "warning"
    assert alert["service_name"] == "checkout"
    assert alert["generator_url"] == "https://grafana.example.com/alerting/grafana/fe1b3d6/view"
    assert parse_time(alert["starts_at"]) == utc("2026-11-26T09:51:03.157076Z")
    assert alert["ends_at"] is None


# --- bad payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "exploded"}, "alerts.2.status"),
        ({"labels": ["service", "checkout"]}, "alerts.2.labels"),
        ({"labels": {"service": "check\x00out"}}, "alerts.2.labels.service"),
        ({"startsAt": "yesterday"}, "alerts.2.startsAt"),
    ],
    ids=["bad-status", "labels-not-a-dict", "nul-in-a-label", "bad-time"],
)
def test_a_batch_with_one_bad_alert_is_refused_naming_it_and_nothing_is_stored(
    quiet: TestClient, change: dict[str, Any], field: str
) -> None:
    payload = alertmanager_payload(*[alertmanager_alert(f"Alert{i}") for i in range(3)])
    payload["alerts"][2].update(change)
    response = quiet.post(ALERTMANAGER_WEBHOOK, json=payload)
    assert_problem(response, 422, field)
    assert list_alerts(quiet) == []


def test_malformed_json_is_a_400(quiet: TestClient) -> None:
    response = quiet.post(
        ALERTMANAGER_WEBHOOK,
        content=b'{"version": "4", "alerts": [',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 400)
    assert list_alerts(quiet) == []


def test_a_payload_without_alerts_is_refused_naming_alerts(quiet: TestClient) -> None:
    payload = alertmanager_payload(alertmanager_alert())
    del payload["alerts"]
    assert_problem(quiet.post(ALERTMANAGER_WEBHOOK, json=payload), 422, "alerts")


def test_more_alerts_than_the_default_max_batch_is_refused_naming_alerts(
    quiet: TestClient,
) -> None:
    alerts = [alertmanager_alert(labels={"instance": f"host-{i}"}) for i in range(1001)]
    response = quiet.post(ALERTMANAGER_WEBHOOK, json=alertmanager_payload(*alerts))
    problem = assert_problem(response, 422, "alerts")
    assert "ALERT_MAX_BATCH" in problem["detail"]
    assert list_alerts(quiet) == []


def test_a_batch_of_exactly_alert_max_batch_is_accepted_and_one_more_is_not(
    settings: Settings,
) -> None:
    alerts = [alertmanager_alert(labels={"instance": f"host-{i}"}) for i in range(6)]
    with app_client(settings, alert_max_batch=5) as client:
        too_many = client.post(ALERTMANAGER_WEBHOOK, json=alertmanager_payload(*alerts))
        assert_problem(too_many, 422, "alerts")
        assert list_alerts(client) == []
        assert post_alertmanager(client, *alerts[:5])["created"] == 5


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        (['severity~"critical"'], "filter.0"),
        (['alertname=~"(High"'], "filter.0"),
        (['severity="critical"', "9lives=yes"], "filter.1"),
    ],
    ids=["bad-operator", "bad-regex", "second-bad-name"],
)
def test_a_bad_filter_matcher_is_refused_naming_its_position(
    quiet: TestClient, filters: list[str], field: str
) -> None:
    response = quiet.get("/api/alerts", params={"filter": filters})
    problem = assert_problem(response, 422, field)
    assert problem["errors"][0]["location"] == "query"


# --- unknown services ---------------------------------------------------------------------


def test_an_alert_naming_an_unknown_service_is_reported_and_kept_with_the_name(
    client: TestClient,
) -> None:
    summary = post_alertmanager(client, alertmanager_alert(labels={"service": "ghost"}))
    assert summary["unknown_services"] == ["ghost"]
    alert = only_alert(client)
    assert alert["service_name"] == "ghost"
    assert alert["service_id"] is None


def test_unknown_service_true_lists_the_alerts_whose_service_is_not_in_the_catalog(
    client: TestClient,
) -> None:
    create_service(client, name="checkout")
    post_alertmanager(
        client,
        alertmanager_alert("Known", labels={"service": "checkout"}),
        alertmanager_alert("Ghostly", labels={"service": "ghost"}),
        alertmanager_alert("Serviceless", labels={"service": None}),
    )
    assert names(list_alerts(client, unknown_service="true")) == ["Ghostly"]
    assert sorted(names(list_alerts(client, unknown_service="false"))) == [
        "Known",
        "Serviceless",
    ]


def test_a_batch_reports_each_unknown_service_once_sorted(client: TestClient) -> None:
    summary = post_alertmanager(
        client,
        alertmanager_alert("A", labels={"service": "zeta"}),
        alertmanager_alert("B", labels={"service": "alpha"}),
        alertmanager_alert("C", labels={"service": "zeta"}),
    )
    assert summary["unknown_services"] == ["alpha", "zeta"]


def test_with_alert_create_unknown_services_the_service_is_created_and_linked(
    settings: Settings,
) -> None:
    with app_client(settings, alert_create_unknown_services=True) as client:
        summary = post_alertmanager(client, alertmanager_alert(labels={"service": "ghost"}))
        assert summary["unknown_services"] == []
        services = client.get("/api/services").json()["items"]
        [ghost] = [service for service in services if service["name"] == "ghost"]
        alert = only_alert(client)
        assert alert["service_id"] == ghost["id"]
        assert alert["service_name"] == "ghost"


# --- tokens -------------------------------------------------------------------------------


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    """A client of an app whose Alertmanager integration has a token."""
    with app_client(settings, ingest_token_alertmanager=SecretStr(TOKEN)) as client:
        yield client


def test_without_a_token_a_guarded_webhook_answers_401_and_stores_nothing(
    guarded: TestClient,
) -> None:
    response = guarded.post(ALERTMANAGER_WEBHOOK, json=alertmanager_payload(alertmanager_alert()))
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert list_alerts(guarded) == []


WRONG_TOKENS: dict[str, dict[str, Any]] = {
    "bearer": {"headers": {"Authorization": "Bearer wrong-token"}},
    "x-integration-token": {"headers": {"X-Integration-Token": "wrong-token"}},
    "query": {"params": {"token": "wrong-token"}},
    "not-bearer": {"headers": {"Authorization": f"Basic {TOKEN}"}},
    "token-plus-one": {"headers": {"Authorization": f"Bearer {TOKEN}x"}},
    "prefix-of-token": {"headers": {"X-Integration-Token": TOKEN[:-1]}},
}
RIGHT_TOKENS: dict[str, dict[str, Any]] = {
    "bearer": {"headers": {"Authorization": f"Bearer {TOKEN}"}},
    "x-integration-token": {"headers": {"X-Integration-Token": TOKEN}},
    "query": {"params": {"token": TOKEN}},
}


def test_a_wrong_token_answers_401_and_stores_nothing(guarded: TestClient) -> None:
    payload = alertmanager_payload(alertmanager_alert())
    answers = {}
    for way, options in WRONG_TOKENS.items():
        response = guarded.post(ALERTMANAGER_WEBHOOK, json=payload, **options)
        assert_problem(response, 401)
        answers[way] = response.headers.get("www-authenticate", "").split(" ")[0]
    assert answers == dict.fromkeys(WRONG_TOKENS, "Bearer")
    assert list_alerts(guarded) == []


def test_the_right_token_is_accepted_wherever_the_defaults_allow(guarded: TestClient) -> None:
    answers = {}
    for way, options in RIGHT_TOKENS.items():
        payload = alertmanager_payload(alertmanager_alert(labels={"instance": way}))
        answers[way] = guarded.post(ALERTMANAGER_WEBHOOK, json=payload, **options).status_code
    assert answers == dict.fromkeys(RIGHT_TOKENS, 202)
    assert len(list_alerts(guarded)) == 3


def test_a_token_in_the_query_is_refused_when_only_headers_are_allowed(
    settings: Settings,
) -> None:
    with app_client(
        settings, ingest_token_alertmanager=SecretStr(TOKEN), ingest_token_locations=("header",)
    ) as client:
        payload = alertmanager_payload(alertmanager_alert())
        response = client.post(ALERTMANAGER_WEBHOOK, json=payload, params={"token": TOKEN})
        assert_problem(response, 401)
        assert list_alerts(client) == []
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert post_alertmanager(client, alertmanager_alert(), headers=headers)["created"] == 1


def test_a_token_in_a_header_is_refused_when_only_the_query_is_allowed(
    settings: Settings,
) -> None:
    with app_client(
        settings, ingest_token_alertmanager=SecretStr(TOKEN), ingest_token_locations=("query",)
    ) as client:
        payload = alertmanager_payload(alertmanager_alert())
        response = client.post(
            ALERTMANAGER_WEBHOOK, json=payload, headers={"X-Integration-Token": TOKEN}
        )
        assert_problem(response, 401)
        assert list_alerts(client) == []
        assert (
            post_alertmanager(client, alertmanager_alert(), params={"token": TOKEN})["created"] == 1
        )


def test_without_a_configured_token_an_integration_is_open(client: TestClient) -> None:
    assert post_alertmanager(client, alertmanager_alert())["created"] == 1
    assert client.post(GRAFANA_WEBHOOK, json=grafana_payload()).status_code == 202
    assert client.post("/api/alerts", json={"title": "Queue backlog"}).status_code == 201


def test_the_token_of_one_integration_does_not_open_another(settings: Settings) -> None:
    with app_client(
        settings,
        ingest_token_alertmanager=SecretStr(TOKEN),
        ingest_token_grafana=SecretStr("grafana-secret"),
    ) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = client.post(GRAFANA_WEBHOOK, json=grafana_payload(), headers=headers)
        assert_problem(response, 401)
        assert list_alerts(client) == []


def test_a_request_without_a_token_is_refused_before_its_body_is_looked_at(
    guarded: TestClient,
) -> None:
    # "A wrong or missing token gets 401": an unauthenticated caller learns nothing about
    # the payload schema, and its (possibly huge) body is not validated for it.
    invalid = guarded.post(ALERTMANAGER_WEBHOOK, json={"alerts": [{"status": "exploded"}]})
    malformed = guarded.post(
        ALERTMANAGER_WEBHOOK, content=b"{", headers={"content-type": "application/json"}
    )
    assert (invalid.status_code, malformed.status_code) == (401, 401), invalid.text


def test_an_integration_without_its_own_token_stays_open_when_another_has_one(
    guarded: TestClient,
) -> None:
    # Documented: each integration has its own secret; unset means open, whatever the others.
    response = guarded.post("/api/alerts", json={"title": "Queue backlog"})
    assert response.status_code == 201, response.text


def test_posted_alerts_need_their_own_token_once_it_is_set(settings: Settings) -> None:
    with app_client(settings, ingest_token_alerts=SecretStr("api-secret")) as client:
        refused = client.post("/api/alerts", json={"title": "Queue backlog"})
        assert_problem(refused, 401)
        assert list_alerts(client) == []
        accepted = client.post(
            "/api/alerts",
            json={"title": "Queue backlog"},
            headers={"Authorization": "Bearer api-secret"},
        )
        assert accepted.status_code == 201, accepted.text


# --- storm control ------------------------------------------------------------------------


def batch_of(count: int, prefix: str) -> list[dict[str, Any]]:
    """`count` distinct alerts."""
    return [alertmanager_alert(labels={"instance": f"{prefix}-{i}"}) for i in range(count)]


def test_a_batch_over_the_ingest_rate_limit_gets_429_and_nothing_of_it_is_stored(
    settings: Settings,
) -> None:
    with app_client(settings, ingest_rate_limit="100/minute") as client:
        assert post_alertmanager(client, *batch_of(60, "first"))["created"] == 60
        response = client.post(
            ALERTMANAGER_WEBHOOK, json=alertmanager_payload(*batch_of(60, "second"))
        )
        problem = assert_problem(response, 429)
        assert problem["limit"] == {"integration": "alertmanager", "limit": "100/minute"}
        assert int(response.headers["retry-after"]) >= 1
        stored = list_alerts(client)
        assert len(stored) == 60
        assert all(alert["labels"]["instance"].startswith("first-") for alert in stored)


def test_the_ingest_rate_limit_is_counted_per_integration(settings: Settings) -> None:
    with app_client(settings, ingest_rate_limit="100/minute") as client:
        post_alertmanager(client, *batch_of(100, "am"))
        refused = client.post(ALERTMANAGER_WEBHOOK, json=alertmanager_payload(*batch_of(1, "x")))
        assert_problem(refused, 429)
        assert client.post(GRAFANA_WEBHOOK, json=grafana_payload()).status_code == 202


def test_posted_alerts_are_rate_limited_too(settings: Settings) -> None:
    with app_client(settings, ingest_rate_limit="2/minute") as client:
        for i in range(2):
            response = client.post("/api/alerts", json={"title": f"Alert {i}"})
            assert response.status_code == 201, response.text
        refused = client.post("/api/alerts", json={"title": "Alert 3"})
        problem = assert_problem(refused, 429)
        assert problem["limit"] == {"integration": "api", "limit": "2/minute"}
        assert len(list_alerts(client)) == 2


# --- listing ------------------------------------------------------------------------------


def seed(client: TestClient) -> dict[str, dict[str, Any]]:
    """Six alerts of three services, stored in one webhook message; by alertname."""
    post_alertmanager(
        client,
        alertmanager_alert(
            "Watchdog",
            labels={"service": None, "severity": "none"},
            starts_at="2026-11-26T09:00:00Z",
        ),
        alertmanager_alert("HighErrorRate", starts_at="2026-11-26T10:00:00Z"),
        alertmanager_alert(
            "HighErrorRateCanary",
            labels={"alertname": "HighErrorRate", "instance": "10.0.3.18:8080"},
            starts_at="2026-11-26T10:05:00Z",
        ),
        alertmanager_alert(
            "HighLatency", labels={"severity": "warning"}, starts_at="2026-11-26T10:10:00Z"
        ),
        alertmanager_alert(
            "DiskFull",
            status="resolved",
            labels={"service": "db", "job": "postgres"},
            starts_at="2026-11-26T10:20:00Z",
            ends_at="2026-11-26T10:25:00Z",
        ),
        alertmanager_alert(
            "HighErrorRatePayments",
            labels={"alertname": "HighErrorRate", "service": "payments", "severity": "page"},
            starts_at="2026-11-26T10:30:00Z",
        ),
    )
    alerts = list_alerts(client)
    assert len(alerts) == 6
    return {alert["annotations"]["summary"]: alert for alert in alerts}


def summaries(alerts: list[dict[str, Any]]) -> list[str]:
    """The summary annotation of each alert (unique in `seed`), in order."""
    return [alert["annotations"]["summary"] for alert in alerts]


def test_alerts_are_listed_newest_first(quiet: TestClient) -> None:
    seed(quiet)
    assert summaries(list_alerts(quiet)) == [
        "HighErrorRatePayments on payments",
        "DiskFull on db",
        "HighLatency on checkout",
        "HighErrorRateCanary on checkout",
        "HighErrorRate on checkout",
        "Watchdog on everything",
    ]


def test_the_status_filter_is_repeatable(quiet: TestClient) -> None:
    seed(quiet)
    assert summaries(list_alerts(quiet, status="resolved")) == ["DiskFull on db"]
    assert len(list_alerts(quiet, status="firing")) == 5
    assert len(list_alerts(quiet, status=["firing", "resolved"])) == 6


def test_an_unknown_status_filter_is_refused(quiet: TestClient) -> None:
    assert_problem(quiet.get("/api/alerts", params={"status": "exploded"}), 422, "status.0")


def test_the_service_filter_takes_the_service_name_from_the_labels(quiet: TestClient) -> None:
    seed(quiet)
    assert summaries(list_alerts(quiet, service="checkout")) == [
        "HighLatency on checkout",
        "HighErrorRateCanary on checkout",
        "HighErrorRate on checkout",
    ]
    assert list_alerts(quiet, service="nowhere") == []


def test_the_service_id_filter_lists_the_alerts_of_a_catalog_service(quiet: TestClient) -> None:
    payments = create_service(quiet, name="payments")
    seed(quiet)
    assert summaries(list_alerts(quiet, service_id=payments["id"])) == [
        "HighErrorRatePayments on payments"
    ]


# Each matcher and the alerts it lists (by the name `seed` gives them), newest first.
MATCHER_EXPECTATIONS = {
    'severity="critical"': ["DiskFull", "HighErrorRateCanary", "HighErrorRate"],
    'service!="checkout"': ["HighErrorRatePayments", "DiskFull", "Watchdog"],  # absent is ""
    'service=""': ["Watchdog"],
    'alertname=~"High"': [],  # anchored: the whole value must match
    'alertname=~"High.*"': [
        "HighErrorRatePayments",
        "HighLatency",
        "HighErrorRateCanary",
        "HighErrorRate",
    ],
    'alertname=~"Disk|Watch"': [],
    'alertname=~"DiskFull|Watchdog"': ["DiskFull", "Watchdog"],
    'alertname!~"High"': [
        "HighErrorRatePayments",
        "DiskFull",
        "HighLatency",
        "HighErrorRateCanary",
        "HighErrorRate",
        "Watchdog",
    ],
    'alertname!~"High.*"': ["DiskFull", "Watchdog"],
    'instance=~"10\\.0\\.3\\.1[78]:8080"': [
        "HighErrorRatePayments",
        "DiskFull",
        "HighLatency",
        "HighErrorRateCanary",
        "HighErrorRate",
        "Watchdog",
    ],
}


def test_the_label_filter_has_alertmanager_matcher_semantics(quiet: TestClient) -> None:
    seed(quiet)
    listed = {
        matcher: [
            summary.split(" on ")[0] for summary in summaries(list_alerts(quiet, filter=matcher))
        ]
        for matcher in MATCHER_EXPECTATIONS
    }
    assert listed == MATCHER_EXPECTATIONS


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ('alertname=~"(?i)highlatency"', ["HighLatency"]),
        ('alertname!~"(?i)high.*"', ["DiskFull", "Watchdog"]),
    ],
    ids=["match", "no-match"],
)
def test_a_case_insensitive_label_filter_ignores_case(
    quiet: TestClient, matcher: str, expected: list[str]
) -> None:
    # Matchers accept (?i) (see matchers.py); both backends must honour it.
    seed(quiet)
    listed = list_alerts(quiet, filter=matcher)
    assert [summary.split(" on ")[0] for summary in summaries(listed)] == expected


def test_repeated_label_filters_must_all_match(quiet: TestClient) -> None:
    seed(quiet)
    listed = list_alerts(quiet, filter=['alertname="HighErrorRate"', 'service="checkout"'])
    assert summaries(listed) == ["HighErrorRateCanary on checkout", "HighErrorRate on checkout"]


def test_started_after_and_started_before_bound_the_start_time(quiet: TestClient) -> None:
    seed(quiet)
    listed = list_alerts(
        quiet, started_after="2026-11-26T10:01:00Z", started_before="2026-11-26T10:29:00Z"
    )
    assert summaries(listed) == [
        "DiskFull on db",
        "HighLatency on checkout",
        "HighErrorRateCanary on checkout",
    ]
    assert summaries(list_alerts(quiet, started_before="2026-11-26T10:00:00Z")) == [
        "Watchdog on everything"
    ]
    in_paris = list_alerts(
        quiet, started_after="2026-11-26T11:01:00+01:00", started_before="2026-11-26T11:29:00+01:00"
    )
    assert summaries(in_paris) == summaries(listed)


def test_the_fingerprint_filter_lists_the_occurrences_of_one_alert(quiet: TestClient) -> None:
    alerts = seed(quiet)
    wanted = alerts["HighLatency on checkout"]
    [listed] = list_alerts(quiet, fingerprint=wanted["fingerprint"])
    assert without_correlation(listed) == without_correlation(wanted)
    assert list_alerts(quiet, fingerprint="0000000000000000") == []


def test_the_incident_filter_lists_the_alerts_correlated_into_an_incident(
    client: TestClient,
) -> None:
    seed(client)
    wait_for_correlation(client)
    alerts = {alert["annotations"]["summary"]: alert for alert in list_alerts(client)}
    incident_id = alerts["HighErrorRate on checkout"]["incident_id"]
    assert incident_id is not None
    assert alerts["HighErrorRatePayments on payments"]["incident_id"] not in (None, incident_id)
    assert summaries(list_alerts(client, incident_id=incident_id)) == [
        "HighErrorRateCanary on checkout",
        "HighErrorRate on checkout",
    ]
    assert list_alerts(client, incident_id=UNKNOWN_ID) == []


def test_the_correlated_filter_tells_alerts_the_correlator_has_seen(settings: Settings) -> None:
    with app_client(
        settings, alert_correlation_enabled=True, alert_correlation_poll_seconds=0.05
    ) as live:
        post_alertmanager(live, alertmanager_alert("SeenBefore"))
        wait_for_correlation(live)
    with app_client(settings) as quiet:  # no correlator in this process
        post_alertmanager(quiet, alertmanager_alert("NotYetSeen"))
        assert names(list_alerts(quiet, correlated="true")) == ["SeenBefore"]
        assert names(list_alerts(quiet, correlated="false")) == ["NotYetSeen"]


def test_every_alert_is_listed_once_page_by_page(quiet: TestClient) -> None:
    seed(quiet)
    everything = list_alerts(quiet)
    items, pages = collect_pages(quiet, "/api/alerts", limit=4)
    assert pages == 2
    assert [item["id"] for item in items] == [alert["id"] for alert in everything]


def test_alerts_that_started_at_the_same_instant_are_paginated_without_loss(
    quiet: TestClient,
) -> None:
    post_alertmanager(quiet, *batch_of(7, "same-start"))
    items, pages = collect_pages(quiet, "/api/alerts", limit=3)
    assert pages == 3
    assert len({item["id"] for item in items}) == 7


def test_filtered_lists_are_paginated_too(quiet: TestClient) -> None:
    seed(quiet)
    items, pages = collect_pages(quiet, "/api/alerts", limit=2, status="firing")
    assert pages == 3
    assert [item["id"] for item in items] == [a["id"] for a in list_alerts(quiet, status="firing")]


def test_an_unknown_alert_id_is_a_404_problem(quiet: TestClient) -> None:
    problem = assert_problem(quiet.get(f"/api/alerts/{UNKNOWN_ID}"), 404)
    assert UNKNOWN_ID in problem["detail"]


def test_an_alert_id_that_is_not_a_uuid_is_refused_naming_it(quiet: TestClient) -> None:
    assert_problem(quiet.get("/api/alerts/not-an-id"), 422, "alert_id")
