"""Request and response bodies of `/api/correlation-rules`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from reliability_studio.alerts.matchers import MatcherSyntaxError, parse_matcher
from reliability_studio.api.concurrency import ResourceVersion
from reliability_studio.api.fields import LongText, Name, NoNul
from reliability_studio.incidents.lifecycle import Severity

RuleAction = Literal["open_incident", "record_only"]
ResolvePolicy = Literal["monitoring", "resolved", "manual"]
DAY = 86400


def _valid_matcher(text: str) -> str:
    try:
        return str(parse_matcher(text))
    except MatcherSyntaxError as error:
        raise ValueError(str(error)) from None


# NoNul: the matcher syntax takes NUL inside a quoted value, and PostgreSQL cannot store it.
MatcherText = Annotated[
    str, StringConstraints(max_length=1000), NoNul, AfterValidator(_valid_matcher)
]
LabelName = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=200), NoNul
]
SeverityMap = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64), NoNul], Severity],
    Field(max_length=50),
]
Matchers = Annotated[list[MatcherText], Field(max_length=20)]
GroupBy = Annotated[list[LabelName], Field(min_length=1, max_length=10)]
WindowSeconds = Annotated[int, Field(ge=1, le=30 * DAY)]
MaxAgeSeconds = Annotated[int, Field(ge=1, le=365 * DAY)]
Threshold = Annotated[int, Field(ge=1, le=100_000)]
Position = Annotated[int, Field(ge=0, le=1_000_000)]


class CorrelationRuleCreate(BaseModel):
    """A new correlation rule; every field but `name` has the default rule's value."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: LongText | None = None
    enabled: bool = True
    position: Position = 100
    matchers: Matchers = Field(default_factory=list, examples=[['severity=~"page|critical"']])
    action: RuleAction = "open_incident"
    group_by: GroupBy = Field(default_factory=lambda: ["service", "alertname"])
    window_seconds: WindowSeconds = 3600
    max_incident_age_seconds: MaxAgeSeconds = DAY
    threshold: Threshold = 1
    severity_label: LabelName = "severity"
    severity_map: SeverityMap = Field(default_factory=lambda: dict(DEFAULT_SEVERITY_MAP))
    default_severity: Severity = "medium"
    resolve_policy: ResolvePolicy = "monitoring"


class CorrelationRuleUpdate(BaseModel):
    """Fields to change; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: LongText | None = None
    enabled: bool | None = None
    position: Position | None = None
    matchers: Matchers | None = None
    action: RuleAction | None = None
    group_by: GroupBy | None = None
    window_seconds: WindowSeconds | None = None
    max_incident_age_seconds: MaxAgeSeconds | None = None
    threshold: Threshold | None = None
    severity_label: LabelName | None = None
    severity_map: SeverityMap | None = None
    default_severity: Severity | None = None
    resolve_policy: ResolvePolicy | None = None


class CorrelationRuleOut(BaseModel):
    """A correlation rule."""

    id: uuid.UUID
    name: str
    description: str | None
    enabled: bool
    position: int
    matchers: list[str]
    action: RuleAction
    group_by: list[str]
    window_seconds: int
    max_incident_age_seconds: int
    threshold: int
    severity_label: str
    severity_map: dict[str, Severity]
    default_severity: Severity
    resolve_policy: ResolvePolicy
    created_at: datetime
    updated_at: datetime
    version: ResourceVersion


# Common severity label values (Prometheus, Grafana, PagerDuty, Opsgenie) to our four.
DEFAULT_SEVERITY_MAP: dict[str, Severity] = {
    "page": "critical",
    "critical": "critical",
    "p1": "critical",
    "emergency": "critical",
    "high": "high",
    "error": "high",
    "major": "high",
    "p2": "high",
    "warning": "medium",
    "medium": "medium",
    "minor": "medium",
    "p3": "medium",
    "low": "low",
    "info": "low",
    "ticket": "low",
    "none": "low",
    "p4": "low",
}
