"""The read paths of incidents (one, and lists), answered straight from rows to JSON.

These are the requests a dashboard repeats every few seconds, so they skip what a write
needs: no ORM objects (identity map, instance state), no pydantic models validated and then
serialised again. Columns are selected with SQLAlchemy Core, and each incident becomes a
dict in the exact shape of `IncidentOut` (same fields, same JSON values), encoded once
by orjson. The profile that led here: for a page of 50 incidents, building ORM objects and
`IncidentOut` models took three quarters of the server's CPU per request.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.pagination import PageRequest, fetch_keyset_page, keyset
from reliability_studio.api.problems import NotFoundError
from reliability_studio.api.queries import contains_text
from reliability_studio.catalog.models import Service
from reliability_studio.db.core import execute_core
from reliability_studio.incidents.lifecycle import seconds_between
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.incidents.schemas import IncidentOut

# Fields of IncidentOut that are columns, in the schema's order; the others are made here.
DERIVED = ("service_ids", "services", "time_to_acknowledge_seconds", "time_to_resolve_seconds")
COLUMN_FIELDS = tuple(field for field in IncidentOut.model_fields if field not in DERIVED)
COLUMNS = tuple(Incident.__table__.c[field] for field in COLUMN_FIELDS)
_CREATED_AT = COLUMN_FIELDS.index("created_at")
_ACKNOWLEDGED_AT = COLUMN_FIELDS.index("acknowledged_at")
_RESOLVED_AT = COLUMN_FIELDS.index("resolved_at")


def incident_columns() -> Select[Any]:
    """`SELECT <the columns IncidentOut shows> FROM incidents`, to be filtered by the caller."""
    return select(*COLUMNS)


def incident_dict(row: Sequence[Any], services: Sequence[tuple[uuid.UUID, str]]) -> dict[str, Any]:
    """One incident with the fields of `IncidentOut`, from its row (of `incident_columns()`)
    and its (id, name) services. Positional, built with no per-field lookups: it runs 50
    times per page, and was the page's largest Python cost."""
    out = dict(zip(COLUMN_FIELDS, row, strict=True))
    created_at = row[_CREATED_AT]
    out["service_ids"] = [service_id for service_id, _ in services]
    out["services"] = [{"id": service_id, "name": name} for service_id, name in services]
    out["time_to_acknowledge_seconds"] = seconds_between(created_at, row[_ACKNOWLEDGED_AT])
    out["time_to_resolve_seconds"] = seconds_between(created_at, row[_RESOLVED_AT])
    return out


# Built once: a statement made per request costs more Python than running it does.
SERVICES_OF = (
    select(IncidentService.incident_id, Service.id, Service.name)
    .join(Service, Service.id == IncidentService.service_id)
    .where(IncidentService.incident_id.in_(bindparam("incident_ids", expanding=True)))
    .order_by(Service.name)
)
# One incident and its services in one statement: a row per service (or one row with
# no service), the incident's columns repeated.
ONE_INCIDENT = (
    select(*COLUMNS, Service.id.label("service_id"), Service.name.label("service_name"))
    .outerjoin(IncidentService, IncidentService.incident_id == Incident.id)
    .outerjoin(Service, Service.id == IncidentService.service_id)
    .where(
        Incident.id == bindparam("incident_id"),
        Incident.organization_id == bindparam("organization_id"),
    )
    .order_by(Service.name)
)
_SERVICE_ID = len(COLUMNS)


async def services_of(
    session: AsyncSession, incident_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[uuid.UUID, str]]]:
    """The (id, name) services of each incident, by name: one query for the whole page."""
    if not incident_ids:
        return {}
    rows = await execute_core(session, SERVICES_OF, {"incident_ids": list(incident_ids)})
    linked: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = defaultdict(list)
    for incident_id, service_id, name in rows:
        linked[incident_id].append((service_id, name))
    return linked


async def incident_document(
    session: AsyncSession, organization_id: uuid.UUID, incident_id: uuid.UUID
) -> dict[str, Any]:
    """One incident as `IncidentOut` would show it, or 404."""
    found = await execute_core(
        session, ONE_INCIDENT, {"incident_id": incident_id, "organization_id": organization_id}
    )
    rows = found.all()
    if not rows:
        raise NotFoundError(f"incident {incident_id} does not exist")
    services = [
        (row[_SERVICE_ID], row[_SERVICE_ID + 1]) for row in rows if row[_SERVICE_ID] is not None
    ]
    return incident_dict(rows[0][:_SERVICE_ID], services)


# The list's filters, each a condition on a parameter of the same name. A list statement
# is built once per set of filters a request uses (and whether it has a cursor), and kept:
# building it per request cost a tenth of the request.
LIST_FILTERS: dict[str, Callable[[], ColumnElement[bool]]] = {
    "statuses": lambda: Incident.status.in_(bindparam("statuses", expanding=True)),
    "severities": lambda: Incident.severity.in_(bindparam("severities", expanding=True)),
    "service_id": lambda: exists().where(
        IncidentService.incident_id == Incident.id,
        IncidentService.service_id == bindparam("service_id"),
    ),
    "created_after": lambda: Incident.created_at >= bindparam("created_after"),
    "created_before": lambda: Incident.created_at < bindparam("created_before"),
    "pattern": lambda: contains_text(
        bindparam("pattern"), Incident.title, Incident.description, Incident.root_cause
    ),
}


@functools.cache
def list_statement(filters: frozenset[str], after_cursor: bool) -> Select[Any]:
    """The statement of a list page of the organization's incidents (parameter
    `organization_id`), newest first, with the `filters` named (keys of `LIST_FILTERS`)."""
    query = incident_columns().where(Incident.organization_id == bindparam("organization_id"))
    for name, condition in LIST_FILTERS.items():
        if name in filters:
            query = query.where(condition())
    return keyset(
        query, sort=Incident.created_at, row_id=Incident.id, descending=True, after=after_cursor
    )


async def incident_page(
    session: AsyncSession, organization_id: uuid.UUID, page: PageRequest, filters: dict[str, Any]
) -> dict[str, Any]:
    """One page of the organization's incidents matching `filters` (values by the names of
    `LIST_FILTERS`), newest first, as a list body."""
    statement = list_statement(frozenset(filters), page.after is not None)
    rows, next_cursor = await fetch_keyset_page(
        session,
        statement,
        page,
        sort=Incident.created_at,
        row_id=Incident.id,
        parameters={**filters, "organization_id": organization_id},
    )
    services = await services_of(session, [row.id for row in rows])
    return {
        "items": [incident_dict(row, services.get(row.id, [])) for row in rows],
        "next_cursor": next_cursor,
    }
