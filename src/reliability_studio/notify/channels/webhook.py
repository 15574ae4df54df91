"""Generic outbound webhooks, signed as the Standard Webhooks spec says (standardwebhooks.com).

Why that scheme rather than one of our own: receivers can check our requests with any Standard
Webhooks library (Python, Go, JS, ...) or with the few lines in the README, and it signs the
message id and the timestamp together with the body, which is what makes replays detectable.

Each request carries:

- `webhook-id`: the notification id. It stays the same on every retry, so it is also sent as
  `Idempotency-Key`, the header name many HTTP stacks already look for: receivers drop repeats.
- `webhook-timestamp`: unix seconds of this attempt (not of the event: `occurred_at` is in the
  body), so that receivers can refuse old requests.
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

The secret is either `whsec_<base64>` (the spec's form: the key is the decoded bytes; use this
form with the Standard Webhooks libraries) or any other string, used as UTF-8 bytes.

The sender sends once and classifies the answer; the dispatcher owns retries and backoff. It
never follows redirects (a redirect would carry a signed event to an address nobody
configured), and no error it raises contains the secret, or the URL's credentials or query
string (where webhook URLs often carry tokens).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from reliability_studio.notify.delivery import (
    Delivered,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's secret prefix, not a secret
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300  # the spec's (and its libraries') five minutes
USER_AGENT = "reliability-studio-webhooks/1"
# 4xx answers that say "not now" rather than "never": timeout, conflict, too early, throttled.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})
ERROR_BODY_CHARS = 200  # enough of the receiver's answer to debug, not a whole HTML page


def body_of(n: Notification) -> bytes:
    """The request body: compact UTF-8 JSON, the exact bytes that are signed.

    `type` and `data` are the spec's recommended envelope fields (the event type, the resource
    as the API shows it); the incident fields beside them let simple receivers (chat bridges,
    scripts) act without walking `data`.
    """
    payload: dict[str, Any] = {
        "id": str(n.id),
        "type": n.event,
        "occurred_at": n.occurred_at.isoformat(),
        "data": n.resource,
        "incident_id": str(n.incident_id) if n.incident_id is not None else None,
        "title": n.title,
        "severity": n.severity,
        "status": n.status,
        "services": list(n.services),
        "url": n.url,
    }
    return orjson.dumps(payload)


def _key(secret: str) -> bytes:
    """The HMAC key: the decoded bytes of a `whsec_` secret, else the string's UTF-8 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        if not secret:
            raise ValueError("the webhook secret is empty")
        return secret.encode()
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Tolerate missing padding, as the reference libraries do.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret has the whsec_ prefix but is not base64") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _digest(key: bytes, message_id: str, timestamp: int | str, body: bytes) -> bytes:
    """HMAC-SHA256 over `{id}.{timestamp}.{body}`, the spec's signed content."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

    Raises `ValueError` when the secret is empty or a malformed `whsec_` value.
    """
    digest = _digest(_key(secret), message_id, timestamp, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: int | None = None,
) -> bool:
    """Whether a request is ours, unaltered and recent: the receiver's side, as in the README.

    `headers` are looked up case-insensitively; `body` must be the raw bytes received (JSON
    parsed and re-serialized is not the same bytes). A timestamp more than `tolerance_seconds`
    away from `now` (either way) fails, which is what makes a captured request useless later.
    `webhook-signature` may hold several space-separated signatures (key rotation): one
    matching `v1` signature is enough. Comparisons are constant-time.

    Raises `ValueError` only for a malformed secret (the receiver's configuration), never for
    anything the request contains.
    """
    key = _key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (message_id and timestamp_text and signatures):
        return False
    if not (timestamp_text.isascii() and timestamp_text.isdigit()):
        return False
    current = int(time.time()) if now is None else now
    if abs(current - int(timestamp_text)) > tolerance_seconds:
        return False
    # The header's own text is what was signed.
    expected = _digest(key, message_id, timestamp_text, body)
    matched = False
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # No early exit: the time taken does not depend on which entry matched.
        matched |= hmac.compare_digest(expected, candidate)
    return matched


def redact_url(url: str) -> str:
    """The URL as errors may show it: scheme, host, port and path; no credentials or query."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid url>"
    if not parsed.scheme or not parsed.host:
        return "<invalid url>"
    return str(parsed.copy_with(username=None, password=None, query=None, fragment=None))


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A `Retry-After` value in seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


class WebhookSender:
    """Sends one signed notification to one URL and classifies the answer.

    The `httpx.AsyncClient` is shared and owned by the caller (connection pooling, timeouts,
    proxies are configured once for every channel).
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def send(
        self, url: str, secret: str | None, n: Notification, *, now: int | None = None
    ) -> Delivered:
        """POST the notification; `now` (unix seconds) pins the timestamp for tests.

        Returns `Delivered` on 2xx. Raises `PermanentDeliveryError` for a redirect, a 4xx other
        than 408/409/425/429 (410 included: the receiver is gone), an unusable URL or secret;
        `RetryableDeliveryError` for 408/409/425/429/5xx (with the receiver's `Retry-After`),
        timeouts and connection failures. Without a secret the request is sent unsigned.
        """
        where = redact_url(url)
        body = body_of(n)
        timestamp = int(time.time()) if now is None else now
        message_id = str(n.id)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "idempotency-key": message_id,
        }
        if secret is not None:
            try:
                headers["webhook-signature"] = sign(secret, message_id, timestamp, body)
            except ValueError as exc:
                raise PermanentDeliveryError(f"webhook to {where}: {exc}") from None

        def scrub(text: str) -> str:
            """Removes the secret and the raw URL from text quoted from elsewhere."""
            if url:
                text = text.replace(url, where)
            if secret:
                text = text.replace(secret, "<secret>")
            return text

        try:
            response = await self.http.post(
                url, content=body, headers=headers, follow_redirects=False
            )
        except httpx.TimeoutException as exc:
            raise RetryableDeliveryError(
                f"webhook to {where} timed out ({type(exc).__name__})"
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
            raise PermanentDeliveryError(
                f"webhook to {where} cannot be sent: {type(exc).__name__}: {scrub(str(exc))}"
            ) from None
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(
                f"webhook to {where} failed: {type(exc).__name__}: {scrub(str(exc))}"
            ) from None

        status = response.status_code
        if 200 <= status < 300:
            return Delivered(status_code=status)
        answer = scrub(response.text[:ERROR_BODY_CHARS].strip())
        detail = f"webhook to {where} answered {status}" + (f": {answer}" if answer else "")
        if 300 <= status < 400:
            raise PermanentDeliveryError(f"{detail} (redirects are not followed)")
        if status in RETRYABLE_4XX or status >= 500:
            raise RetryableDeliveryError(
                detail,
                retry_after_seconds=retry_after_seconds(response.headers.get("retry-after")),
            )
        raise PermanentDeliveryError(detail)
