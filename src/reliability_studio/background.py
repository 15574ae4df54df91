"""What the background loops (correlator, analysis runner, dispatcher) share."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_to_be_woken(event: asyncio.Event, timeout_seconds: float) -> None:
    """Return when `event` is set or `timeout_seconds` have passed, whichever is first.

    `asyncio.timeout` rather than `asyncio.wait_for`: on Python 3.11, `wait_for` can swallow
    a cancellation that arrives just as its timeout fires, and a loop waiting in it would
    then never stop: the app's shutdown hung on exactly that.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_seconds):
            await event.wait()
