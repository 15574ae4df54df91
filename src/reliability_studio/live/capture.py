"""Which committed changes become live events: SQLAlchemy session hooks.

Sessions of a sessionmaker set up with `install` collect the incidents, timeline events,
tasks, alerts and SLOs each flush writes. Just before commit the changes are turned into
events (the services of each incident looked up in the same transaction); once the commit
has succeeded they go to the process's outlet. A rolled-back transaction sends nothing.
Bulk writes that bypass the ORM report their changes with `record`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import bindparam, event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from reliability_studio.alerts.models import Alert
from reliability_studio.db.base import utcnow
from reliability_studio.db.engine import add_session_info
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.live.events import Change, short, to_events
from reliability_studio.slos.models import SLO
from reliability_studio.tasks.models import IncidentTask
from reliability_studio.timeline.models import TimelineEvent

OUTLET_KEY = "live_outlet"
_CHANGES_KEY = "live_changes"
_EVENTS_KEY = "live_events"
_KNOWN_SERVICES_KEY = "live_known_services"


class Outlet(Protocol):
    """Where a process sends the events of its commits. Must not block."""

    def send(self, events: list[dict[str, Any]]) -> None: ...


def install(sessionmaker: async_sessionmaker[AsyncSession], outlet: Outlet) -> None:
    """Make every session of `sessionmaker` send its committed changes to `outlet`."""
    add_session_info(sessionmaker, OUTLET_KEY, outlet)


def wants_changes(session: AsyncSession | Session) -> bool:
    """Whether `session` sends live events (so that building them is worth it)."""
    return OUTLET_KEY in session.info


def record(session: AsyncSession | Session, change: Change) -> None:
    """Report a change written without the ORM (a bulk insert); sent if the commit is."""
    if OUTLET_KEY in session.info:
        session.info.setdefault(_CHANGES_KEY, []).append(change)


def know_services(
    session: AsyncSession | Session, incident_id: uuid.UUID, service_ids: Iterable[uuid.UUID]
) -> None:
    """Tell the commit the incident's services as this transaction has written them, so that
    it need not look them up: a round trip, which under load is a turn of a busy event loop
    (milliseconds) for each write of an incident. Forgotten if a later flush links or
    unlinks a service of that incident."""
    if OUTLET_KEY in session.info:
        known = session.info.setdefault(_KNOWN_SERVICES_KEY, {})
        known[str(incident_id)] = sorted(str(service_id) for service_id in service_ids)


def _loaded(obj: object) -> dict[str, Any]:
    """The loaded attribute values of `obj`, read without ever touching the database."""
    values: dict[str, Any] = inspect(obj).dict
    return values


def _changed(obj: object, *names: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in names)


def _incident_part(
    kind: str, values: Mapping[str, Any], op: str, incident_key: str, *fields: str
) -> Change:
    """The change of a resource of one incident (the incident itself included), from its
    column values; `incident_key` names the column holding the incident's id."""
    data = {name: values.get(name) for name in fields}
    if "title" in data:
        data["title"] = short(data["title"])
    return Change(
        kind=kind,
        op=op,
        id=str(values["id"]),
        organization_id=str(values["organization_id"]),
        incident_id=str(values[incident_key]),
        data=data,
    )


def _keyed(obj: Any) -> dict[str, Any]:
    """The loaded values of `obj`, with its key and tenant read as attributes: a flush
    hook's object may have them expired."""
    return {**_loaded(obj), "id": obj.id, "organization_id": obj.organization_id}


def _incident(obj: Incident, op: str) -> Change:
    return incident_change(_keyed(obj), op)


def incident_change(values: Mapping[str, Any], op: str) -> Change:
    """The change of one incident, from its column values (also for incidents written
    without the ORM, see `record`)."""
    return _incident_part("incident", values, op, "id", "title", "status", "severity")


def _link(obj: IncidentService, _op: str) -> Change:
    # A service linked or unlinked changes the incident; its services are looked up later.
    return Change(
        kind="incident",
        op="updated",
        id=str(obj.incident_id),
        organization_id=str(obj.organization_id),
        incident_id=str(obj.incident_id),
    )


def _timeline_event(obj: TimelineEvent, op: str) -> Change:
    return timeline_event_change({**_keyed(obj), "incident_id": obj.incident_id}, op)


def timeline_event_change(values: Mapping[str, Any], op: str) -> Change:
    """The change of one timeline event, from its column values (also for events inserted
    without the ORM, see `record`)."""
    return _incident_part(
        "timeline_event", values, op, "incident_id", "type", "title", "source", "actor"
    )


def _task(obj: IncidentTask, op: str) -> Change:
    values = {**_keyed(obj), "incident_id": obj.incident_id}
    return _incident_part("task", values, op, "incident_id", "title", "status", "assignee")


