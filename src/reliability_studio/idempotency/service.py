"""Keeping idempotency keys in the database: reserve, wait, take over, settle, purge.

The reservation is committed on its own before the request runs, so that concurrent
retries (in this process or any other sharing the database) find it at once: the unique
constraint on (organization, principal, key) lets exactly one of them insert it. The
others wait for its response and replay it, or answer 409 when it takes too long.

The request's own write marks the reservation `applied` in the write's transaction (a
session hook, `before_commit`), guarded by the reservation's `lock_id`: so a key whose
write committed is never carried out again, even if the process dies before recording the
response, and a request whose reservation was taken over cannot commit at all.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from reliability_studio.api.problems import ConflictError, FieldError
from reliability_studio.db.base import utcnow
from reliability_studio.idempotency.models import (
    APPLIED,
    COMPLETED,
    IN_PROGRESS,
    PATH_LENGTH,
    WITHHELD,
    IdempotencyKey,
)
from reliability_studio.idempotency.rules import (
    HEADER,
    RETENTION,
    WAIT_SECONDS,
    Seen,
    Verdict,
    judge,
)

# Sessions this module opens itself: the hook below leaves them alone.
_INTERNAL = "idempotency_internal"
_MARKING = "idempotency_marking"
PURGE_EVERY = timedelta(minutes=10)
# Polling for a key held by another process starts fast and slows down to this.
MAX_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class KeyScope:
    """Whose key: organization, principal, and the key itself."""

    organization_id: uuid.UUID
    principal: str
    key: str


@dataclass(eq=False)
class Reservation:
    """A key this request holds while it runs."""

    id: uuid.UUID
    lock_id: uuid.UUID
    scope: KeyScope
    # Set once a transaction of the request has committed (and marked the row applied).
    applied: bool = False
    # Cleared when the request has answered: later commits are not the request's.
    open: bool = True


@dataclass(frozen=True)
class Stored:
    """A key's row as another request found it."""

    id: uuid.UUID
    lock_id: uuid.UUID
    seen: Seen
    method: str
    path: str
    response_status: int | None
    response_headers: list[list[str]] | None
    response_body: bytes | None


# The reservation of the request being served (set by the dependency, in the request's
# task, so the endpoint's sessions see it).
active_reservation: ContextVar[Reservation | None] = ContextVar("active_reservation", default=None)


class KeyTakenOverError(ConflictError):
    """The reservation lapsed and a retry took the key over: this request must not write."""

    def __init__(self) -> None:
        super().__init__(
            f"this request took too long and a retry with the same {HEADER} took over; "
            "its result is the one that counts",
            errors=[FieldError(field=HEADER, location="header", message="taken over")],
        )


@dataclass
class Waiters:
    """Wake-ups for retries waiting on a key held by a request of this process.

    Only a shortcut: the database is the truth, and a key held by another process is
    polled. Without it, retries of a request running here would poll too.
    """

    events: dict[KeyScope, asyncio.Event] = field(default_factory=dict)

    def hold(self, scope: KeyScope) -> None:
        """The request holding `scope` runs here."""
        self.events[scope] = asyncio.Event()

    def done(self, scope: KeyScope) -> None:
        """It has answered (or failed): wake whoever waits."""
        event = self.events.pop(scope, None)
        if event is not None:
            event.set()

    async def wait(self, scope: KeyScope, longest: float, poll: float) -> None:
        """Until the key's request here answers (at most `longest` seconds), or `poll`
        seconds when it is held elsewhere."""
        event = self.events.get(scope)
        delay = longest if event is not None else min(poll, longest)
        if delay <= 0:
            return
        if event is None:
            await asyncio.sleep(delay)
            return
        try:
            async with asyncio.timeout(delay):
                await event.wait()
        except TimeoutError:
            pass


