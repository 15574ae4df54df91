"""The dispatcher: delivers outbox rows, each channel on its own.

A pass claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several dispatchers
never claim one row twice), marks them `delivering` with a lease and counts the attempt,
then hands each channel's rows to that channel's own task and returns at once. A channel
whose receiver hangs therefore holds up nobody else: its rows wait in its task (passes skip
channels that are busy), and if the process dies the lease runs out and the rows are
claimed again; the notification id, sent as the idempotency key, lets the receiver drop
the repeat. Retryable failures back off exponentially with jitter (or as long as the
receiver's `Retry-After` asks); after `NOTIFY_MAX_ATTEMPTS` a row is `dead`, its last
error kept, until someone retries it through the API.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reliability_studio.background import wait_to_be_woken
from reliability_studio.config import Settings
from reliability_studio.db.base import utcnow
from reliability_studio.notify.channels.email import EmailSender
from reliability_studio.notify.channels.pagerduty import PagerDutySender
from reliability_studio.notify.channels.slack import SlackSender
from reliability_studio.notify.channels.webhook import WebhookSender
from reliability_studio.notify.delivery import (
    Delivered,
    DeliveryError,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from reliability_studio.notify.models import Notification as OutboxRow
from reliability_studio.notify.models import NotificationChannel
from reliability_studio.notify.settle import Outcome, OutcomeBatch, record_outcomes
from reliability_studio.outbound import DestinationDeniedError, policy_from_settings
from reliability_studio.outbound.http import guarded_client

log = logging.getLogger(__name__)
SLACK_KINDS = ("slack", "slack_webhook")


@dataclass(frozen=True)
class Claimed:
    """A row this dispatcher holds, with what it needs to send it."""

    id: uuid.UUID
    attempt: int
    channel_id: uuid.UUID
    kind: str
    config: dict[str, Any]
    notification: Notification


class Dispatcher:
    """Delivers notifications until stopped; `wake()` asks for a pass now."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        # Channel targets are user-supplied: every connection goes to a checked address.
        self.policy = policy_from_settings(settings)
        self.http = guarded_client(self.policy, timeout=settings.notify_send_timeout_seconds)
        self.slack = SlackSender(self.http)
        self.pagerduty = PagerDutySender(self.http)
        self.webhook = WebhookSender(self.http)
        self._busy: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._held: dict[uuid.UUID, int] = {}  # claimed, not yet settled: id -> attempt
        self._last_send: dict[uuid.UUID, float] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass as soon as possible."""
        self._wake.set()

    async def close(self) -> None:
        """Stop the channel tasks, hand back the rows they held, and close connections.

        A row held at shutdown goes back to `pending` at once rather than waiting for its
        lease: the next process sends it (again, if the receiver had it: the idempotency
        key lets it drop the repeat).
        """
        for task in self._busy.values():
            task.cancel()
        await asyncio.gather(*self._busy.values(), return_exceptions=True)
        await self._release_held()
        await self.http.aclose()

    async def _release_held(self) -> None:
        if not self._held:
            return
        now = utcnow()
        try:
            async with self.sessionmaker() as session:
                for row_id, attempt in self._held.items():
                    await session.execute(
                        update(OutboxRow)
                        .where(
                            OutboxRow.id == row_id,
                            OutboxRow.attempts == attempt,
                            OutboxRow.status == "delivering",
                        )
                        .values(status="pending", next_attempt_at=now, updated_at=now)
                    )
                await session.commit()
        except Exception:  # the database may be gone too; the lease still covers the rows
            log.exception("could not hand back notifications at shutdown")
        self._held.clear()

    async def run_forever(self) -> None:
        """A pass whenever woken, or every `NOTIFY_POLL_SECONDS`."""
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification pass failed; retrying")
            await wait_to_be_woken(self._wake, self.settings.notify_poll_seconds)

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim due rows of idle channels and start their delivery; returns how many."""
        claimed = await self._claim(now or utcnow())
        by_channel: dict[uuid.UUID, list[Claimed]] = {}
        for item in claimed:
            self._held[item.id] = item.attempt
            by_channel.setdefault(item.channel_id, []).append(item)
        for channel_id, items in by_channel.items():
            task = asyncio.create_task(self._deliver_all(items), name=f"notify-{channel_id}")
            self._busy[channel_id] = task
            task.add_done_callback(self._idle_callback(channel_id))
        return len(claimed)

    def _idle_callback(self, channel_id: uuid.UUID) -> Callable[[asyncio.Task[None]], None]:
        def idle(_: asyncio.Task[None]) -> None:
            self._busy.pop(channel_id, None)
            self.wake()  # its next rows may be due already

        return idle

    async def wait_idle(self) -> None:
        """Wait for the channel tasks started so far (tests and shutdown)."""
        await asyncio.gather(*list(self._busy.values()), return_exceptions=True)

    async def _claim(self, now: datetime) -> list[Claimed]:
        lease = timedelta(seconds=self.settings.notify_lease_seconds)
        async with self.sessionmaker() as session:
            query = (
                select(OutboxRow, NotificationChannel)
                .join(NotificationChannel, NotificationChannel.id == OutboxRow.channel_id)
                .where(
                    OutboxRow.status.in_(("pending", "delivering")),
                    OutboxRow.next_attempt_at <= now,
                )
                .order_by(OutboxRow.next_attempt_at)
                .limit(self.settings.notify_batch_size)
            )
            if self._busy:
                query = query.where(OutboxRow.channel_id.not_in(list(self._busy)))
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=OutboxRow)
            claimed = []
            for row, channel in await session.execute(query):
                if not channel.enabled:  # disabled after the row was written
                    row.status = "dead"
                    row.last_error = f"channel {channel.name!r} is disabled"
                    row.updated_at = now
                    continue
                row.status = "delivering"
                row.attempts += 1
                row.next_attempt_at = now + lease
                row.updated_at = now
                claimed.append(
                    Claimed(
                        id=row.id,
                        attempt=row.attempts,
                        channel_id=channel.id,
                        kind=channel.kind,
                        config=dict(channel.config),
                        notification=self._notification(row),
                    )
                )
            threads = await self._threads(session, claimed)
            await session.commit()
        return [
            item
            if (key := (item.channel_id, item.notification.incident_id)) not in threads
            else _with_thread(item, threads[key])
            for item in claimed
        ]

    async def _threads(
        self, session: AsyncSession, claimed: list[Claimed]
    ) -> dict[tuple[uuid.UUID, uuid.UUID | None], dict[str, Any]]:
        """What the first delivered message of each incident returned, per Slack channel."""
        incidents = {
            item.notification.incident_id
            for item in claimed
            if item.kind == "slack" and item.notification.incident_id is not None
        }
        if not incidents:
            return {}
        found: dict[tuple[uuid.UUID, uuid.UUID | None], dict[str, Any]] = {}
        rows = await session.execute(
            select(OutboxRow.channel_id, OutboxRow.incident_id, OutboxRow.thread)
            .where(
                OutboxRow.incident_id.in_(incidents),
                OutboxRow.status == "delivered",
                OutboxRow.thread.is_not(None),
            )
            .order_by(OutboxRow.delivered_at)
        )
        for channel_id, incident_id, thread in rows:
            found.setdefault((channel_id, incident_id), thread)
        return found

    def _notification(self, row: OutboxRow) -> Notification:
        payload = row.payload
        incident_id = uuid.UUID(payload["incident_id"]) if payload.get("incident_id") else None
        base = self.settings.public_url.rstrip("/")
        return Notification(
            id=row.id,
            event=payload["event"],
            occurred_at=row.created_at,
            incident_id=incident_id,
            title=str(payload.get("title", "")),
            severity=payload.get("severity"),
            status=payload.get("status"),
            services=list(payload.get("services", [])),
            url=f"{base}/api/incidents/{incident_id}" if base and incident_id else None,
            resource=dict(payload.get("resource", {})),
        )

    async def _deliver_all(self, items: list[Claimed]) -> None:
        batch = OutcomeBatch()
        # Slack threads: a follow-up claimed with its incident's first message goes under it.
        threads: dict[uuid.UUID, dict[str, Any]] = {}
        try:
            for item in items:
                incident = item.notification.incident_id
                if incident in threads and not item.notification.thread:
                    item = _with_thread(item, threads[incident])
                await self._pace(item)
                outcome = await self._attempt(item)
                if outcome.thread and incident is not None:
                    threads.setdefault(incident, outcome.thread)
                if batch.add(outcome):
                    await self._record(batch.take())
        finally:
            await self._record(batch.take())

    async def _attempt(self, item: Claimed) -> Outcome:
        """Send one notification; what became of it."""
        try:
            async with asyncio.timeout(self.settings.notify_send_timeout_seconds + 5):
                delivered = await self._send(item)
        except TimeoutError:
            return self._failed(item, RetryableDeliveryError("no answer in time"))
        except DestinationDeniedError as denied:  # no retry will make the address allowed
            return self._failed(item, PermanentDeliveryError(f"destination denied: {denied}"))
        except DeliveryError as error:
            return self._failed(item, error)
        except Exception as error:  # a bug or a bad config must not stop the channel
            log.exception("notification send failed", extra={"notification": str(item.id)})
            return self._failed(item, PermanentDeliveryError(f"{type(error).__name__}"))
        else:
            return self._delivered(item, delivered)
        finally:
            self._last_send[item.channel_id] = time.monotonic()

    async def _record(self, outcomes: list[Outcome]) -> None:
        await record_outcomes(self.sessionmaker, outcomes)
        for outcome in outcomes:
            self._held.pop(outcome.id, None)

    async def _pace(self, item: Claimed) -> None:
        """Per-channel rate limit: Slack takes about one message a second per channel."""
        if item.kind not in SLACK_KINDS:
            return
        interval = 1.0 / self.settings.notify_slack_rate_per_second
        last = self._last_send.get(item.channel_id)
        if last is not None and (wait := interval - (time.monotonic() - last)) > 0:
            await asyncio.sleep(wait)

    async def _send(self, item: Claimed) -> Delivered | None:
        config, n = item.config, item.notification
        if item.kind == "slack_webhook":
            return await self.slack.send_webhook(config["webhook_url"], n)
        if item.kind == "slack":
            return await self.slack.send_message(
                config["token"], config["channel"], n, api_base=config["api_base"]
            )
        if item.kind == "pagerduty":
            return await self.pagerduty.send(config["routing_key"], n, api_base=config["api_base"])
        if item.kind == "webhook":
            return await self.webhook.send(config["url"], config.get("secret"), n)
        if item.kind == "email":
            sender = EmailSender(
                config["host"],
                config["port"],
                username=config.get("username"),
                password=config.get("password"),
                use_tls=config.get("use_tls", False),
                start_tls=config.get("start_tls"),
                timeout_seconds=self.settings.notify_send_timeout_seconds,
                policy=self.policy,
            )
            return await sender.send(config["sender"], config["recipients"], n)
        raise PermanentDeliveryError(f"unknown channel kind {item.kind!r}")

    def _delivered(self, item: Claimed, delivered: Delivered | None) -> Outcome:
        log.info("notification delivered", extra=_log_fields(item))
        now = utcnow()
        return Outcome(
            id=item.id,
            attempt=item.attempt,
            status="delivered",
            delivered_at=now,
            next_attempt_at=now,
            last_error=None if delivered is not None else "nothing to send for this event",
            thread=(delivered.thread or None) if delivered is not None else None,
        )

    def _failed(self, item: Claimed, error: DeliveryError) -> Outcome:
        message = str(error)[:2000] or type(error).__name__
        # Senders keep secrets out of their errors (the API shows them as `last_error` too).
        log.warning("notification attempt failed", extra={**_log_fields(item), "error": message})
        now = utcnow()
        if (
            isinstance(error, PermanentDeliveryError)
            or item.attempt >= self.settings.notify_max_attempts
        ):
            return Outcome(item.id, item.attempt, "dead", message, next_attempt_at=now)
        wait = self._backoff(item.attempt, getattr(error, "retry_after_seconds", None))
        return Outcome(
            item.id, item.attempt, "pending", message, next_attempt_at=now + timedelta(seconds=wait)
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential with full jitter, or what the receiver asked (never above the cap)."""
        cap = self.settings.notify_backoff_max_seconds
        if retry_after is not None:
            return min(cap, max(0.0, retry_after))
        ceiling = min(cap, self.settings.notify_backoff_base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def _log_fields(item: Claimed) -> dict[str, Any]:
    return {
        "notification": str(item.id),
        "channel": str(item.channel_id),
        "event": item.notification.event,
        "attempt": item.attempt,
    }


def _with_thread(item: Claimed, thread: dict[str, Any]) -> Claimed:
    notification = Notification(**{**item.notification.__dict__, "thread": dict(thread)})
    return Claimed(
        id=item.id,
        attempt=item.attempt,
        channel_id=item.channel_id,
        kind=item.kind,
        config=item.config,
        notification=notification,
    )
