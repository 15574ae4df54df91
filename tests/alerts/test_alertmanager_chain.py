"""The real alert chain: a Prometheus rule fires, a real Alertmanager posts to our webhook,
the correlator opens an incident, and resolves it to `monitoring` when the alert resolves.

Every part is a real process: `reliability-studio serve` (on SQLite, with its correlator),
Prometheus 2.42 and Alertmanager 0.25 from Debian. The rule and the receiver are in their
configuration at start. The only thing the test controls is a gauge, `chain_trigger`, served
from this process and scraped every second; the rule fires while it is 1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.alertmanager import AlertmanagerServer
from tests.support.prometheus import PrometheusServer
from tests.support.served import ServedProcess, serving

T = TypeVar("T")

TOKEN = "chain-test-secret-7f3a"
WEBHOOK_PATH = "/api/integrations/alertmanager"
STEP_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.25
ALERT_NAME = "CheckoutDown"
SUMMARY = "Checkout is down (chain test)"
RULES = f"""
groups:
  - name: chain
    interval: 1s
    rules:
      - alert: {ALERT_NAME}
        expr: chain_trigger == 1
        for: 0s
        labels:
          service: checkout
          severity: critical
        annotations:
          summary: "{SUMMARY}"
"""


class TriggerEndpoint:
    """A `/metrics` endpoint on 127.0.0.1 exposing one gauge, `chain_trigger`, set by the test."""

    def __init__(self) -> None:
        self.value = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"# TYPE chain_trigger gauge\nchain_trigger {endpoint.value}\n".encode()
                self.send_response(200 if self.path.startswith("/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: Prometheus scrapes every second."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        """`host:port`, as a scrape target."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class Chain:
    """The running chain, and a client of the studio's API."""

    studio: ServedProcess
    api: httpx.Client
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer
    trigger: TriggerEndpoint
    service_id: str

    def get(self, path: str, **params: str) -> Any:
        """GET an API path; fails the test unless 200."""
        response = self.api.get(path, params=params)
        assert response.status_code == 200, (
            f"GET {path} {params}: {response.status_code} {response.text}"
        )
        return response.json()

    def items(self, path: str, **params: str) -> list[dict[str, Any]]:
        """The items of the first page of a list."""
        body = self.get(path, **params)
        assert set(body) == {"items", "next_cursor"}, f"GET {path}: not a list page: {body}"
        items: list[dict[str, Any]] = body["items"]
        return items

    def diagnostics(self) -> str:
        """What each part of the chain says, for a failure message."""
        try:
            prometheus_alerts: Any = self.prometheus.alerts()
        except Exception as exc:
            prometheus_alerts = repr(exc)
        try:
            alertmanager_alerts: Any = self.alertmanager.alerts()
        except Exception as exc:
            alertmanager_alerts = repr(exc)
        webhook = [
            (record.get("method"), record.get("status"))
            for record in self.studio.access_records(WEBHOOK_PATH)
        ]
        return (
            f"\n--- gauge chain_trigger = {self.trigger.value}"
            f"\n--- Prometheus alerts: {prometheus_alerts}"
            f"\n--- Alertmanager alerts: {alertmanager_alerts}"
            f"\n--- webhook requests seen by serve (method, status): {webhook}"
            f"\n--- Alertmanager log:\n{self.alertmanager.log_tail(15)}"
            f"\n--- serve output:\n{self.studio.output_tail(25)}"
        )

    def eventually(self, what: str, probe: Callable[[], T | None]) -> T:
        """Poll `probe` until it returns something other than None, or fail saying `what`."""
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
        while True:
            found = probe()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {STEP_TIMEOUT_SECONDS:.0f} s, still waiting for: {what}"
                    f"{self.diagnostics()}"
                )
            time.sleep(POLL_SECONDS)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    """serve (with service `checkout`), the trigger endpoint, Alertmanager and Prometheus.

    Everything is stopped in the reverse order of its start, whatever the test did.
    """
    rules = tmp_path / "chain-rules.yml"
    rules.write_text(RULES, encoding="utf-8")
    with ExitStack() as stack:
        trigger = TriggerEndpoint()
        stack.callback(trigger.close)
        studio = stack.enter_context(
            serving(
                tmp_path,
                DATABASE_URL=f"sqlite:///{tmp_path / 'chain.db'}",
                SLO_ENGINE_ENABLED="false",
                PROMETHEUS_URL="http://127.0.0.1:1",
                INGEST_TOKEN_ALERTMANAGER=TOKEN,
            )
        )
        api = stack.enter_context(httpx.Client(base_url=studio.base_url, timeout=10.0))
        created = api.post("/api/services", json={"name": "checkout"})
        assert created.status_code == 201, created.text
        alertmanager = AlertmanagerServer(
            webhook_url=f"{studio.base_url}{WEBHOOK_PATH}", bearer_token=TOKEN
        )
        stack.callback(alertmanager.stop)
        alertmanager.start()
        prometheus = PrometheusServer()
        stack.callback(prometheus.remove)
        prometheus.start(
            rule_files=[rules],
            alertmanager_url=alertmanager.url,
            scrape_targets=[trigger.target],
            resend_delay="1s",
        )
        yield Chain(studio, api, prometheus, alertmanager, trigger, created.json()["id"])


