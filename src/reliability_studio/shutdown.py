"""A hard bound on shutdown: SHUTDOWN_TIMEOUT_SECONDS after it starts, the process ends.

Cancelling the work is not always enough. SQLAlchemy runs the close of a session or
connection to completion even when the task awaiting it is cancelled, and against a database
that stopped answering (a network partition, a frozen host) each such close waits seconds on
the network; the interpreter then waits for the SQLite driver's threads, which sit in SQLite's
busy wait whatever we do. So a watchdog thread, not the event loop, keeps the bound.

Ending the process there loses nothing that was acknowledged: every write is committed before
its answer goes out, uncommitted work rolls back, and rows a job had claimed come back when
their lease ends (tests/reliability kills the process with SIGKILL under load and checks).
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)


def exit_now(status: int = 0) -> None:
    """End the process at once with `status`, logs flushed, without waiting for threads."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def exit_after(seconds: float) -> None:
    """Give the process `seconds` to end by itself; then end it (status 0: it was asked to
    stop, and it stopped; the log says what was cut short)."""

    def cut_short() -> None:
        log.error("shutdown cut short", extra={"timeout_seconds": seconds})
        exit_now(0)

    timer = threading.Timer(seconds, cut_short)
    timer.daemon = True  # a process that ends in time is not held up by its watchdog
    timer.name = "shutdown-watchdog"
    timer.start()