def alert_change(
    *,
    op: str,
    alert_id: uuid.UUID,
    organization_id: uuid.UUID,
    incident_id: uuid.UUID | None,
    service_id: uuid.UUID | None,
    title: str | None,
    status: str | None,
    severity: str | None,
) -> Change:
    """The change of one alert (also for alerts inserted in bulk, see `record`)."""
    return Change(
        kind="alert",
        op=op,
        id=str(alert_id),
        organization_id=str(organization_id),
        incident_id=str(incident_id) if incident_id else None,
        service_ids=[str(service_id)] if service_id else [],
        data={"title": short(title), "status": status, "severity": severity},
    )


def _alert(obj: Alert, op: str) -> Change | None:
    if op == "updated" and not _changed(obj, "status", "severity", "incident_id"):
        return None  # a repeat of a firing alert is not news
    values = _loaded(obj)
    return alert_change(
        op=op,
        alert_id=obj.id,
        organization_id=obj.organization_id,
        incident_id=values.get("incident_id"),
        service_id=values.get("service_id"),
        title=values.get("title"),
        status=values.get("status"),
        severity=values.get("severity"),
    )


def _slo(obj: SLO, op: str) -> Change | None:
    if op == "updated" and not _changed(obj, "status", "stale", "error_budget_remaining"):
        return None  # evaluated again, and nothing a dashboard shows moved
    values = _loaded(obj)
    service_id = values.get("service_id")
    return Change(
        kind="slo",
        op=op,
        id=str(obj.id),
        organization_id=str(obj.organization_id),
        service_ids=[str(service_id)] if service_id else [],
        data={
            "name": values.get("name"),
            "status": values.get("status"),
            "stale": values.get("stale"),
            "error_budget_remaining": values.get("error_budget_remaining"),
        },
    )


_EXTRACTORS: dict[type, Callable[[Any, str], Change | None]] = {
    Incident: _incident,
    IncidentService: _link,
    TimelineEvent: _timeline_event,
    IncidentTask: _task,
    Alert: _alert,
    SLO: _slo,
}


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    if OUTLET_KEY not in session.info:
        return
    changes: list[Change] = session.info.setdefault(_CHANGES_KEY, [])
    for objects, op in (
        (session.new, "created"),
        (session.dirty, "updated"),
        (session.deleted, "deleted"),
    ):
        for obj in objects:
            extract = _EXTRACTORS.get(type(obj))
            if extract is None:
                continue
            if type(obj) is IncidentService:  # the services it was told are no longer all
                session.info.get(_KNOWN_SERVICES_KEY, {}).pop(str(obj.incident_id), None)
            if op == "updated" and not session.is_modified(obj, include_collections=False):
                continue
            change = extract(obj, op)
            if change is not None:
                changes.append(change)


@event.listens_for(Session, "before_commit")
def _prepare(session: Session) -> None:
    if OUTLET_KEY not in session.info:
        return
    session.flush()  # commit flushes after this hook; the last changes must be seen too
    changes: list[Change] | None = session.info.pop(_CHANGES_KEY, None)
    known: dict[str, list[str]] = session.info.pop(_KNOWN_SERVICES_KEY, {})
    if not changes:
        return
    _look_up_services(session, changes, known)
    session.info[_EVENTS_KEY] = to_events(changes, utcnow())


# Built once, run on the connection: it runs at every commit that changes an incident.
SERVICES_OF_INCIDENTS = select(IncidentService.incident_id, IncidentService.service_id).where(
    IncidentService.incident_id.in_(bindparam("incident_ids", expanding=True))
)


def _look_up_services(session: Session, changes: list[Change], known: dict[str, list[str]]) -> None:
    """Fill in the services of each change that belongs to an incident, as committed (or as
    `know_services` was told: `known`, which this fills in)."""
    services = known
    wanted = {
        c.incident_id
        for c in changes
        if c.service_ids is None and c.incident_id and c.incident_id not in services
    }
    if wanted:
        ids = [uuid.UUID(i) for i in wanted]
        rows = session.connection().execute(SERVICES_OF_INCIDENTS, {"incident_ids": ids})
        for incident_id, service_id in rows:
            services.setdefault(str(incident_id), []).append(str(service_id))
    for change in changes:
        if change.service_ids is None:
            change.service_ids = sorted(services.get(change.incident_id or "", []))


@event.listens_for(Session, "after_commit")
def _send(session: Session) -> None:
    events = session.info.pop(_EVENTS_KEY, None)
    if events:
        session.info[OUTLET_KEY].send(events)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_CHANGES_KEY, None)
    session.info.pop(_EVENTS_KEY, None)
    session.info.pop(_KNOWN_SERVICES_KEY, None)