def _alertmanager_alert(chain: Chain) -> dict[str, Any] | None:
    """Alertmanager's copy of the alert, once it holds it."""
    for alert in chain.alertmanager.alerts():
        if alert["labels"].get("alertname") == ALERT_NAME:
            return alert
    return None


def test_a_firing_prometheus_rule_opens_an_incident_that_moves_to_monitoring_when_it_resolves(
    chain: Chain,
) -> None:
    chain.trigger.value = 1

    # Prometheus fires, Alertmanager holds the alert: its fingerprint is the reference.
    upstream = chain.eventually(
        "Alertmanager to hold CheckoutDown", lambda: _alertmanager_alert(chain)
    )
    fingerprint = upstream["fingerprint"]
    generator_url = upstream["generatorURL"]
    assert "/graph?g0.expr=" in generator_url, upstream

    # Alertmanager posts it to the webhook; it is stored, firing, as Alertmanager's.
    def stored_alert() -> dict[str, Any] | None:
        items = chain.items("/api/alerts")
        return items[0] if items else None

    alert = chain.eventually("an alert at GET /api/alerts", stored_alert)
    assert alert["integration"] == "alertmanager", alert
    assert alert["fingerprint"] == fingerprint, alert
    assert alert["status"] == "firing", alert
    assert alert["severity"] == "critical", alert
    assert alert["labels"]["alertname"] == ALERT_NAME, alert
    assert alert["labels"]["service"] == "checkout", alert
    assert alert["labels"]["severity"] == "critical", alert
    assert alert["annotations"]["summary"] == SUMMARY, alert
    assert alert["generator_url"] == generator_url, alert
    assert alert["service_name"] == "checkout", alert
    assert alert["service_id"] == chain.service_id, alert

    # The correlator opens exactly one incident for it.
    def correlated_alert() -> dict[str, Any] | None:
        found: dict[str, Any] = chain.get(f"/api/alerts/{alert['id']}")
        return found if found["incident_id"] is not None else None

    alert = chain.eventually("the alert to be linked to an incident", correlated_alert)
    incident_id = alert["incident_id"]
    incidents = chain.items("/api/incidents")
    assert [incident["id"] for incident in incidents] == [incident_id], incidents
    [incident] = incidents
    assert incident["severity"] == "critical", incident
    assert incident["status"] == "open", incident
    assert [service["name"] for service in incident["services"]] == ["checkout"], incident
    assert incident["service_ids"] == [chain.service_id], incident

    incident_alerts = chain.items(f"/api/incidents/{incident_id}/alerts")
    assert [item["id"] for item in incident_alerts] == [alert["id"]], incident_alerts

    timeline = chain.items(f"/api/incidents/{incident_id}/timeline")
    firing = [event for event in timeline if event["type"] == "alert_firing"]
    assert len(firing) == 1, timeline
    metadata = firing[0]["metadata"]
    assert metadata is not None, firing
    assert metadata["labels"]["alertname"] == ALERT_NAME, metadata
    assert metadata["labels"]["service"] == "checkout", metadata
    assert metadata["labels"]["severity"] == "critical", metadata
    assert metadata["generator_url"] == generator_url, metadata

    # The gauge drops: Prometheus resolves the alert, Alertmanager sends the resolution.
    chain.trigger.value = 0

    def resolved_alert() -> dict[str, Any] | None:
        found: dict[str, Any] = chain.get(f"/api/alerts/{alert['id']}")
        return found if found["status"] == "resolved" else None

    resolved = chain.eventually("the alert to be resolved", resolved_alert)
    assert resolved["fingerprint"] == fingerprint, resolved
    assert resolved["ends_at"] is not None, resolved
    assert resolved["incident_id"] == incident_id, resolved

    def incident_in_monitoring() -> dict[str, Any] | None:
        found: dict[str, Any] = chain.get(f"/api/incidents/{incident_id}")
        return found if found["status"] == "monitoring" else None

    chain.eventually("the incident to move to monitoring", incident_in_monitoring)

    timeline = chain.items(f"/api/incidents/{incident_id}/timeline")
    types = [event["type"] for event in timeline]
    assert types.count("alert_firing") == 1, timeline
    assert types.count("alert_resolved") == 1, timeline
    [resolved_event] = [event for event in timeline if event["type"] == "alert_resolved"]
    assert resolved_event["metadata"]["labels"]["alertname"] == ALERT_NAME, resolved_event
    moves = [
        (event["metadata"]["from"], event["metadata"]["to"])
        for event in timeline
        if event["type"] == "status_change"
    ]
    assert moves == [("open", "monitoring")], timeline

    # One alert, one incident, all along; every delivery carried the token and was accepted.
    assert [item["id"] for item in chain.items("/api/alerts")] == [alert["id"]]
    assert [item["id"] for item in chain.items("/api/incidents")] == [incident_id]
    statuses = {record["status"] for record in chain.studio.access_records(WEBHOOK_PATH)}
    assert statuses == {202}, chain.diagnostics()


