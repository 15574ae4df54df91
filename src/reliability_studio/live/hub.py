"""The broadcaster of one process: hands each event to the clients that want it.

The hub never waits on a client. Each client has a bounded buffer of pending events keyed
by resource: a second change to a resource still waiting replaces the first (debouncing
under storms: a client sees the latest state, not every step). A client whose buffer
overflows is dropped, and reconnects; the others are not slowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from reliability_studio.live.events import Subscription

log = logging.getLogger(__name__)
RESYNC: dict[str, Any] = {"type": "resync"}


class Subscriber:
    """One connected client: its subscription and the events waiting to be sent to it."""

    def __init__(self, subscription: Subscription, buffer_limit: int) -> None:
        self.subscription = subscription
        self.buffer_limit = buffer_limit
        self.dropped = False
        # The task sending to this client, cancelled if the client is dropped while stuck
        # in a send (it has stopped reading, so the send would never end).
        self.sender: asyncio.Task[Any] | None = None
        self._pending: dict[Any, tuple[dict[str, Any], bytes]] = {}
        self._ready = asyncio.Event()

    def offer(self, key: Any, event: dict[str, Any], encoded: bytes) -> bool:
        """Queue one event (replacing a pending one for the same resource); False when the
        buffer is full and the client must be dropped."""
        if key in self._pending:
            # Re-inserted at the end: the replacement is sent in the order it happened.
            del self._pending[key]
        elif len(self._pending) >= self.buffer_limit:
            return False
        self._pending[key] = (event, encoded)
        return True

    def resubscribe(self, subscription: Subscription) -> None:
        """Replace the subscription; pending events it does not want are forgotten."""
        self.subscription = subscription
        self._pending = {
            key: pending
            for key, pending in self._pending.items()
            if subscription.matches(pending[0])
        }

    def release(self) -> None:
        """Let the sender take what is pending (the hub paces this)."""
        self._ready.set()

    def drop(self) -> None:
        """Mark the client as too slow; its sender stops."""
        self.dropped = True
        self._pending.clear()
        self._ready.set()
        if self.sender is not None:
            self.sender.cancel()

    async def next_frame(self) -> list[bytes]:
        """The events to send next, once the hub releases them. Empty once the client has
        been dropped."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            if self.dropped:
                return []
            # A resubscription may have forgotten what was released: wait for more, as an
            # empty frame would tell the sender that the client was dropped.
            if self._pending:
                break
        frame = [encoded for _, encoded in self._pending.values()]
        self._pending.clear()
        return frame


class Hub:
    """Every client of this process, and the fan-out of events to them.

    Clients with pending events are released to send together, at most once per
    `frame_interval` seconds: the first event after a quiet spell goes out at once, and
    under a storm each client gets one frame per interval holding everything since.
    """

    def __init__(
        self,
        buffer_limit: int,
        frame_interval: float = 0.05,
        on_drop: Callable[[], None] = lambda: None,
    ) -> None:
        self.buffer_limit = buffer_limit
        self.frame_interval = frame_interval
        self._subscribers: set[Subscriber] = set()
        self._due: set[Subscriber] = set()
        self._release_scheduled = False
        self._last_release = -float("inf")
        self._on_drop = on_drop

    @property
    def client_count(self) -> int:
        """How many clients are connected to this process."""
        return len(self._subscribers)

    def subscribe(self, subscription: Subscription) -> Subscriber:
        """Register a client; events published from now on reach it."""
        subscriber = Subscriber(subscription, self.buffer_limit)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a client (idempotent)."""
        self._subscribers.discard(subscriber)

    def publish(self, events: list[dict[str, Any]]) -> int:
        """Offer `events` to every matching client; returns how many clients were dropped."""
        if not self._subscribers:
            return 0
        dropped = 0
        for event in events:
            encoded = orjson.dumps(event)
            key = (event["type"].split(".", 1)[0], event.get("id")) if "id" in event else encoded
            for subscriber in list(self._subscribers):
                if subscriber.dropped or not subscriber.subscription.matches(event):
                    continue
                if self._offer(subscriber, key, event, encoded):
                    self._due.add(subscriber)
                else:
                    dropped += 1
        self._schedule_release()
        if dropped:
            log.warning("live clients dropped: too slow", extra={"dropped": dropped})
        return dropped

    def publish_raw(self, payload: str | bytes) -> None:
        """Publish a NOTIFY payload (a JSON array of events); a malformed one is logged."""
        try:
            events = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.error("live payload is not JSON; ignored")
            return
        if isinstance(events, list):
            self.publish([event for event in events if isinstance(event, dict)])

    def resync(self) -> None:
        """Tell every client that events may have been missed (the bus reconnected), so
        that it fetches the current state again."""
        for subscriber in list(self._subscribers):
            if self._offer(subscriber, "resync", RESYNC, b'{"type":"resync"}'):
                self._due.add(subscriber)
        self._schedule_release()

    def _schedule_release(self) -> None:
        if not self._due or self._release_scheduled:
            return
        loop = asyncio.get_running_loop()
        self._release_scheduled = True
        delay = self._last_release + self.frame_interval - loop.time()
        if delay > 0:
            loop.call_later(delay, self._release)
        else:
            loop.call_soon(self._release)

    def _release(self) -> None:
        self._release_scheduled = False
        self._last_release = asyncio.get_running_loop().time()
        due, self._due = self._due, set()
        for subscriber in due:
            subscriber.release()

    def _offer(
        self, subscriber: Subscriber, key: Any, event: dict[str, Any], encoded: bytes
    ) -> bool:
        """Queue an event for one client, dropping the client if its buffer is full."""
        if subscriber.offer(key, event, encoded):
            return True
        subscriber.drop()
        self._subscribers.discard(subscriber)
        self._on_drop()
        return False
