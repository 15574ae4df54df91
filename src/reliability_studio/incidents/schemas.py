"""Request and response bodies of `/api/incidents`."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from reliability_studio.api.concurrency import ResourceVersion
from reliability_studio.api.fields import LongText, Person, Title
from reliability_studio.incidents.lifecycle import Severity, Status

MAX_SERVICES_PER_INCIDENT = 100


class IncidentCreate(BaseModel):
    """A new incident, as in the seed. It starts `open`."""

    model_config = ConfigDict(extra="forbid")

    title: Title = Field(examples=["Payment Service Down"])
    description: LongText | None = Field(default=None, examples=["500 errors on /api/payments"])
    severity: Severity = "medium"
    service_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_SERVICES_PER_INCIDENT)
    root_cause: LongText | None = None
    commander: Person | None = Field(default=None, description="Who leads the response.")


class IncidentUpdate(BaseModel):
    """Fields to change. Status changes follow the lifecycle rules (see README)."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: LongText | None = None
    severity: Severity | None = None
    status: Status | None = None
    root_cause: LongText | None = None
    commander: Person | None = None
    service_ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=MAX_SERVICES_PER_INCIDENT,
        description="Replaces the set of linked services.",
    )


class ServiceRef(BaseModel):
    """A linked service, by id and name."""

    id: uuid.UUID
    name: str


class IncidentOut(BaseModel):
    """An incident with its linked services and lifecycle figures."""

    id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    description: str | None
    severity: Severity
    status: Status
    root_cause: str | None
    commander: str | None
    service_ids: list[uuid.UUID]
    services: list[ServiceRef]
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    time_to_acknowledge_seconds: float | None = Field(
        description="From creation to the first status after `open`."
    )
    time_to_resolve_seconds: float | None = Field(description="From creation to `resolved`.")
    version: ResourceVersion
