"""Request and response bodies of `/api/incidents/{id}/timeline`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from reliability_studio.api.fields import JSONObject, LongText, Source, Timestamp, Title

EventType = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_.]{0,63}$")
]


class TimelineEventCreate(BaseModel):
    """A new timeline event, as in the seed."""

    model_config = ConfigDict(extra="forbid")

    type: EventType = Field(
        examples=["metric_anomaly"],
        description="Lower-case word(s) joined by `_` or `.`, e.g. `metric_anomaly`, `note`.",
    )
    source: Source = Field(default="manual", examples=["prometheus"])
    title: Title = Field(examples=["Error rate spike detected"])
    description: LongText | None = Field(default=None, examples=["Error rate increased to 15%"])
    occurred_at: Timestamp | None = Field(default=None, description="Defaults to now.")
    metadata: JSONObject | None = Field(default=None, description="Free-form JSON object.")


class TimelineEventOut(BaseModel):
    """An event on an incident's timeline."""

    id: uuid.UUID
    incident_id: uuid.UUID
    type: str
    source: str
    title: str
    description: str | None
    occurred_at: datetime
    metadata: dict[str, Any] | None
    actor: str | None
    created_at: datetime
