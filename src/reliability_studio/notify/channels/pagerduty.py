"""PagerDuty Events API v2: our incident lifecycle as trigger / acknowledge / resolve.

Why the Events API and not the REST API: it needs only an integration's routing key (no user
token), and `dedup_key` makes it idempotent: the same key names the same PagerDuty alert, so
a repeated delivery, an acknowledge and a resolve all land on the alert the trigger opened.
We use the incident's id as the key, so every event about one incident reaches one alert.

How PagerDuty answers (developer.pagerduty.com, "Events API v2 Overview", "Send an Alert
Event"): `POST /v2/enqueue` → 202 `{status: "success", message, dedup_key}`; 400
`{status: "invalid event", message, errors: [...]}`; 429 when the integration is over its
rate; 5xx when PagerDuty is unwell (both: try again later).

The routing key is a secret: it never appears in an error message.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from reliability_studio.notify.delivery import (
    Delivered,
    DeliveryError,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)

DEFAULT_API_BASE = "https://events.pagerduty.com"
SOURCE = "reliability-studio"
SUMMARY_MAX = 1024  # PagerDuty truncates (or refuses) a longer summary
REDACTED = "[redacted]"

EventAction = Literal["trigger", "acknowledge", "resolve"]
PagerDutySeverity = Literal["critical", "error", "warning", "info"]

_WORKING = frozenset({"investigating", "identified", "monitoring"})
_DONE = frozenset({"resolved", "closed"})
_SEVERITIES: dict[str, PagerDutySeverity] = {
    "critical": "critical",
    "high": "error",
    "medium": "warning",
    "low": "info",
    # PagerDuty's own words, should a resource already speak them.
    "error": "error",
    "warning": "warning",
    "info": "info",
}


def event_action(n: Notification) -> EventAction | None:
    """What `n` means to PagerDuty, or None when PagerDuty has no use for it.

    - an incident (or a burn-rate alert) resolved or closed → `resolve`;
    - `incident.created` and `slo.burn_rate` → `trigger` (a burn-rate alert about an incident
      shares its dedup key, so it lands on that incident's alert instead of paging twice);
    - `incident.updated` while someone works on it (investigating, identified, monitoring) →
      `acknowledge`, which stops escalation; back to `open` (reopened) → `trigger` again;
    - `task.assigned` → None: tasks are not pages.
    """
    if n.event == "task.assigned":
        return None
    if n.event == "incident.resolved" or n.status in _DONE:
        return "resolve"
    if n.event in ("incident.created", "slo.burn_rate"):
        return "trigger"
    if n.event == "incident.updated":
        if n.status in _WORKING:
            return "acknowledge"
        if n.status == "open":
            return "trigger"
    return None


def severity(n: Notification) -> PagerDutySeverity:
    """Our critical/high/medium/low as PagerDuty's critical/error/warning/info.

    Unknown or missing severity → `error`: a page that is too loud beats one that is lost
    (event rules route on severity, and `info` may page nobody).
    """
    return _SEVERITIES.get((n.severity or "").lower(), "error")


def dedup_key(n: Notification) -> str:
    """The incident's id when there is one, so that every event of an incident is one alert."""
    return str(n.incident_id or n.id)


def render_event(routing_key: str, n: Notification, action: EventAction) -> dict[str, Any]:
    """The Events v2 body. Pure.

    Acknowledge and resolve need only the key: PagerDuty ignores their payload, so only a
    trigger carries one (with the links).
    """
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(n),
    }
    if action != "trigger":
        return event
    summary = f"[{n.severity.upper()}] {n.title}" if n.severity else n.title
    if len(summary) > SUMMARY_MAX:
        summary = summary[: SUMMARY_MAX - 1] + "…"
    payload: dict[str, Any] = {
        "summary": summary,
        "source": SOURCE,
        "severity": severity(n),
        "timestamp": n.occurred_at.isoformat(),
        "class": n.event,
        "custom_details": {
            "services": list(n.services),
            "status": n.status,
            "url": n.url,
            "notification_id": str(n.id),
        },
    }
    if n.services:
        payload["component"] = n.services[0]
        payload["group"] = ",".join(n.services)
    event["payload"] = payload
    if n.url:
        event["links"] = [{"href": n.url, "text": "Open in Reliability Studio"}]
    return event


class PagerDutySender:
    """Sends one event per call; the dispatcher owns retries and backoff."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(
        self,
        routing_key: str,
        n: Notification,
        *,
        api_base: str = DEFAULT_API_BASE,
    ) -> Delivered | None:
        """Enqueue the event `n` means; None (and no request) when it means nothing."""
        action = event_action(n)
        if action is None:
            return None
        body = render_event(routing_key, n, action)
        try:
            response = await self._http.post(f"{api_base.rstrip('/')}/v2/enqueue", json=body)
        except httpx.HTTPError as exc:
            # Only the type: an httpx error's text and `request` may carry the body's key.
            raise RetryableDeliveryError(f"PagerDuty: {type(exc).__name__}") from None
        if response.status_code == 202:
            return Delivered(response.status_code)
        raise _status_error(response, routing_key)


def _status_error(response: httpx.Response, routing_key: str) -> DeliveryError:
    """429 and 5xx may pass; a 400 is a malformed event and any other 4xx a bad key or URL."""
    detail = _detail(response)
    if routing_key:
        detail = detail.replace(routing_key, REDACTED)
    message = f"PagerDuty: HTTP {response.status_code} {detail}".rstrip()
    if response.status_code == 429:
        return RetryableDeliveryError(message, retry_after_seconds=_retry_after(response))
    if response.status_code >= 500:
        return RetryableDeliveryError(message, retry_after_seconds=_retry_after(response))
    return PermanentDeliveryError(message)


def _detail(response: httpx.Response) -> str:
    """PagerDuty's `message` and `errors` when it sent JSON, else the start of the body."""
    try:
        answer = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if not isinstance(answer, dict):
        return response.text.strip()[:200]
    parts = [str(answer.get("message") or answer.get("status") or "")]
    errors = answer.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(error) for error in errors))
    return ": ".join(part for part in parts if part)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value.strip()), 0.0)
    except ValueError:
        return None
