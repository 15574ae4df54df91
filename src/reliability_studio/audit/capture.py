"""Which writes become audit entries: SQLAlchemy session hooks, active in API requests.

A write is audited when it is made while a request's actor is bound (`current_actor`, set
for every API request by `identity.dependencies.bind_request_actor`). After each flush the
rows of the audited tables that the flush created, changed or deleted are noted, with the
values before and after; just before the commit they become `audit_entries` rows, inserted
in the same transaction, so that a write and its entry are committed, or rolled back,
together. Several flushes of one transaction that touch the same row make one entry.

Background jobs (SLO evaluation, alert correlation, evidence gathering, notification
delivery, the notification bootstrap) have no actor: their writes are the system's own and
are not audited. Writes that bypass the ORM (bulk Core inserts, e.g. alert ingestion)
report themselves with `record`. The audit rows are inserted with Core, not the ORM, so
that they are never audited themselves. Rows removed by the database's `ON DELETE CASCADE`
are covered by the entry of the row whose deletion removed them.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import os
import uuid
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from sqlalchemy import Column, Table, event, insert, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState, Mapper, Session, SessionTransaction

from reliability_studio.alerts.models import CorrelationRule
from reliability_studio.audit.models import (
    ACTION_LENGTH,
    ACTOR_KIND_LENGTH,
    NAME_LENGTH,
    REQUEST_ID_LENGTH,
    RESOURCE_TYPE_LENGTH,
    AuditEntry,
)
from reliability_studio.audit.redact import redact
from reliability_studio.catalog.models import Service
from reliability_studio.db.base import utcnow
from reliability_studio.identity.context import Actor, current_actor
from reliability_studio.identity.models import (
    ApiToken,
    BrowserSession,
    Membership,
    ServiceAccount,
    User,
)
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.notify.models import NotificationChannel, NotificationPolicy
from reliability_studio.organizations.models import Organization
from reliability_studio.slos.models import SLO
from reliability_studio.tasks.models import IncidentTask
from reliability_studio.timeline.models import TimelineEvent

_PENDING_KEY = "audit_pending"
_SAVEPOINTS_KEY = "audit_savepoints"

CREATED, UPDATED, DELETED = "created", "updated", "deleted"


# Move with every update: `occurred_at` of the entry says when, and the version (the ETag
# counter, `db.base.Versioned`) is no change a user made.
_BOOKKEEPING = frozenset({"updated_at", "version"})


@dataclass(frozen=True)
class Audited:
    """How the rows of one table are audited."""

    resource_type: str
    # Columns whose change alone is not worth an entry (and never shown in an update's diff).
    ignored: frozenset[str] = _BOOKKEEPING


# Every table that an API request writes through the ORM. Not here: the outbox, analysis
# runs, SLO snapshots and alerts, written as side effects or in bulk (see `record`).
AUDITED: dict[type, Audited] = {
    Service: Audited("service"),
    Incident: Audited("incident"),
    IncidentService: Audited("incident_service"),
    TimelineEvent: Audited("timeline_event"),
    IncidentTask: Audited("task"),
    SLO: Audited("slo"),
    CorrelationRule: Audited("correlation_rule"),
    NotificationChannel: Audited("notification_channel"),
    NotificationPolicy: Audited("notification_policy"),
    Organization: Audited("organization"),
    User: Audited("user"),
    Membership: Audited("membership"),
    ServiceAccount: Audited("service_account"),
    # Using a token or a session moves these on every request: that is no write to audit.
    ApiToken: Audited("api_token", _BOOKKEEPING | {"last_used_at"}),
    BrowserSession: Audited("browser_session", _BOOKKEEPING | {"last_seen_at"}),
}


@dataclass
class Change:
    """What one transaction did to one resource, before redaction."""

    action: str
    resource_type: str
    resource_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    op: str | None = None  # created / updated / deleted for ORM rows; None for `record`


Pending = dict[Hashable, Change]
_recorded = itertools.count()


def record(
    session: AsyncSession | Session,
    *,
    action: str,
    resource_type: str,
    resource_id: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Audit a write made without the ORM (a bulk insert), in its transaction.

    Does nothing outside an API request (no actor): such writes are the system's own.
    """
    if current_actor.get() is None:
        return
    pending: Pending = session.info.setdefault(_PENDING_KEY, {})
    pending[("recorded", next(_recorded))] = Change(
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        before=json_safe(before) if before is not None else None,
        after=json_safe(after) if after is not None else None,
    )


def record_created(
    session: AsyncSession | Session, model: type, rows: Iterable[Mapping[str, Any]]
) -> None:
    """Audit rows of an audited table inserted without the ORM (each row: every column, by
    column name), as the ORM's creations are. Does nothing outside an API request."""
    _record_core_write(session, model, rows, CREATED)


