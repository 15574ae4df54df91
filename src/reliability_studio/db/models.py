"""Imports every table so that `Base.metadata` is complete (for Alembic and tests)."""

from reliability_studio.alerts.models import Alert, AlertGroup, CorrelationRule
from reliability_studio.analysis.models import AnalysisRun, Evidence
from reliability_studio.audit.models import AuditEntry
from reliability_studio.catalog.models import Service
from reliability_studio.db.base import Base
from reliability_studio.idempotency.models import IdempotencyKey
from reliability_studio.identity.models import (
    ApiToken,
    BrowserSession,
    Membership,
    ServiceAccount,
    User,
)
from reliability_studio.identity.oidc_models import CliLoginCode, LoginFlow
from reliability_studio.incidents.models import Incident, IncidentService
from reliability_studio.notify.models import (
    Notification,
    NotificationChannel,
    NotificationPolicy,
)
from reliability_studio.organizations.models import Organization
from reliability_studio.slos.models import SLO, SLOAlert, SLOSnapshot
from reliability_studio.tasks.models import IncidentTask
from reliability_studio.timeline.models import TimelineEvent

__all__ = [
    "SLO",
    "Alert",
    "AlertGroup",
    "AnalysisRun",
    "ApiToken",
    "AuditEntry",
    "Base",
    "BrowserSession",
    "CliLoginCode",
    "CorrelationRule",
    "Evidence",
    "IdempotencyKey",
    "Incident",
    "IncidentService",
    "IncidentTask",
    "LoginFlow",
    "Membership",
    "Notification",
    "NotificationChannel",
    "NotificationPolicy",
    "Organization",
    "SLOAlert",
    "SLOSnapshot",
    "Service",
    "ServiceAccount",
    "TimelineEvent",
    "User",
]
