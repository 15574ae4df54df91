"""Request and response bodies of `/api/slos`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from reliability_studio.api.concurrency import ResourceVersion
from reliability_studio.api.fields import LongText, Name, NoNul
from reliability_studio.slos.sli import SLI

SLOStatus = Literal["healthy", "at_risk", "breached", "no_data", "unknown"]
Objective = Annotated[
    float, Field(gt=0, lt=100, description="Target, in percent, e.g. 99.9.", examples=[99.9])
]
WindowDays = Annotated[int, Field(ge=1, le=365, description="Rolling window, in days.")]
BudgetRemaining = Annotated[
    float,
    Field(
        ge=-1_000_000,
        le=100,
        allow_inf_nan=False,
        description="Percent of the error budget left; negative once overspent.",
    ),
]


CalendarPeriod = Literal["month", "quarter"]


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Paris"
        ) from None
    return value


TimeZone = Annotated[
    str, Field(min_length=1, max_length=64), NoNul, AfterValidator(_known_timezone)
]
SLI_DESCRIPTION = (
    "How to compute the SLI from Prometheus; without it the SLO is manual and its budget "
    "and status are set with PATCH."
)


class SLOCreate(BaseModel):
    """A new SLO, as in the seed."""

    model_config = ConfigDict(extra="forbid")

    service_id: uuid.UUID
    name: Name = Field(examples=["API Availability"])
    objective: Objective
    window_days: WindowDays = 30
    calendar_period: CalendarPeriod | None = Field(
        default=None,
        description="A calendar window (this month or quarter) instead of a rolling one.",
    )
    timezone: TimeZone = Field(default="UTC", description="Where calendar periods begin.")
    sli: SLI | None = Field(default=None, description=SLI_DESCRIPTION)
    description: LongText | None = None
    error_budget_remaining: BudgetRemaining | None = None
    status: SLOStatus = "unknown"


class SLOUpdate(BaseModel):
    """Fields to change. Teams may feed `error_budget_remaining` and `status` from outside."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    objective: Objective | None = None
    window_days: WindowDays | None = None
    calendar_period: CalendarPeriod | None = None
    timezone: TimeZone | None = None
    sli: SLI | None = Field(default=None, description=SLI_DESCRIPTION + " `null` makes it manual.")
    description: LongText | None = None
    error_budget_remaining: BudgetRemaining | None = None
    status: SLOStatus | None = None


class SLOOut(BaseModel):
    """A service level objective."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    service_id: uuid.UUID
    name: str
    description: str | None
    objective: float
    window_days: int
    calendar_period: CalendarPeriod | None
    timezone: str
    sli: dict[str, Any] | None
    error_budget_remaining: float | None
    status: SLOStatus
    sli_value: float | None = Field(description="Good events over the window, in percent.")
    budget_consumed: float | None = Field(description="Percent of the error budget spent.")
    burn_rates: dict[str, float | None] | None = Field(
        description="Burn rate per window (5m, 30m, 1h, 2h, 6h, 1d, 3d); 1 = exactly on budget."
    )
    time_to_exhaustion_seconds: float | None = Field(
        description="How long the budget lasts at the 1h burn rate; null when nothing burns."
    )
    good_events: float | None
    total_events: float | None
    evaluated_at: datetime | None
    stale: bool = Field(description="True while Prometheus cannot be reached: figures are old.")
    evaluation_error: str | None
    created_at: datetime
    updated_at: datetime
    version: ResourceVersion


class SLOSnapshotOut(BaseModel):
    """One stored evaluation, for history charts."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slo_id: uuid.UUID
    evaluated_at: datetime
    status: SLOStatus
    sli_value: float | None
    error_budget_remaining: float | None
    budget_consumed: float | None
    burn_rates: dict[str, float | None] | None
    good_events: float | None
    total_events: float | None


class SLOAlertOut(BaseModel):
    """A multi-window burn-rate alert; `resolved_at` is null while it is active."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slo_id: uuid.UUID
    severity: Literal["page", "ticket"]
    rule: str = Field(description="Which windows fired, e.g. page_1h_5m.")
    factor: float = Field(description="The burn rate both windows exceeded.")
    started_at: datetime
    resolved_at: datetime | None
    burn_rates: dict[str, float | None] | None = Field(description="Burn rates when it fired.")
    incident_id: uuid.UUID | None
