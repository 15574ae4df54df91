"""Request and response bodies of `/api/services`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    model_validator,
)

from reliability_studio.api.concurrency import ResourceVersion
from reliability_studio.api.fields import LongText, Name, NoNul
from reliability_studio.catalog.models import Service
from reliability_studio.catalog.telemetry import (
    EffectiveTelemetry,
    TelemetryBindings,
    effective_telemetry,
)

_HTTP_URL = TypeAdapter(HttpUrl)
MAX_URL_LENGTH = 2048  # the column's size
SERVICE_COLUMNS = (
    "id",
    "organization_id",
    "name",
    "team",
    "repository_url",
    "description",
    "telemetry",
    "created_at",
    "updated_at",
    "version",
)


def _http_url(value: str) -> str:
    try:
        url = str(_HTTP_URL.validate_python(value))
    except ValueError:
        raise ValueError("must be an http(s) URL, e.g. https://github.com/org/repo") from None
    # Normalising percent-encodes non-ASCII characters, which can make the URL much longer
    # than what was sent; the stored form must still fit the column (PostgreSQL enforces it).
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters once percent-encoded")
    return url


# NoNul first: the URL parser would silently drop a trailing NUL (or encode an inner one).
RepositoryURL = Annotated[str, Field(max_length=MAX_URL_LENGTH), NoNul, AfterValidator(_http_url)]


class ServiceCreate(BaseModel):
    """A new catalog entry, as in the seed: `name`, `team`, `repository_url`."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(examples=["payment-service"])
    team: Name | None = Field(default=None, examples=["payments-team"])
    repository_url: RepositoryURL | None = Field(
        default=None, examples=["https://github.com/org/payment-service"]
    )
    description: LongText | None = None
    telemetry: TelemetryBindings | None = Field(
        default=None,
        description="Where its metrics, logs, traces and workload are; "
        "anything left out is derived from the name.",
    )


class ServiceUpdate(BaseModel):
    """Fields to change; those left out keep their value, `null` clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    team: Name | None = None
    repository_url: RepositoryURL | None = None
    description: LongText | None = None
    telemetry: TelemetryBindings | None = Field(
        default=None, description="Replaces the bindings; null clears them (back to defaults)."
    )


class ServiceOut(BaseModel):
    """A catalog entry."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    team: str | None
    repository_url: str | None
    description: str | None
    telemetry: TelemetryBindings | None = Field(description="The bindings as set.")
    telemetry_effective: EffectiveTelemetry = Field(
        description="The bindings evidence gathering uses: as set, with defaults for the rest."
    )
    created_at: datetime
    updated_at: datetime
    version: ResourceVersion

    @model_validator(mode="before")
    @classmethod
    def _with_effective_telemetry(cls, value: Any) -> Any:
        """Derive `telemetry_effective` from a stored service (name and bindings)."""
        if isinstance(value, Service):
            fields = {name: getattr(value, name) for name in SERVICE_COLUMNS}
            fields["telemetry_effective"] = effective_telemetry(value.name, value.telemetry)
            return fields
        return value
