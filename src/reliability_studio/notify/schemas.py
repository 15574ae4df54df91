"""Request and response bodies of `/api/notification-channels` and
`/api/notification-policies`.

Secrets (webhook URLs, tokens, routing keys, signing secrets, passwords) are write-only:
they are accepted on create and update and never returned. A response says only whether
each is set, and the last four characters, so that a human can tell two apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
)

from reliability_studio.api.concurrency import ResourceVersion
from reliability_studio.api.fields import Name, NoNul
from reliability_studio.incidents.lifecycle import Severity
from reliability_studio.notify.delivery import EventType

_HTTP_URL = TypeAdapter(HttpUrl)


def _http_url(value: str) -> str:
    try:
        return str(_HTTP_URL.validate_python(value))
    except ValueError:
        raise ValueError("must be an http(s) URL") from None


Url = Annotated[str, StringConstraints(max_length=2048), NoNul, AfterValidator(_http_url)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=1000), NoNul]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500), NoNul]
# An address as SMTP takes it (the server has the last word on whether it exists).
Address = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s<>]+@[^@\s<>]+$"),
    NoNul,  # the pattern lets NUL through, and PostgreSQL cannot store it
]


class SlackWebhookConfig(BaseModel):
    """A Slack incoming webhook. Its URL is a secret (it embeds one)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["slack_webhook"]
    webhook_url: Annotated[Url, Field(description="Secret; never shown back.")]


class SlackConfig(BaseModel):
    """A Slack bot token and channel: follow-ups thread under the first message."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["slack"]
    token: Annotated[Secret, Field(description="xoxb-... bot token. Secret.")]
    channel: Text
    api_base: Url = "https://slack.com/api"


class PagerDutyConfig(BaseModel):
    """PagerDuty Events API v2."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["pagerduty"]
    routing_key: Annotated[Secret, Field(description="Integration key. Secret.")]
    api_base: Url = "https://events.pagerduty.com"


class WebhookConfig(BaseModel):
    """A signed outbound webhook (Standard Webhooks)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["webhook"]
    url: Url
    secret: Annotated[Secret | None, Field(description="Signing secret. Secret.")] = None


class EmailConfig(BaseModel):
    """Email over SMTP."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["email"]
    host: Text
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    sender: Address
    recipients: Annotated[list[Address], Field(min_length=1, max_length=100)]
    username: Text | None = None
    password: Annotated[Secret | None, Field(description="Secret.")] = None
    use_tls: bool = False
    start_tls: bool | None = None


ChannelConfig = Annotated[
    SlackWebhookConfig | SlackConfig | PagerDutyConfig | WebhookConfig | EmailConfig,
    Field(discriminator="kind"),
]
SECRET_FIELDS = ("webhook_url", "token", "routing_key", "secret", "password")


class ChannelCreate(BaseModel):
    """A new channel."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    enabled: bool = True
    config: ChannelConfig


class ChannelUpdate(BaseModel):
    """Fields to change. A new `config` replaces the old one whole (secrets included)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    enabled: bool | None = None
    config: ChannelConfig | None = None


class ChannelOut(BaseModel):
    """A channel, its secrets masked."""

    id: uuid.UUID
    name: str
    kind: str
    enabled: bool
    config: dict[str, Any] = Field(
        description="The settings; each secret as {set: true, last4: ...} only."
    )
    created_at: datetime
    updated_at: datetime
    version: ResourceVersion


def masked(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every secret replaced by whether it is set and its last 4 characters."""
    shown: dict[str, Any] = {}
    for key, value in config.items():
        if key in SECRET_FIELDS:
            shown[key] = {"set": bool(value), "last4": str(value)[-4:] if value else None}
        else:
            shown[key] = value
    return shown


class PolicyCreate(BaseModel):
    """A new policy: these events, filtered, to these channels."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    enabled: bool = True
    events: Annotated[list[EventType], Field(min_length=1, max_length=20)]
    min_severity: Severity | None = None
    services: Annotated[list[Name], Field(max_length=100)] = Field(default_factory=list)
    teams: Annotated[list[Name], Field(max_length=100)] = Field(default_factory=list)
    channel_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50)]


class PolicyUpdate(BaseModel):
    """Fields to change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    enabled: bool | None = None
    events: Annotated[list[EventType], Field(min_length=1, max_length=20)] | None = None
    min_severity: Severity | None = None
    services: Annotated[list[Name], Field(max_length=100)] | None = None
    teams: Annotated[list[Name], Field(max_length=100)] | None = None
    channel_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50)] | None = None


class PolicyOut(BaseModel):
    """A policy."""

    id: uuid.UUID
    name: str
    enabled: bool
    events: list[EventType]
    min_severity: Severity | None
    services: list[str]
    teams: list[str]
    channel_ids: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime
    version: ResourceVersion


class NotificationOut(BaseModel):
    """One delivery: what, where, and how it went."""

    id: uuid.UUID
    channel_id: uuid.UUID
    channel_name: str
    event: EventType
    incident_id: uuid.UUID | None
    status: Literal["pending", "delivering", "delivered", "dead"]
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    latency_ms: float | None = Field(description="From the change to its delivery.")