@dataclass
class KeyStore:
    """The idempotency keys of one app, in its database (`sessionmaker()` gives the app's
    sessionmaker of the moment: an app's lifespan makes a new one at each start)."""

    sessionmaker: Callable[[], async_sessionmaker[AsyncSession]]
    waiters: Waiters = field(default_factory=Waiters)
    _last_purge: float = float("-inf")
    _sqlite_synchronous: int | None = None

    def _session(self) -> AsyncSession:
        session = self.sessionmaker()()
        session.info[_INTERNAL] = True
        return session

    @asynccontextmanager
    async def _bookkeeping(self) -> AsyncIterator[AsyncSession]:
        """A session for writing keys, whose commits do not wait for the disk.

        Safe, because both databases write one log in order: the request's own write,
        committed durably after the reservation, makes the reservation durable with it (and
        its `applied` mark is in that write's transaction). A crash of the database (not of
        this process: the log is written, only not yet flushed) can lose at most a response
        recorded in the last moment: the key then stays `applied`, and a retry gets 409,
        never a second write. It spares each keyed request two waits for the disk: the two
        extra commits cost ~6 ms on SQLite and ~20 ms on PostgreSQL here when synchronous.
        """
        sessionmaker = self.sessionmaker()
        engine: AsyncEngine = sessionmaker.kw["bind"]
        if engine.dialect.name == "postgresql":
            async with self._session() as session:
                # Transaction-scoped: the connection goes back to the pool unchanged.
                await session.execute(text("SET LOCAL synchronous_commit = off"))
                yield session
            return
        async with engine.connect() as connection:
            # SQLite's `synchronous` is per connection and may only change between
            # transactions: through the driver, before SQLAlchemy begins one, and back after.
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            if self._sqlite_synchronous is None:  # as the engine sets every connection
                row = await (await raw.execute("PRAGMA synchronous")).fetchone()
                self._sqlite_synchronous = int(row[0])
            await raw.execute("PRAGMA synchronous=NORMAL")
            try:
                async with AsyncSession(bind=connection, expire_on_commit=False) as session:
                    session.info[_INTERNAL] = True
                    yield session
            finally:
                try:
                    await raw.execute(f"PRAGMA synchronous={self._sqlite_synchronous}")
                except BaseException:
                    # Never hand a connection back with weaker durability than configured.
                    await connection.invalidate()
                    raise

    async def begin(
        self, scope: KeyScope, fingerprint: str, method: str, path: str
    ) -> Reservation | tuple[Verdict, Stored]:
        """Reserve the key for this request, or say what to answer instead.

        A key held by a request still running is waited for (up to `WAIT_SECONDS`); what
        comes back then is a verdict on its row: replay it, refuse a mismatch, or, when the
        wait ran out, `WAIT` (the caller answers 409 in progress).
        """
        deadline = time.monotonic() + WAIT_SECONDS
        attempt = 0
        found: Stored | None = None
        while True:
            if found is None:  # first, or released by a request that failed: try to run it
                reserved = await self.reserve(scope, fingerprint, method, path, utcnow())
                if isinstance(reserved, Reservation):
                    return reserved
                if reserved is None:  # gone between the insert and the select
                    continue
                found = reserved
            verdict = judge(found.seen, fingerprint, utcnow())
            if verdict is Verdict.TAKE_OVER:
                taken = await self.take_over(scope, found, fingerprint, method, path)
                if taken is not None:
                    return taken
            elif verdict is not Verdict.WAIT:
                return verdict, found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Verdict.WAIT, found
            if verdict is Verdict.WAIT:
                await self.waiters.wait(scope, remaining, min(0.01 * 2**attempt, MAX_POLL_SECONDS))
                attempt += 1
            found = await self.look(found)

    async def reserve(
        self, scope: KeyScope, fingerprint: str, method: str, path: str, now: datetime
    ) -> Reservation | Stored | None:
        """Insert the key as `in_progress`; else the row that is there (None if it went
        away between the two statements)."""
        reservation = Reservation(id=uuid.uuid4(), lock_id=uuid.uuid4(), scope=scope)
        values = {
            "id": reservation.id,
            "organization_id": scope.organization_id,
            "principal": scope.principal,
            "key": scope.key,
            "fingerprint": fingerprint,
            "method": method,
            "path": path[:PATH_LENGTH],
            "state": IN_PROGRESS,
            "lock_id": reservation.lock_id,
            "locked_at": now,
            "created_at": now,
        }
        async with self._bookkeeping() as session:
            await self._purge_now_and_then(session, now)
            dialect = session.get_bind().dialect.name
            insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
            statement = insert(IdempotencyKey).values(values).on_conflict_do_nothing()
            inserted = await session.execute(statement.returning(IdempotencyKey.id))
            if inserted.first() is not None:
                await session.commit()
                self.waiters.hold(scope)
                return reservation
            stored = await self._find(session, scope)
            await session.commit()
        return stored

    async def look(self, stored: Stored) -> Stored | None:
        """The row again, as it is now (None once released)."""
        async with self._session() as session:
            row = await session.get(IdempotencyKey, stored.id)
            found = _stored(row) if row is not None else None
            await session.commit()
        return found

    async def take_over(
        self, scope: KeyScope, stored: Stored, fingerprint: str, method: str, path: str
    ) -> Reservation | None:
        """Reserve an expired or abandoned key for this request; None if another did first.

        The update checks the row's lock and state again: on PostgreSQL it waits for a
        write that is marking the row applied, then sees that and leaves the row alone.
        """
        now = utcnow()
        reservation = Reservation(id=stored.id, lock_id=uuid.uuid4(), scope=scope)
        expired = stored.seen.created_at <= now - RETENTION
        async with self._bookkeeping() as session:
            result = await session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.id == stored.id,
                    IdempotencyKey.lock_id == stored.lock_id,
                    IdempotencyKey.state == stored.seen.state,
                )
                .values(
                    lock_id=reservation.lock_id,
                    locked_at=now,
                    state=IN_PROGRESS,
                    fingerprint=fingerprint,
                    method=method,
                    path=path[:PATH_LENGTH],
                    response_status=None,
                    response_headers=None,
                    response_body=None,
                    completed_at=None,
                    **({"created_at": now} if expired else {}),
                )
                .returning(IdempotencyKey.id)
            )
            taken = result.first() is not None
            await session.commit()
        if not taken:
            return None
        self.waiters.hold(scope)
        return reservation

    async def complete(
        self,
        reservation: Reservation,
        state: str,
        status: int,
        headers: list[list[str]] | None,
        body: bytes | None,
    ) -> None:
        """Record how the request ended (`completed` with its response, or `withheld`)."""
        assert state in (COMPLETED, WITHHELD)
        async with self._bookkeeping() as session:
            await session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.id == reservation.id,
                    IdempotencyKey.lock_id == reservation.lock_id,
                )
                .values(
                    state=state,
                    response_status=status,
                    response_headers=headers,
                    response_body=body,
                    completed_at=utcnow(),
                )
            )
            await session.commit()

    async def release(self, reservation: Reservation) -> None:
        """Forget a key whose request wrote nothing (never one marked applied)."""
        async with self._bookkeeping() as session:
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.id == reservation.id,
                    IdempotencyKey.lock_id == reservation.lock_id,
                    IdempotencyKey.state == IN_PROGRESS,
                )
            )
            await session.commit()

    async def purge(self, now: datetime) -> int:
        """Delete the keys older than the retention; how many."""
        async with self._bookkeeping() as session:
            count = await _purge(session, now)
            await session.commit()
        return count

    async def _purge_now_and_then(self, session: AsyncSession, now: datetime) -> None:
        # Lazily, with the reservations: only callers who use keys pay for it, at most
        # once per PURGE_EVERY per process. Expired rows are never replayed meanwhile
        # (`rules.judge`), so how late the purge runs changes nothing but the table's size.
        clock = time.monotonic()
        if clock - self._last_purge < PURGE_EVERY.total_seconds():
            return
        self._last_purge = clock
        await _purge(session, now)

    async def _find(self, session: AsyncSession, scope: KeyScope) -> Stored | None:
        row = await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.organization_id == scope.organization_id,
                IdempotencyKey.principal == scope.principal,
                IdempotencyKey.key == scope.key,
            )
        )
        return _stored(row) if row is not None else None


