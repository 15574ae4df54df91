"""Response bodies of `/api/audit`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryOut(BaseModel):
    """One write: who made it, in which request, and what it changed."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    occurred_at: datetime = Field(description="When the transaction committed.")
    actor_kind: str = Field(
        description="user, service_account, integration or anonymous.", examples=["user"]
    )
    actor_id: str | None = Field(description="The user's or service account's id, if any.")
    actor_name: str = Field(examples=["alice"])
    token_id: str | None = Field(description="The API token the request was made with, if any.")
    request_id: str | None = Field(
        description="The request's `X-Request-ID`, as in the access log."
    )
    action: str = Field(examples=["incident.updated"])
    resource_type: str = Field(examples=["incident"])
    resource_id: str | None = Field(
        description="The row's id (ids of a link joined by `:`); null for bulk writes."
    )
    before: dict[str, Any] | None = Field(
        description="An update's changed fields as they were; a deleted row whole. "
        "Secrets read `[redacted]`."
    )
    after: dict[str, Any] | None = Field(
        description="An update's changed fields as they are now; a new row whole."
    )