def record_deleted(
    session: AsyncSession | Session, model: type, rows: Iterable[Mapping[Any, Any]]
) -> None:
    """Audit rows of an audited table deleted without the ORM (a Core `DELETE ... RETURNING`
    of every column), as the ORM's deletions are. Does nothing outside an API request."""
    _record_core_write(session, model, rows, DELETED)


def _record_core_write(
    session: AsyncSession | Session, model: type, rows: Iterable[Mapping[Any, Any]], op: str
) -> None:
    if current_actor.get() is None:
        return
    audited = AUDITED[model]
    mapper: Mapper[Any] = inspect(model)
    key_columns = [column.name for column in mapper.primary_key]
    pending: Pending = session.info.setdefault(_PENDING_KEY, {})
    for row in rows:
        key_values = tuple(row[name] for name in key_columns)
        whole = json_safe(row)
        change = Change(
            action=f"{audited.resource_type}.{op}",
            resource_type=audited.resource_type,
            resource_id=":".join(str(value) for value in key_values),
            before=whole if op == DELETED else None,
            after=whole if op == CREATED else None,
            op=op,
        )
        _note(pending, (model, key_values), change)


# --- values --------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """`value` as JSON can hold it: ids and times as strings, tuples as lists (a copy)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


@dataclass(frozen=True)
class _Column:
    attribute: str
    name: str
    server_default: bool


@functools.cache
def _columns(mapper: Mapper[Any]) -> tuple[_Column, ...]:
    """The columns of a mapped class: attribute and column names, and whether the database
    fills it in by itself."""
    columns = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        server_default = isinstance(column, Column) and column.server_default is not None
        # str(): a name given explicitly is a `quoted_name`, which JSON encoders refuse as a key.
        columns.append(_Column(prop.key, str(column.name), server_default))
    return tuple(columns)


@functools.cache
def _primary_key(mapper: Mapper[Any]) -> tuple[str, ...]:
    return tuple(mapper.get_property_by_column(column).key for column in mapper.primary_key)


def _whole(state: InstanceState[Any], created: bool) -> dict[str, Any]:
    """Every column of a row, read from memory (a flush hook must not load).

    A new row's column that was never set and has no default was inserted as NULL; one
    with a server default is left out, its value unknown here.
    """
    values = state.dict
    whole = {}
    for column in _columns(state.mapper):
        if column.attribute in values:
            whole[column.name] = json_safe(values[column.attribute])
        elif created and not column.server_default:
            whole[column.name] = None
    return whole


