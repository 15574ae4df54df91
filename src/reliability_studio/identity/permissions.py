"""The permission matrix: every route of the API and who may call it.

`PUBLIC` routes need no identity (health, metrics, the API's own documentation, signing
in). `INGEST` routes take alerts: an `ingest` token, an `api` token of a responder or
above, or the integration's own `INGEST_TOKEN_*`. `MEMBER` routes need any identity in the
organization. The others name the least role that may call them; roles are ordered
viewer < responder < admin < owner.

Reading is for viewers; working an incident (incidents, timeline, tasks, analyses,
retrying a notification) is for responders; configuring the organization (services, SLOs,
rules, notification channels and policies, service accounts, members, the audit log) is
for admins; handing out the owner role is for owners.

A test enumerates every route of the app and fails when one is missing here, so a new
endpoint cannot ship unprotected; the app also refuses to start with one missing.
"""

from __future__ import annotations

from typing import Final

PUBLIC: Final = "public"
INGEST: Final = "ingest"
MEMBER: Final = "member"

ROUTES: dict[str, str] = {
    # Operations and documentation.
    "GET /health": PUBLIC,
    "GET /metrics": PUBLIC,
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
    # Signing in: single sign-on, logout, the CLI's token exchange (identity/oidc_router.py).
    "GET /api/auth/oidc/login": PUBLIC,
    "GET /api/auth/oidc/callback": PUBLIC,
    "POST /api/auth/logout": PUBLIC,
    "POST /api/auth/cli/token": PUBLIC,
    # Who am I, and my organizations.
    "GET /api/me": MEMBER,
    "GET /api/organizations": MEMBER,
    "POST /api/organizations": MEMBER,
    "GET /api/organizations/{organization_id}": MEMBER,
    "GET /api/organization": MEMBER,
    "PATCH /api/organization": "owner",
    "GET /api/organization/members": "viewer",
    "POST /api/organization/members": "admin",
    "PATCH /api/organization/members/{user_id}": "admin",
    "DELETE /api/organization/members/{user_id}": "admin",
    "GET /api/service-accounts": "admin",
    "POST /api/service-accounts": "admin",
    "GET /api/service-accounts/{account_id}": "admin",
    "PATCH /api/service-accounts/{account_id}": "admin",
    "DELETE /api/service-accounts/{account_id}": "admin",
    "GET /api/tokens": MEMBER,
    "POST /api/tokens": MEMBER,
    "GET /api/tokens/{token_id}": MEMBER,
    "DELETE /api/tokens/{token_id}": MEMBER,
    # The service catalog.
    "GET /api/services": "viewer",
    "POST /api/services": "admin",
    "GET /api/services/{service_id}": "viewer",
    "PATCH /api/services/{service_id}": "admin",
    "DELETE /api/services/{service_id}": "admin",
    "GET /api/services/{service_id}/incidents": "viewer",
    # Incidents, their timelines, tasks, alerts and analyses.
    "GET /api/incidents": "viewer",
    "POST /api/incidents": "responder",
    "GET /api/incidents/{incident_id}": "viewer",
    "PATCH /api/incidents/{incident_id}": "responder",
    "GET /api/incidents/{incident_id}/timeline": "viewer",
    "POST /api/incidents/{incident_id}/timeline": "responder",
    "GET /api/incidents/{incident_id}/timeline/{event_id}": "viewer",
    "GET /api/incidents/{incident_id}/tasks": "viewer",
    "POST /api/incidents/{incident_id}/tasks": "responder",
    "GET /api/incidents/{incident_id}/tasks/{task_id}": "viewer",
    "PATCH /api/incidents/{incident_id}/tasks/{task_id}": "responder",
    "DELETE /api/incidents/{incident_id}/tasks/{task_id}": "responder",
    "GET /api/incidents/{incident_id}/alerts": "viewer",
    "POST /api/incidents/{incident_id}/analyze": "responder",
    "GET /api/incidents/{incident_id}/analysis": "viewer",
    "GET /api/incidents/{incident_id}/evidence": "viewer",
    # SLOs.
    "GET /api/slos": "viewer",
    "POST /api/slos": "admin",
    "GET /api/slos/{slo_id}": "viewer",
    "PATCH /api/slos/{slo_id}": "admin",
    "DELETE /api/slos/{slo_id}": "admin",
    "POST /api/slos/{slo_id}/evaluate": "responder",
    "GET /api/slos/{slo_id}/history": "viewer",
    "GET /api/slos/{slo_id}/alerts": "viewer",
    "GET /api/slos/{slo_id}/prometheus-rules": "viewer",
    "GET /api/prometheus-rules": "viewer",
    "GET /api/openslo": "viewer",
    "POST /api/openslo": "admin",
    # Alerts in, and how they are correlated.
    "POST /api/integrations/alertmanager": INGEST,
    "POST /api/integrations/grafana": INGEST,
    "POST /api/alerts": INGEST,
    "GET /api/alerts": "viewer",
    "GET /api/alerts/{alert_id}": "viewer",
    "GET /api/alert-groups": "viewer",
    "GET /api/alert-groups/{group_id}": "viewer",
    "GET /api/correlation-rules": "viewer",
    "POST /api/correlation-rules": "admin",
    "GET /api/correlation-rules/{rule_id}": "viewer",
    "PATCH /api/correlation-rules/{rule_id}": "admin",
    "DELETE /api/correlation-rules/{rule_id}": "admin",
    # Notifications.
    "GET /api/notification-channels": "viewer",
    "POST /api/notification-channels": "admin",
    "GET /api/notification-channels/{channel_id}": "viewer",
    "PATCH /api/notification-channels/{channel_id}": "admin",
    "DELETE /api/notification-channels/{channel_id}": "admin",
    "GET /api/notification-policies": "viewer",
    "POST /api/notification-policies": "admin",
    "GET /api/notification-policies/{policy_id}": "viewer",
    "PATCH /api/notification-policies/{policy_id}": "admin",
    "DELETE /api/notification-policies/{policy_id}": "admin",
    "GET /api/notifications": "viewer",
    "POST /api/notifications/{notification_id}/retry": "responder",
    # The audit log.
    "GET /api/audit": "admin",
    # Real-time updates.
    "WS /api/ws": "viewer",
    "GET /api/sse": "viewer",
}


def requirement(method: str, path: str) -> str | None:
    """What the route `method path` (its template) needs; None for a route not listed."""
    return ROUTES.get(f"{method} {path}")
