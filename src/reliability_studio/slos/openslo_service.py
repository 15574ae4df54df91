"""Import and export OpenSLO v1 documents (see the openslo package for what is supported).

An import is all-or-nothing: every document is checked first, and then every service and
SLO is written in one transaction. An SLO is identified by its service and name: importing
it again updates it instead of adding a second one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reliability_studio.api.problems import (
    BadRequestError,
    ConflictError,
    FieldError,
    NotFoundError,
    ProblemError,
    UnprocessableError,
)
from reliability_studio.catalog.models import Service
from reliability_studio.db.base import utcnow
from reliability_studio.slos.models import SLO
from reliability_studio.slos.openslo import (
    ConversionError,
    Export,
    OpenSLOSyntaxError,
    ServiceDefinition,
    ServiceRecord,
    SLODefinition,
    SLORecord,
    build_export,
    parse_documents,
    to_definitions,
)
from reliability_studio.slos.schemas import SLOCreate

Action = Literal["created", "updated", "unchanged"]
# Fewer bound parameters per IN (...) than SQLite and asyncpg allow.
_IN_CHUNK = 500
# The fields an import sets; the others (status, figures) belong to the engine.
_DEFINITION_FIELDS = ("objective", "calendar_period", "timezone", "sli", "description")

T = TypeVar("T")


class MalformedYAMLError(BadRequestError):
    """The upload is not YAML (400)."""

    title = "Malformed YAML"


class OpenSLORefusedError(UnprocessableError):
    """Documents that cannot be honoured (422), every one listed in `errors`."""

    def __init__(self, errors: Sequence[ConversionError]) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        ProblemError.__init__(
            self,
            f"Nothing was imported: {first}{more}",
            errors=[
                FieldError(field=error.field, location="body", message=str(error))
                for error in errors
            ],
        )
        self.conversion_errors = list(errors)


class ImportedService(BaseModel):
    """A catalog service the upload names."""

    id: uuid.UUID | None = Field(description="Null in a dry run for a service to be created.")
    name: str
    action: Action


class ImportedSLO(BaseModel):
    """An SLO of the upload."""

    id: uuid.UUID | None = Field(description="Null in a dry run for an SLO to be created.")
    name: str
    service_id: uuid.UUID | None
    service_name: str
    action: Action


class IgnoredDocumentOut(BaseModel):
    """A document accepted but not stored."""

    document: int = Field(description="Its position in the upload, from 0.")
    kind: str
    name: str
    reason: str


class ImportResult(BaseModel):
    """What an import did, or (`dry_run`) would do."""

    dry_run: bool
    services: list[ImportedService]
    slos: list[ImportedSLO]
    ignored: list[IgnoredDocumentOut]

    @property
    def created_anything(self) -> bool:
        """Whether a service or an SLO was created."""
        return any(item.action == "created" for item in self.services) or any(
            item.action == "created" for item in self.slos
        )


async def import_openslo(
    session: AsyncSession, organization_id: uuid.UUID, yaml_text: str, *, dry_run: bool = False
) -> ImportResult:
    """Create or update the upload's services and SLOs, all or none.

    400 (`MalformedYAMLError`) when it is not YAML; 422 (`OpenSLORefusedError`) listing
    every document and field that cannot be honoured; 409 if a concurrent change took a
    name meanwhile. Changed SLOs are scheduled for evaluation now.
    """
    try:
        documents = parse_documents(yaml_text)
    except OpenSLOSyntaxError as exc:
        raise MalformedYAMLError(str(exc)) from None
    plan = to_definitions(documents)
    if plan.errors:
        raise OpenSLORefusedError(plan.errors)

    now = utcnow()
    existing_services = {
        service.name: service
        for chunk in _chunks([service.name for service in plan.services])
        for service in await session.scalars(
            select(Service).where(
                Service.organization_id == organization_id, Service.name.in_(chunk)
            )
        )
    }
    services: dict[str, Service] = {}
    service_results = [
        _import_service(
            session, organization_id, definition, existing_services, services, now, dry_run
        )
        for definition in plan.services
    ]
    known_ids = [service.id for service in existing_services.values()]
    existing_slos = {
        (slo.service_id, slo.name): slo
        for chunk in _chunks(known_ids)
        for slo in await session.scalars(
            select(SLO).where(SLO.organization_id == organization_id, SLO.service_id.in_(chunk))
        )
    }
    slo_results = [
        _import_slo(session, organization_id, definition, services, existing_slos, now, dry_run)
        for definition in plan.slos
    ]

    result = ImportResult(
        dry_run=dry_run,
        services=service_results,
        slos=slo_results,
        ignored=[
            IgnoredDocumentOut(
                document=item.document, kind=item.kind, name=item.name, reason=item.reason
            )
            for item in plan.ignored
        ],
    )
    if dry_run:
        await session.rollback()
        return result
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(
            "a service or SLO of this upload was created by someone else meanwhile; "
            "nothing was imported, try again"
        ) from None
    return result


def _import_service(
    session: AsyncSession,
    organization_id: uuid.UUID,
    definition: ServiceDefinition,
    existing: dict[str, Service],
    services: dict[str, Service],
    now: datetime,
    dry_run: bool,
) -> ImportedService:
    """Create the service, or update the description the document gives."""
    found = existing.get(definition.name)
    action: Action
    if found is None:
        action = "created"
        service = Service(
            id=uuid.uuid4(),
            organization_id=organization_id,
            name=definition.name,
            description=definition.description,
            created_at=now,
            updated_at=now,
        )
        if not dry_run:
            session.add(service)
    else:
        service = found
        changed = definition.description is not None and definition.description != found.description
        action = "updated" if changed else "unchanged"
        if changed and not dry_run:
            found.description = definition.description
            found.updated_at = now
    services[definition.name] = service
    return ImportedService(
        id=None if dry_run and action == "created" else service.id,
        name=definition.name,
        action=action,
    )


def _import_slo(
    session: AsyncSession,
    organization_id: uuid.UUID,
    definition: SLODefinition,
    services: dict[str, Service],
    existing: dict[tuple[uuid.UUID, str], SLO],
    now: datetime,
    dry_run: bool,
) -> ImportedSLO:
    """Create the SLO, or update the one of the same service and name; due for evaluation."""
    service = services[definition.service]
    values = _slo_values(definition, service.id)
    found = existing.get((service.id, definition.name))
    action: Action
    if found is None:
        action = "created"
        slo = SLO(
            id=uuid.uuid4(),
            organization_id=organization_id,
            created_at=now,
            updated_at=now,
            next_evaluation_at=now,
            **values,
        )
        if not dry_run:
            session.add(slo)
    else:
        slo = found
        changes = _changes(found, values)
        action = "updated" if changes else "unchanged"
        if changes and not dry_run:
            for name, value in changes.items():
                setattr(found, name, value)
            found.updated_at = now
            found.next_evaluation_at = now  # the definition changed: measure it again now
    # In a dry run, ids of rows to be created are not real: they are left out.
    return ImportedSLO(
        id=None if dry_run and action == "created" else slo.id,
        name=definition.name,
        service_id=None if dry_run and inspect(service).transient else service.id,
        service_name=definition.service,
        action=action,
    )


def _slo_values(definition: SLODefinition, service_id: uuid.UUID) -> dict[str, Any]:
    """The columns of the SLO, validated and shaped exactly as `POST /api/slos` stores them."""
    data = SLOCreate.model_validate(
        {
            "service_id": service_id,
            "name": definition.name,
            "objective": definition.objective,
            "window_days": definition.window_days,
            "calendar_period": definition.calendar_period,
            "timezone": definition.timezone,
            "sli": definition.sli,
            "description": definition.description,
        }
    )
    values: dict[str, Any] = data.model_dump(exclude={"error_budget_remaining", "status"})
    return values


def _changes(slo: SLO, values: dict[str, Any]) -> dict[str, Any]:
    """The definition fields that differ. A calendar SLO keeps its nominal window_days."""
    changes = {
        name: values[name]
        for name in _DEFINITION_FIELDS
        if _comparable(name, getattr(slo, name)) != _comparable(name, values[name])
    }
    if values["calendar_period"] is None and slo.window_days != values["window_days"]:
        changes["window_days"] = values["window_days"]
    return changes


def _comparable(name: str, value: Any) -> Any:
    """SLIs stored with or without their null fields compare equal."""
    if name == "sli" and isinstance(value, dict):
        return {key: item for key, item in value.items() if item is not None}
    return value


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


async def export_openslo(
    session: AsyncSession, organization_id: uuid.UUID, service_id: uuid.UUID | None = None
) -> str:
    """Every SLO (or one service's) as OpenSLO v1 YAML; 404 for an unknown service."""
    return (await export_openslo_report(session, organization_id, service_id)).text


async def export_openslo_report(
    session: AsyncSession, organization_id: uuid.UUID, service_id: uuid.UUID | None = None
) -> Export:
    """The export, with the count of SLOs written and those OpenSLO cannot express."""
    services: list[ServiceRecord] = []
    query = (
        select(SLO, Service)
        .join(Service, SLO.service_id == Service.id)
        .where(SLO.organization_id == organization_id)
    )
    if service_id is not None:
        service = await session.scalar(
            select(Service).where(
                Service.id == service_id, Service.organization_id == organization_id
            )
        )
        if service is None:
            raise NotFoundError(f"service {service_id} does not exist")
        services.append(ServiceRecord(service.name, service.description))
        query = query.where(SLO.service_id == service_id)
    rows = (await session.execute(query)).all()
    records = [
        SLORecord(
            service=ServiceRecord(service.name, service.description),
            name=slo.name,
            objective=slo.objective,
            window_days=slo.window_days,
            calendar_period=slo.calendar_period,
            timezone=slo.timezone,
            sli=slo.sli,
            description=slo.description,
        )
        for slo, service in rows
    ]
    return build_export(records, services)
