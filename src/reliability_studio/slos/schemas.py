"""Request and response bodies of `/api/slos`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from reliability_studio.api.fields import LongText, Name

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


class SLOCreate(BaseModel):
    """A new SLO, as in the seed."""

    model_config = ConfigDict(extra="forbid")

    service_id: uuid.UUID
    name: Name = Field(examples=["API Availability"])
    objective: Objective
    window_days: WindowDays = 30
    description: LongText | None = None
    error_budget_remaining: BudgetRemaining | None = None
    status: SLOStatus = "unknown"


class SLOUpdate(BaseModel):
    """Fields to change. Teams may feed `error_budget_remaining` and `status` from outside."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    objective: Objective | None = None
    window_days: WindowDays | None = None
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
    error_budget_remaining: float | None
    status: SLOStatus
    created_at: datetime
    updated_at: datetime
