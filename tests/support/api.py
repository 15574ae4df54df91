"""Helpers that create resources through the API, asserting that each create worked."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

from reliability_studio.alerts.fingerprint import label_fingerprint

_names = itertools.count(1)


def create_service(client: TestClient, **fields: Any) -> dict[str, Any]:
    """POST /api/services with a unique default name."""
    body = {"name": f"service-{next(_names)}", **fields}
    response = client.post("/api/services", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_incident(client: TestClient, **fields: Any) -> dict[str, Any]:
    """POST /api/incidents with a default title and severity."""
    body = {"title": "Payment Service Down", "severity": "critical", **fields}
    response = client.post("/api/incidents", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_slo(client: TestClient, service_id: str, **fields: Any) -> dict[str, Any]:
    """POST /api/slos for `service_id`."""
    body = {
        "service_id": service_id,
        "name": f"slo-{next(_names)}",
        "objective": 99.9,
        "window_days": 30,
        **fields,
    }
    response = client.post("/api/slos", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is a problem+json of `status`, naming `field` when given."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    if field is not None:
        named = [error["field"] for error in problem.get("errors", [])]
        assert field in named, f"{field!r} not in {named}"
    return problem


def collect_pages(
    client: TestClient, path: str, limit: int, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list, walked page by page with `limit` and `next_cursor`.

    Asserts that each page but the last is full and carries a cursor; returns the items
    in the order served and the number of pages.
    """
    items: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert pages <= 1_000, "pagination does not end"
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(page["items"]) <= limit
            return items, pages
        assert len(page["items"]) == limit, "a page before the last must be full"


ALERTMANAGER_WEBHOOK = "/api/integrations/alertmanager"
# Go's zero time: what Alertmanager sends as `endsAt` of an alert that has not ended.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def alertmanager_alert(
    alertname: str = "HighErrorRate",
    *,
    status: str = "firing",
    labels: dict[str, str | None] | None = None,
    annotations: dict[str, str] | None = None,
    starts_at: str = "2026-11-26T10:00:00Z",
    ends_at: str | None = None,
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook (version 4) sends it.

    Default labels name service `checkout` and severity `critical`; `labels` adds to them,
    and a None value removes one. The fingerprint is Alertmanager's hash of the labels.
    """
    merged: dict[str, str | None] = {
        "alertname": alertname,
        "service": "checkout",
        "severity": "critical",
        "instance": "10.0.3.17:8080",
        "job": "checkout",
        **(labels or {}),
    }
    final = {name: value for name, value in merged.items() if value is not None}
    expression = f"ALERTS%7Balertname%3D%22{alertname}%22%7D"
    return {
        "status": status,
        "labels": final,
        "annotations": {
            "summary": f"{alertname} on {final.get('service', 'everything')}",
            "runbook_url": f"https://runbooks.example.com/{alertname}",
        }
        if annotations is None
        else annotations,
        "startsAt": starts_at,
        "endsAt": ends_at or GO_ZERO_TIME,
        "generatorURL": f"http://prometheus:9090/graph?g0.expr={expression}",
        "fingerprint": label_fingerprint(final),
    }


def alertmanager_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    """A version 4 webhook message carrying `alerts`, with the group fields Alertmanager sets."""
    common = dict(alerts[0]["labels"]) if alerts else {}
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
    group_labels = {k: v for k, v in common.items() if k == "alertname"}
    firing = any(alert["status"] == "firing" for alert in alerts)
    return {
        "version": "4",
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}",
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "reliability-studio",
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": list(alerts),
    }


def post_alertmanager(
    client: TestClient, *alerts: dict[str, Any], **request: Any
) -> dict[str, Any]:
    """POST `alerts` to the Alertmanager webhook, asserting 202; returns the ingest summary."""
    response = client.post(ALERTMANAGER_WEBHOOK, json=alertmanager_payload(*alerts), **request)
    assert response.status_code == 202, response.text
    summary: dict[str, Any] = response.json()
    return summary
