"""Request and response bodies of `/api/services`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter

from reliability_studio.api.fields import LongText, Name

_HTTP_URL = TypeAdapter(HttpUrl)
MAX_URL_LENGTH = 2048  # the column's size


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


RepositoryURL = Annotated[str, Field(max_length=MAX_URL_LENGTH), AfterValidator(_http_url)]


class ServiceCreate(BaseModel):
    """A new catalog entry, as in the seed: `name`, `team`, `repository_url`."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(examples=["payment-service"])
    team: Name | None = Field(default=None, examples=["payments-team"])
    repository_url: RepositoryURL | None = Field(
        default=None, examples=["https://github.com/org/payment-service"]
    )
    description: LongText | None = None


class ServiceUpdate(BaseModel):
    """Fields to change; those left out keep their value, `null` clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    team: Name | None = None
    repository_url: RepositoryURL | None = None
    description: LongText | None = None


class ServiceOut(BaseModel):
    """A catalog entry."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    team: str | None
    repository_url: str | None
    description: str | None
    created_at: datetime
    updated_at: datetime