def test_alertmanager_deliveries_with_a_wrong_token_are_refused_and_store_nothing(
    tmp_path: Path,
) -> None:
    with (
        serving(
            tmp_path,
            DATABASE_URL=f"sqlite:///{tmp_path / 'refused.db'}",
            SLO_ENGINE_ENABLED="false",
            PROMETHEUS_URL="http://127.0.0.1:1",
            INGEST_TOKEN_ALERTMANAGER=TOKEN,
        ) as studio,
        httpx.Client(base_url=studio.base_url, timeout=10.0) as api,
        AlertmanagerServer(
            webhook_url=f"{studio.base_url}{WEBHOOK_PATH}", bearer_token="not-the-token"
        ) as alertmanager,
    ):
        assert api.post("/api/services", json={"name": "checkout"}).status_code == 201
        alertmanager.post_alerts(
            [
                {
                    "labels": {
                        "alertname": ALERT_NAME,
                        "service": "checkout",
                        "severity": "critical",
                    },
                    "annotations": {"summary": SUMMARY},
                    "generatorURL": "http://prometheus.example/graph",
                }
            ]
        )
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
        failed = 0.0
        while time.monotonic() < deadline:
            failed = alertmanager.metric(
                "alertmanager_notifications_failed_total", integration="webhook"
            )
            if failed >= 1:
                break
            time.sleep(POLL_SECONDS)
        assert failed >= 1, (
            f"Alertmanager never reported a failed delivery:\n{alertmanager.log_tail()}"
            f"\n--- serve output:\n{studio.output_tail()}"
        )

        deliveries = studio.access_records(WEBHOOK_PATH)
        assert deliveries, f"no webhook request reached serve:\n{alertmanager.log_tail()}"
        assert {record["status"] for record in deliveries} == {401}, deliveries
        assert "unexpected status code 401" in alertmanager.log_tail(), alertmanager.log_tail()
        assert api.get("/api/alerts").json() == {"items": [], "next_cursor": None}
        assert api.get("/api/incidents").json() == {"items": [], "next_cursor": None}