async def _purge(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at <= now - RETENTION)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _stored(row: IdempotencyKey) -> Stored:
    return Stored(
        id=row.id,
        lock_id=row.lock_id,
        seen=Seen(
            fingerprint=row.fingerprint,
            state=row.state,
            created_at=row.created_at,
            locked_at=row.locked_at,
        ),
        method=row.method,
        path=row.path,
        response_status=row.response_status,
        response_headers=row.response_headers,
        response_body=row.response_body,
    )


# --- the fence: a request's write marks its key applied, in the same transaction ----------


@event.listens_for(Session, "before_commit")
def fence(session: Session) -> None:
    """Mark the request's key `applied` in the transaction being committed.

    Costs nothing without a key (one context variable read). The update names the
    reservation's `lock_id`: if a retry took the key over, no row matches and the commit is
    refused, so two requests can never both write under one key.
    """
    reservation = active_reservation.get()
    if reservation is None or reservation.applied or not reservation.open:
        return
    if session.info.get(_INTERNAL):
        return
    result: Any = session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == reservation.id,
            IdempotencyKey.lock_id == reservation.lock_id,
            IdempotencyKey.state.in_((IN_PROGRESS, APPLIED)),
        )
        .values(state=APPLIED)
    )
    if result.rowcount != 1:
        raise KeyTakenOverError()
    session.info[_MARKING] = reservation


@event.listens_for(Session, "after_commit")
def _applied(session: Session) -> None:
    reservation: Reservation | None = session.info.pop(_MARKING, None)
    if reservation is not None:
        reservation.applied = True


@event.listens_for(Session, "after_rollback")
def _not_applied(session: Session) -> None:
    session.info.pop(_MARKING, None)
