"""Specification of live events: coalescing, summaries, packing and subscriptions."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from reliability_studio.live.events import (
    MAX_PAYLOAD_BYTES,
    SUMMARY_THRESHOLD,
    Change,
    Subscription,
    coalesce,
    pack,
    short,
    to_events,
)

ORG = "org-1"
AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def change(kind: str, op: str, id: str, **values: object) -> Change:
    return Change(kind=kind, op=op, id=id, organization_id=ORG, **values)  # type: ignore[arg-type]


def test_two_changes_of_one_resource_become_one_with_the_latest_data() -> None:
    merged = coalesce(
        [
            change("incident", "updated", "i1", data={"status": "investigating"}),
            change("incident", "updated", "i1", data={"status": "resolved"}),
        ]
    )
    assert len(merged) == 1
    assert merged[0].data == {"status": "resolved"}


def test_a_resource_created_then_updated_in_one_transaction_is_reported_as_created() -> None:
    merged = coalesce(
        [
            change("task", "created", "t1", data={"status": "open"}),
            change("task", "updated", "t1", data={"status": "done"}),
        ]
    )
    assert [(c.op, c.data["status"]) for c in merged] == [("created", "done")]


def test_many_changes_of_one_kind_become_one_summary() -> None:
    alerts = [
        change("alert", "created", f"a{n}", service_ids=[f"s{n % 3}"])
        for n in range(SUMMARY_THRESHOLD + 1)
    ]
    events = to_events([*alerts, change("incident", "created", "i1", incident_id="i1")], AT)
    summary = next(e for e in events if e["type"] == "alerts.changed")
    assert summary["count"] == SUMMARY_THRESHOLD + 1
    assert summary["service_ids"] == ["s0", "s1", "s2"]
    assert summary["everyone"] is False
    assert [e["type"] for e in events if e is not summary] == ["incident.created"]


def test_payloads_never_exceed_the_notify_limit_and_keep_every_event() -> None:
    events = [
        {"type": "timeline_event.created", "id": str(n), "data": {"title": short("x" * 500)}}
        for n in range(200)
    ]
    payloads = list(pack(events))
    assert len(payloads) > 1
    assert all(len(payload) <= MAX_PAYLOAD_BYTES for payload in payloads)
    assert [e for p in payloads for e in orjson.loads(p)] == events


def test_an_incident_subscription_matches_its_events_and_summaries_naming_it() -> None:
    subscription = Subscription(ORG, incident_ids=frozenset({"i1"}))
    assert subscription.matches({"organization_id": ORG, "incident_id": "i1"})
    assert not subscription.matches({"organization_id": ORG, "incident_id": "i2"})
    assert subscription.matches({"organization_id": ORG, "incident_ids": ["i0", "i1"]})


def test_a_service_subscription_matches_events_that_concern_the_service() -> None:
    subscription = Subscription(ORG, service_ids=frozenset({"s1"}))
    assert subscription.matches({"organization_id": ORG, "service_ids": ["s0", "s1"]})
    assert not subscription.matches({"organization_id": ORG, "service_ids": ["s2"]})


def test_no_subscription_matches_another_organization() -> None:
    everything = Subscription(ORG)
    assert everything.matches({"organization_id": ORG})
    assert not everything.matches({"organization_id": "org-2", "everyone": True})


def test_a_resync_reaches_every_subscription() -> None:
    assert Subscription(ORG, incident_ids=frozenset({"i1"})).matches({"type": "resync"})
