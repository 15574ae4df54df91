"""Proof that the bus's listener hears: it notifies itself and expects the echo back.

A `LISTEN` can succeed and still deliver nothing: behind a pooler in transaction mode
(PgBouncer's default), or on a connection cut without either end being told. The live
stream would only go quiet, but the token cache would trust a listener that can no longer
tell it of a revocation. So the bus notifies itself when it connects, before anyone is told
it listens, and again every `probe_seconds`; a connection whose echo does not come back
within `ECHO_DEADLINE_SECONDS` is treated as lost (and its watchers as deaf).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import Any

import asyncpg

ECHO_CHANNEL = "reliability_studio_echo"
PROBE_SECONDS = 5.0
ECHO_DEADLINE_SECONDS = 2.0


class Echo:
    """The probes of one listening connection."""

    def __init__(self, probe_seconds: float = PROBE_SECONDS) -> None:
        self.probe_seconds = probe_seconds
        self._prefix = uuid.uuid4().hex  # our echoes, not another process's probes
        self._count = 0
        self._awaited: str | None = None
        self._sent_at = -math.inf
        self._heard = asyncio.Event()

    async def attach(self, connection: asyncpg.Connection) -> None:
        """Listen for the echoes on `connection`."""
        await connection.add_listener(ECHO_CHANNEL, self._on_notification)

    async def prove(self, connection: asyncpg.Connection) -> None:
        """Send a probe and wait for its echo; `InterfaceError` if it does not come."""
        await self._send(connection)
        try:
            async with asyncio.timeout(ECHO_DEADLINE_SECONDS):
                await self._heard.wait()
        except TimeoutError:
            raise _deaf() from None

    async def check(self, connection: asyncpg.Connection) -> None:
        """`InterfaceError` if the last probe went unanswered past the deadline; otherwise
        send the next one when it is due."""
        elapsed = time.monotonic() - self._sent_at
        if self._awaited is not None:
            if elapsed > ECHO_DEADLINE_SECONDS:
                raise _deaf()
        elif elapsed >= self.probe_seconds:
            await self._send(connection)

    async def _send(self, connection: asyncpg.Connection) -> None:
        self._count += 1
        self._awaited = f"{self._prefix}:{self._count}"
        self._sent_at = time.monotonic()
        self._heard.clear()
        await connection.execute("SELECT pg_notify($1, $2)", ECHO_CHANNEL, self._awaited)

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == self._awaited:
            self._awaited = None
            self._heard.set()


def _deaf() -> asyncpg.InterfaceError:
    return asyncpg.InterfaceError("the listener did not hear its own notification in time")
