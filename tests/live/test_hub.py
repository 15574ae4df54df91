"""Specification of the hub: fan-out that never waits on a client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from reliability_studio.live.events import Subscription
from reliability_studio.live.hub import Hub

ORG = "org-1"


def event(id: str, **values: Any) -> dict[str, Any]:
    return {"type": "incident.updated", "id": id, "organization_id": ORG, **values}


def test_a_client_that_does_not_read_is_dropped_and_the_others_get_every_event() -> None:
    async def scenario() -> tuple[list[bytes], bool, int]:
        drops: list[int] = []
        hub = Hub(buffer_limit=10, frame_interval=0, on_drop=lambda: drops.append(1))
        stalled = hub.subscribe(Subscription(ORG))
        reader = hub.subscribe(Subscription(ORG))
        received: list[bytes] = []
        for n in range(100):
            hub.publish([event(f"i{n}")])
            received.extend(await reader.next_frame())
        return received, stalled.dropped, len(drops)

    received, stalled_dropped, drops = asyncio.run(scenario())
    assert len(received) == 100
    assert stalled_dropped
    assert drops == 1


def test_a_dropped_client_is_told_by_an_empty_frame() -> None:
    async def scenario() -> list[bytes]:
        hub = Hub(buffer_limit=1)
        subscriber = hub.subscribe(Subscription(ORG))
        hub.publish([event("i1"), event("i2")])
        return await subscriber.next_frame()

    assert asyncio.run(scenario()) == []


def test_changes_to_one_resource_waiting_for_a_client_are_merged_into_the_latest() -> None:
    async def scenario() -> list[bytes]:
        hub = Hub(buffer_limit=2)
        subscriber = hub.subscribe(Subscription(ORG))
        for status in ("investigating", "identified", "monitoring", "resolved"):
            hub.publish([event("i1", status=status)])
        return await subscriber.next_frame()

    frame = asyncio.run(scenario())
    assert len(frame) == 1
    assert b'"status":"resolved"' in frame[0]


def test_frames_to_one_client_are_spaced_by_the_frame_interval() -> None:
    async def scenario() -> tuple[float, list[bytes]]:
        hub = Hub(buffer_limit=100, frame_interval=0.2)
        subscriber = hub.subscribe(Subscription(ORG))
        hub.publish([event("i1")])
        await subscriber.next_frame()
        started = time.monotonic()
        hub.publish([event("i2")])
        hub.publish([event("i3")])
        frame = await subscriber.next_frame()
        return time.monotonic() - started, frame

    waited, frame = asyncio.run(scenario())
    assert waited >= 0.15
    assert len(frame) == 2  # both joined the one frame


def test_events_reach_only_matching_clients() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        hub = Hub(buffer_limit=10)
        watching = hub.subscribe(Subscription(ORG, incident_ids=frozenset({"i1"})))
        other = hub.subscribe(Subscription(ORG, incident_ids=frozenset({"i9"})))
        hub.publish([event("i1", incident_id="i1"), event("i2", incident_id="i2")])
        hub.resync()
        return await watching.next_frame(), await other.next_frame()

    watching, other = asyncio.run(scenario())
    assert len(watching) == 2
    assert b'"id":"i1"' in watching[0]
    assert b"resync" in watching[1]
    assert other == [b'{"type":"resync"}']


def test_an_unsubscribed_client_receives_nothing_more() -> None:
    hub = Hub(buffer_limit=10)
    subscriber = hub.subscribe(Subscription(ORG))
    hub.unsubscribe(subscriber)
    assert hub.publish([event("i1")]) == 0
    assert hub.client_count == 0


def test_events_waiting_for_a_client_that_resubscribes_elsewhere_are_forgotten() -> None:
    async def scenario() -> list[bytes]:
        hub = Hub(buffer_limit=10)
        subscriber = hub.subscribe(Subscription(ORG, incident_ids=frozenset({"i1"})))
        hub.publish([event("i1", incident_id="i1")])
        subscriber.resubscribe(Subscription(ORG, incident_ids=frozenset({"i2"})))
        hub.publish([event("i2", incident_id="i2")])
        return await subscriber.next_frame()

    frame = asyncio.run(scenario())
    assert len(frame) == 1
    assert b'"id":"i2"' in frame[0]


def test_a_release_whose_events_a_resubscription_forgot_is_not_taken_for_a_drop() -> None:
    # The hub releases the client for an event, then the client resubscribes elsewhere
    # before its sender runs: nothing is left to send. The sender must wait for the next
    # event, not get the empty frame that means "dropped" (and end the stream unclosed).
    async def scenario() -> tuple[bool, list[bytes]]:
        hub = Hub(buffer_limit=10, frame_interval=0)
        subscriber = hub.subscribe(Subscription(ORG, incident_ids=frozenset({"i1"})))
        hub.publish([event("i1", incident_id="i1")])
        await asyncio.sleep(0)  # the release runs: the sender is due
        subscriber.resubscribe(Subscription(ORG, incident_ids=frozenset({"i2"})))
        waiting = asyncio.create_task(subscriber.next_frame())
        await asyncio.sleep(0.05)
        still_waiting = not waiting.done()
        hub.publish([event("i2", incident_id="i2")])
        return still_waiting, await asyncio.wait_for(waiting, 1)

    still_waiting, frame = asyncio.run(scenario())
    assert still_waiting
    assert len(frame) == 1
    assert b'"id":"i2"' in frame[0]