def _diff(
    state: InstanceState[Any], ignored: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The changed columns of a row: their values before and after."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for column in _columns(state.mapper):
        if column.attribute in ignored:
            continue
        history = state.attrs[column.attribute].history
        if not history.has_changes():
            continue
        old = json_safe(history.deleted[0]) if history.deleted else None
        new = json_safe(history.added[0]) if history.added else None
        if old != new:
            before[column.name], after[column.name] = old, new
    return before, after


# --- merging the flushes of one transaction ---------------------------------------------------


def merge(earlier: Change, later: Change) -> Change | None:
    """One change for two of the same row in one transaction (None: nothing is left)."""
    if earlier.op == CREATED and later.op == UPDATED:
        after = {**(earlier.after or {}), **(later.after or {})}
        return Change(
            earlier.action, earlier.resource_type, earlier.resource_id, None, after, CREATED
        )
    if earlier.op == CREATED and later.op == DELETED:
        return None  # made and removed again: nothing was written
    if earlier.op == UPDATED and later.op == UPDATED:
        before = {**(later.before or {}), **(earlier.before or {})}
        after = {**(earlier.after or {}), **(later.after or {})}
        return _update(earlier, _without_unchanged(before, after))
    if earlier.op == UPDATED and later.op == DELETED:
        before = {**(later.before or {}), **(earlier.before or {})}  # as it was at the start
        return Change(later.action, later.resource_type, later.resource_id, before, None, DELETED)
    if earlier.op == DELETED and later.op == CREATED:  # the same key written again
        return _update(earlier, _without_unchanged(earlier.before or {}, later.after or {}))
    return later


def _without_unchanged(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    changed = [name for name in before.keys() | after.keys() if before.get(name) != after.get(name)]
    return {n: before.get(n) for n in changed}, {n: after.get(n) for n in changed}


def _update(change: Change, diff: tuple[dict[str, Any], dict[str, Any]]) -> Change | None:
    before, after = diff
    if not after and not before:
        return None
    action = f"{change.resource_type}.{UPDATED}"
    return Change(action, change.resource_type, change.resource_id, before, after, UPDATED)


def _note(pending: Pending, key: Hashable, change: Change) -> None:
    earlier = pending.pop(key, None)
    merged = change if earlier is None else merge(earlier, change)
    if merged is not None:
        pending[key] = merged


# --- the hooks -----------------------------------------------------------------------------


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    if current_actor.get() is None:
        return
    pending: Pending | None = None
    for objects, op in (
        (session.new, CREATED),
        (session.dirty, UPDATED),
        (session.deleted, DELETED),
    ):
        for obj in objects:
            audited = AUDITED.get(type(obj))
            if audited is None:
                continue
            change = _change(obj, op, audited)
            if change is None:
                continue
            if pending is None:
                pending = session.info.setdefault(_PENDING_KEY, {})
            _note(pending, change[0], change[1])


def _change(obj: object, op: str, audited: Audited) -> tuple[Hashable, Change] | None:
    state: InstanceState[Any] = inspect(obj)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    if op == CREATED:
        after = _whole(state, created=True)
    elif op == DELETED:
        before = _whole(state, created=False)
    else:
        before, after = _diff(state, audited.ignored)
        if not after and not before:
            return None
    key_values = tuple(state.dict.get(key) for key in _primary_key(state.mapper))
    resource_id = ":".join(str(value) for value in key_values)
    change = Change(
        action=f"{audited.resource_type}.{op}",
        resource_type=audited.resource_type,
        resource_id=resource_id,
        before=before,
        after=after,
        op=op,
    )
    return (type(obj), key_values), change


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    actor = current_actor.get()
    if actor is None:
        return
    session.flush()  # commit flushes after this hook; the last changes must be seen too
    pending: Pending | None = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return
    now = utcnow()
    changes = list(pending.values())
    ids = ordered_ids(now, len(changes))
    session.connection().execute(
        INSERT_ENTRIES,
        [_row(actor, change, now, entry_id) for change, entry_id in zip(changes, ids, strict=True)],
    )


# Built once and run on the connection: `session.execute(insert(AuditEntry), rows)` goes
# through the ORM's bulk insert, which was a quarter of the audit's cost on a timeline
# append (py-spy); the rows are plain column values and need none of it.
INSERT_ENTRIES = insert(cast(Table, AuditEntry.__table__))


def _row(actor: Actor, change: Change, now: datetime, entry_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": entry_id,
        "organization_id": actor.organization_id,
        "occurred_at": now,
        "actor_kind": actor.kind[:ACTOR_KIND_LENGTH],
        "actor_id": _cut(actor.id, NAME_LENGTH),
        "actor_name": actor.name[:NAME_LENGTH],
        "token_id": _cut(actor.token_id, NAME_LENGTH),
        "request_id": _cut(actor.request_id, REQUEST_ID_LENGTH),
        "action": change.action[:ACTION_LENGTH],
        "resource_type": change.resource_type[:RESOURCE_TYPE_LENGTH],
        "resource_id": _cut(change.resource_id, NAME_LENGTH),
        "before": redact(change.before) if change.before is not None else None,
        "after": redact(change.after) if change.after is not None else None,
    }


def _cut(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None else None


def ordered_ids(now: datetime, count: int) -> list[uuid.UUID]:
    """`count` ids that sort in the order given, after those of earlier milliseconds.

    The layout of a UUIDv7: the time in milliseconds, then (in the random bits) a counter
    and randomness. Entries of one commit share their time; their ids keep their order.
    """
    milliseconds = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    ids = []
    for counter in range(count):
        random = int.from_bytes(os.urandom(6), "big") >> 6  # 42 bits
        value = (
            (milliseconds << 80)
            | (0x7 << 76)
            | (((counter >> 20) & 0xFFF) << 64)
            | (0b10 << 62)
            | ((counter & 0xFFFFF) << 42)
            | random
        )
        ids.append(uuid.UUID(int=value))
    return ids


# A savepoint that rolls back takes its writes with it, so it takes their changes too.


@event.listens_for(Session, "after_transaction_create")
def _savepoint_started(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested and current_actor.get() is not None:
        pending = session.info.get(_PENDING_KEY)
        snapshot = copy.deepcopy(pending) if pending else None
        session.info.setdefault(_SAVEPOINTS_KEY, {})[id(transaction)] = snapshot


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.nested:
        snapshot = session.info.get(_SAVEPOINTS_KEY, {}).get(id(previous_transaction))
        if snapshot:
            session.info[_PENDING_KEY] = snapshot
        else:
            session.info.pop(_PENDING_KEY, None)
    elif previous_transaction.parent is None:
        _forget(session)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (entries written) or rolled back
        _forget(session)


def _forget(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_SAVEPOINTS_KEY, None)
