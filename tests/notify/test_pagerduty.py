"""The PagerDuty sender against a stand-in that answers as the Events API v2 does.

What the dispatcher relies on: our incident lifecycle becomes trigger / acknowledge / resolve
on one PagerDuty alert (the incident's id is the `dedup_key`), tasks are never sent, a
refused event (400) is permanent with PagerDuty's own reasons, and 429, 5xx and timeouts are
worth another try. The routing key never appears in an error.
"""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from reliability_studio.notify.channels.pagerduty import (
    PagerDutySender,
    event_action,
    severity,
)
from reliability_studio.notify.delivery import (
    Delivered,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from tests.support.fake_pagerduty import FakePagerDuty, invalid_event
from tests.support.postgres import free_port

T = TypeVar("T")
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"
INCIDENT = uuid.UUID("6f1c2b9e-0000-4000-8000-000000000001")
URL = "https://studio.example.com/incidents/6f1c2b9e-0000-4000-8000-000000000001"


def notification(**changes: Any) -> Notification:
    """An `incident.created` about a critical payment outage; `changes` override fields."""
    base = Notification(
        id=uuid.UUID("00000000-0000-4000-8000-0000000000aa"),
        event="incident.created",
        occurred_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        incident_id=INCIDENT,
        title="Payment Service Down",
        severity="critical",
        status="open",
        services=["payments", "checkout"],
        url=URL,
        resource={"id": str(INCIDENT)},
    )
    return replace(base, **changes)


def run(use: Callable[[PagerDutySender], Awaitable[T]], *, timeout: float = 5.0) -> T:
    """`use(sender)` with a fresh httpx client, in a new event loop."""

    async def main() -> T:
        async with httpx.AsyncClient(timeout=timeout) as http:
            return await use(PagerDutySender(http))

    return asyncio.run(main())


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as server:
        yield server


def send(pagerduty: FakePagerDuty, n: Notification, **options: Any) -> Delivered | None:
    return run(lambda s: s.send(ROUTING_KEY, n, api_base=pagerduty.url), **options)


# --- what each event means to PagerDuty ---------------------------------------------------


def test_incident_created_triggers() -> None:
    assert event_action(notification()) == "trigger"


@pytest.mark.parametrize("status", ["investigating", "identified", "monitoring"])
def test_incident_being_worked_on_acknowledges(status: str) -> None:
    assert event_action(notification(event="incident.updated", status=status)) == "acknowledge"


def test_reopened_incident_triggers_again() -> None:
    assert event_action(notification(event="incident.updated", status="open")) == "trigger"


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("incident.resolved", "resolved"),
        ("incident.updated", "resolved"),
        ("incident.updated", "closed"),
        ("slo.burn_rate", "resolved"),
    ],
)
def test_resolved_or_closed_resolves(event: str, status: str) -> None:
    assert event_action(notification(event=event, status=status)) == "resolve"


def test_burn_rate_alert_triggers() -> None:
    assert event_action(notification(event="slo.burn_rate", status=None)) == "trigger"


def test_task_assignment_means_nothing_to_pagerduty() -> None:
    assert event_action(notification(event="task.assigned")) is None


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("critical", "critical"),
        ("high", "error"),
        ("medium", "warning"),
        ("low", "info"),
        (None, "error"),
        ("unheard-of", "error"),
    ],
)
def test_severity_maps_to_pagerdutys_four(ours: str | None, theirs: str) -> None:
    assert severity(notification(severity=ours)) == theirs


# --- sending ------------------------------------------------------------------------------


def test_trigger_is_enqueued_with_the_incident_id_as_dedup_key(pagerduty: FakePagerDuty) -> None:
    assert send(pagerduty, notification()) == Delivered(202)
    [request] = pagerduty.requests
    assert request.path == "/v2/enqueue"
    event = request.json
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == str(INCIDENT)
    assert event["payload"]["summary"] == "[CRITICAL] Payment Service Down"
    assert event["payload"]["source"] == "reliability-studio"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["custom_details"]["services"] == ["payments", "checkout"]
    assert event["payload"]["custom_details"]["status"] == "open"
    assert event["payload"]["custom_details"]["url"] == URL
    assert event["links"] == [{"href": URL, "text": "Open in Reliability Studio"}]


def test_lifecycle_lands_on_one_alert(pagerduty: FakePagerDuty) -> None:
    send(pagerduty, notification())
    send(pagerduty, notification(event="incident.updated", status="investigating"))
    send(pagerduty, notification(event="incident.resolved", status="resolved"))
    assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.events] == [
        ("trigger", str(INCIDENT)),
        ("acknowledge", str(INCIDENT)),
        ("resolve", str(INCIDENT)),
    ]


def test_burn_rate_alert_without_incident_is_keyed_by_the_notification(
    pagerduty: FakePagerDuty,
) -> None:
    n = notification(event="slo.burn_rate", incident_id=None, status=None)
    send(pagerduty, n)
    assert pagerduty.events[0]["dedup_key"] == str(n.id)


def test_summary_is_cut_to_pagerdutys_1024_characters(pagerduty: FakePagerDuty) -> None:
    send(pagerduty, notification(title="x" * 5000))
    assert len(pagerduty.events[0]["payload"]["summary"]) == 1024


def test_task_assignment_is_not_sent(pagerduty: FakePagerDuty) -> None:
    assert send(pagerduty, notification(event="task.assigned")) is None
    assert pagerduty.requests == []


def test_refused_event_is_permanent_with_pagerdutys_errors(pagerduty: FakePagerDuty) -> None:
    pagerduty.answer_with(400, invalid_event("'payload.source' is missing or blank"))
    with pytest.raises(PermanentDeliveryError, match=r"400 .*payload\.source' is missing"):
        send(pagerduty, notification())


def test_429_is_retryable_after_pagerdutys_retry_after(pagerduty: FakePagerDuty) -> None:
    pagerduty.answer_with(429, "", headers={"Retry-After": "7"})
    with pytest.raises(RetryableDeliveryError) as caught:
        send(pagerduty, notification())
    assert caught.value.retry_after_seconds == 7


def test_5xx_is_retryable(pagerduty: FakePagerDuty) -> None:
    pagerduty.answer_with(502, "<html>bad gateway</html>", content_type="text/html")
    with pytest.raises(RetryableDeliveryError, match="502"):
        send(pagerduty, notification())


def test_timeout_is_retryable(pagerduty: FakePagerDuty) -> None:
    pagerduty.hang()
    with pytest.raises(RetryableDeliveryError, match="Timeout"):
        send(pagerduty, notification(), timeout=0.3)


def test_routing_key_is_not_in_the_error_text(pagerduty: FakePagerDuty) -> None:
    pagerduty.answer_with(400, invalid_event(f"unknown routing_key {ROUTING_KEY}"))
    with pytest.raises(PermanentDeliveryError) as refused:
        send(pagerduty, notification())
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RetryableDeliveryError) as unreachable:
        run(lambda s: s.send(ROUTING_KEY, notification(), api_base=closed))
    for error in (refused.value, unreachable.value):
        assert ROUTING_KEY not in "".join(traceback.format_exception(error))
