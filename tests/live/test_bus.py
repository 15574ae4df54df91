"""Specification of the PostgreSQL live bus: it outlives every way its connection can end."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from reliability_studio.config import Settings
from reliability_studio.live.bus import PostgresBus
from reliability_studio.live.echo import ECHO_DEADLINE_SECONDS, Echo
from reliability_studio.live.hub import Hub
from tests.live.conftest import fetch_value

TERMINATIONS = 8
RECONNECT_BOUND_SECONDS = 5.0


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_the_bus_reconnects_after_its_connection_is_ended_while_it_sends(
    settings: Settings,
) -> None:
    # A terminated backend (as in a clean PostgreSQL stop) sends a FATAL error while the bus
    # may be in the middle of a NOTIFY; asyncpg then fails the next call with errors that
    # are neither OSError nor PostgresError. Each termination must still end in a reconnect.
    reconnects = asyncio.run(_terminate_while_sending(settings))
    assert len(reconnects) == TERMINATIONS
    assert max(reconnects) < RECONNECT_BOUND_SECONDS, reconnects


async def _terminate_while_sending(settings: Settings) -> list[float]:
    bus = PostgresBus(settings.database, Hub(buffer_limit=100), interval=0.001)
    running = asyncio.create_task(bus.run_forever())
    sending = asyncio.create_task(_send_forever(bus))
    reconnects: list[float] = []
    try:
        await asyncio.wait_for(bus.connected.wait(), RECONNECT_BOUND_SECONDS)
        for _ in range(TERMINATIONS):
            await asyncio.sleep(0.2)
            ended_pid = await _terminate_listener(settings)
            ended = time.monotonic()
            # Reconnected: a new listener session exists and the bus says it is connected.
            while not (bus.connected.is_set() and await _listener_pid(settings) != ended_pid):
                assert not running.done(), f"the bus stopped: {running.exception()!r}"
                assert time.monotonic() - ended < RECONNECT_BOUND_SECONDS, "no reconnect"
                await asyncio.sleep(0.01)
            reconnects.append(time.monotonic() - ended)
    finally:
        sending.cancel()
        running.cancel()
        await asyncio.gather(sending, running, return_exceptions=True)
    return reconnects


async def _send_forever(bus: PostgresBus) -> None:
    number = 0
    while True:
        number += 1
        bus.send([{"type": "incident.updated", "id": str(number)}])
        await asyncio.sleep(0.0005)


async def _terminate_listener(settings: Settings) -> int:
    """Ends the bus's session as a clean PostgreSQL stop does (SIGTERM); its pid."""
    pid = await _listener_pid(settings)
    assert pid is not None, "the bus has no session"
    assert await fetch_value(settings, "SELECT pg_terminate_backend($1)", pid)
    return pid


async def _listener_pid(settings: Settings) -> int | None:
    pid: int | None = await fetch_value(
        settings,
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'reliability-studio-live'",
    )
    return pid


class RecordingWatcher:
    """A watcher that writes down what the bus told it."""

    channel = "test_watch"

    def __init__(self) -> None:
        self.told: list[str] = []
        self._told = asyncio.Event()

    def heard(self) -> None:
        self._tell("heard")

    def listening(self) -> None:
        self._tell("listening")

    def deaf(self) -> None:
        self._tell("deaf")

    def _tell(self, what: str) -> None:
        self.told.append(what)
        self._told.set()

    async def told_times(self, what: str, times: int) -> None:
        """Wait until the bus has said `what` `times` times."""
        while self.told.count(what) < times:
            self._told.clear()
            await asyncio.wait_for(self._told.wait(), RECONNECT_BOUND_SECONDS)


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_watcher_hears_its_channel_and_is_told_when_it_is_deaf_and_listening_again(
    settings: Settings,
) -> None:
    told = asyncio.run(_watch_through_a_reconnect(settings))
    # A lost connection may be reported twice (as it dies, and as the bus lets it go).
    collapsed = [what for n, what in enumerate(told) if n == 0 or told[n - 1] != what]
    assert collapsed == ["listening", "heard", "deaf", "listening", "heard", "deaf"]


async def _watch_through_a_reconnect(settings: Settings) -> list[str]:
    watcher = RecordingWatcher()
    bus = PostgresBus(settings.database, None, interval=0.001, watchers=[watcher])
    running = asyncio.create_task(bus.run_forever())
    try:
        for round_number in (1, 2):
            await watcher.told_times("listening", round_number)
            await fetch_value(settings, "SELECT pg_notify('test_watch', '')")
            await watcher.told_times("heard", round_number)
            if round_number == 1:
                await _terminate_listener(settings)
                await watcher.told_times("deaf", 1)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    return watcher.told


@pytest.mark.parametrize("settings", ["postgresql"], indirect=True)
def test_a_listener_that_stops_hearing_its_echo_is_deaf_until_it_hears_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As behind a pooler in transaction mode: LISTEN succeeds, nothing is delivered.
    hearing = {"on": True}
    deliver = Echo._on_notification

    def maybe_deliver(echo: Echo, *notification: Any) -> None:
        if hearing["on"]:
            deliver(echo, *notification)

    monkeypatch.setattr(Echo, "_on_notification", maybe_deliver)
    told = asyncio.run(_deafen_and_restore(settings, hearing))
    collapsed = [what for n, what in enumerate(told) if n == 0 or told[n - 1] != what]
    assert collapsed == ["listening", "deaf", "listening", "deaf"]


async def _deafen_and_restore(settings: Settings, hearing: dict[str, bool]) -> list[str]:
    watcher = RecordingWatcher()
    bus = PostgresBus(
        settings.database, None, interval=0.001, watchers=[watcher], probe_seconds=0.1
    )
    running = asyncio.create_task(bus.run_forever())
    try:
        await watcher.told_times("listening", 1)
        hearing["on"] = False
        await watcher.told_times("deaf", 1)  # within a probe and the echo's deadline
        await asyncio.sleep(2 * ECHO_DEADLINE_SECONDS)  # reconnects, never proven
        assert watcher.told.count("listening") == 1
        assert not bus.connected.is_set()
        hearing["on"] = True
        await watcher.told_times("listening", 2)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    return watcher.told
