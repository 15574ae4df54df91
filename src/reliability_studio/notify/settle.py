"""Recording delivery outcomes, many in one transaction.

One commit per notification cost more CPU than sending it. Outcomes are gathered and
written together: one UPDATE executed for many rows, each guarded so that only the attempt
that claimed the row may settle it (a row whose lease ran out and was claimed again is
left to its new owner). A crash before the write loses the outcomes of the batch, and the
rows are sent again after their lease: the idempotency key lets receivers drop repeats.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reliability_studio.db.base import utcnow
from reliability_studio.notify.models import Notification as OutboxRow

# Write when this many outcomes wait, or when the oldest has waited this long.
BATCH_SIZE = 50
BATCH_SECONDS = 0.2


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt."""

    id: uuid.UUID
    attempt: int
    status: str  # delivered, pending (to retry), dead
    last_error: str | None
    next_attempt_at: datetime
    delivered_at: datetime | None = None
    thread: dict[str, Any] | None = None


class OutcomeBatch:
    """Outcomes waiting to be written; `add` says when the batch is due."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self._oldest = 0.0

    def add(self, outcome: Outcome) -> bool:
        """Keep `outcome`; True when the batch should be written now."""
        if not self.outcomes:
            self._oldest = time.monotonic()
        self.outcomes.append(outcome)
        return len(self.outcomes) >= BATCH_SIZE or time.monotonic() - self._oldest >= BATCH_SECONDS

    def take(self) -> list[Outcome]:
        """The outcomes so far, leaving the batch empty."""
        taken, self.outcomes = self.outcomes, []
        return taken


async def record_outcomes(
    sessionmaker: async_sessionmaker[AsyncSession], outcomes: list[Outcome]
) -> None:
    """Write `outcomes` in one transaction; rows no longer held by that attempt are skipped."""
    if not outcomes:
        return
    table = cast(Table, OutboxRow.__table__)
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.attempts == bindparam("b_attempt"),
            table.c.status == "delivering",
        )
        .values(
            status=bindparam("b_status"),
            last_error=bindparam("b_last_error"),
            next_attempt_at=bindparam("b_next_attempt_at"),
            delivered_at=bindparam("b_delivered_at"),
            thread=bindparam("b_thread", type_=table.c.thread.type),
            updated_at=bindparam("b_updated_at"),
        )
    )
    now = utcnow()
    rows = [{f"b_{k}": v for k, v in asdict(o).items()} | {"b_updated_at": now} for o in outcomes]
    async with sessionmaker() as session:
        await session.execute(statement, rows)
        await session.commit()
