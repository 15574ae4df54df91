"""Slack: an incoming webhook, or `chat.postMessage` with a bot token (threads follow-ups).

Why two ways: an incoming webhook is the easiest thing for a team to set up, but it answers a
plain `ok` and nothing else, so it cannot thread. `chat.postMessage` answers the message's
`ts`, which we keep (`Delivered.thread`) so that later messages about the same incident go in
that thread instead of flooding the channel.

How Slack answers (docs.slack.dev, "Sending messages using incoming webhooks",
"chat.postMessage", "Rate limits"):

- webhook: 200 `ok`; 400 `invalid_payload`/`no_text`, 403 `action_prohibited`, 404
  `no_service`, 410 `channel_is_archived` (plain text); 429 with `Retry-After` (seconds);
- `chat.postMessage`: HTTP 200 with `{ok: true, ts, channel}` or `{ok: false, error}` (for
  example `channel_not_found`, `invalid_auth`, `ratelimited`); 429 with `Retry-After`.

A webhook URL embeds a secret and a token is one, so neither ever appears in an error message
(errors are logged and stored with dead letters), and httpx's exceptions, which carry the
request URL, are not chained onto ours.
"""

from __future__ import annotations

from typing import Any

import httpx

from reliability_studio.notify.delivery import (
    Delivered,
    DeliveryError,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)

DEFAULT_API_BASE = "https://slack.com/api"
HEADER_MAX = 150  # Slack refuses a header block's text longer than this
FIELD_MAX = 2000  # ...and a section field's text longer than this
REDACTED = "[redacted]"

# `ok: false` errors that say "later", not "never" (chat.postMessage's error list).
_TRANSIENT_API_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def headline(n: Notification) -> str:
    """`[CRITICAL] Payment Service Down`: the severity as a word, since emoji do not read
    aloud (screen readers, email bridges) and mean different things in different teams."""
    if n.severity:
        return f"[{n.severity.upper()}] {n.title}"
    return n.title


def render_blocks(n: Notification) -> tuple[str, list[dict[str, Any]]]:
    """The fallback `text` and the Block Kit `blocks` for `n`. Pure.

    The fallback text matters: Slack shows it in notifications and to clients that cannot
    draw blocks, so it carries the same facts in one line.
    """
    title = headline(n)
    status = n.status or "unknown"
    services = ", ".join(n.services) if n.services else "none"
    # `text` is mrkdwn too: escaped, so that a title such as `<!channel>` pings nobody.
    text = _escape(f"{title} (status: {status}; services: {services})")
    if n.url:
        text += f" <{_escape(n.url)}>"

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_MAX)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Status*\n{_escape(status)}"},
                {"type": "mrkdwn", "text": _clip(f"*Services*\n{_escape(services)}", FIELD_MAX)},
            ],
        },
    ]
    if n.url:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"<{_escape(n.url)}|Open in Reliability Studio>",
                },
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open"},
                    "url": n.url,
                    "action_id": "open_in_reliability_studio",
                },
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"`{n.event}` at {n.occurred_at.isoformat(timespec='seconds')}",
                }
            ],
        }
    )
    return text, blocks


class SlackSender:
    """Sends one notification per call; the dispatcher owns retries, backoff and timeouts'
    budget (the `http` client's own timeout applies)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send_webhook(self, webhook_url: str, n: Notification) -> Delivered:
        """Post `n` to an incoming webhook. Webhooks cannot thread, so `thread` stays empty."""
        text, blocks = render_blocks(n)
        secrets = _webhook_secrets(webhook_url)
        try:
            response = await self._http.post(webhook_url, json={"text": text, "blocks": blocks})
        except httpx.HTTPError as exc:
            raise _transport_error("Slack webhook", exc) from None
        if response.status_code != 200:
            raise _status_error("Slack webhook", response, secrets)
        return Delivered(response.status_code)

    async def send_message(
        self,
        token: str,
        channel: str,
        n: Notification,
        *,
        api_base: str = DEFAULT_API_BASE,
    ) -> Delivered:
        """Post `n` with `chat.postMessage`; a follow-up goes in the first message's thread.

        `n.thread["slack_ts"]` is used as `thread_ts` only when it belongs to this `channel`
        (a `ts` names a message only within its channel). The returned `thread` always names
        the parent message, never a reply: Slack asks that replies thread under the parent.
        """
        text, blocks = render_blocks(n)
        body: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks}
        parent_ts = n.thread.get("slack_ts")
        if parent_ts and n.thread.get("slack_channel", channel) != channel:
            parent_ts = None
        if parent_ts:
            body["thread_ts"] = parent_ts
        secrets = (token,)
        try:
            response = await self._http.post(
                f"{api_base.rstrip('/')}/chat.postMessage",
                json=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json; charset=utf-8",
                },
            )
        except httpx.HTTPError as exc:
            raise _transport_error("Slack chat.postMessage", exc) from None
        if response.status_code != 200:
            raise _status_error("Slack chat.postMessage", response, secrets)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            # A proxy's HTML page, not Slack: may well be gone on the next attempt.
            raise RetryableDeliveryError("Slack chat.postMessage: answer is not Slack's JSON")
        if answer.get("ok") is not True:
            error = _redact(str(answer.get("error") or "unknown_error"), secrets)
            message = f"Slack chat.postMessage refused: {error}"
            if error in _TRANSIENT_API_ERRORS:
                raise RetryableDeliveryError(
                    message, retry_after_seconds=retry_after(response.headers)
                )
            raise PermanentDeliveryError(message)
        if parent_ts:
            return Delivered(
                response.status_code, thread={"slack_ts": parent_ts, "slack_channel": channel}
            )
        ts = answer.get("ts")
        if not isinstance(ts, str) or not ts:
            raise PermanentDeliveryError("Slack chat.postMessage: answer has no ts")
        return Delivered(response.status_code, thread={"slack_ts": ts, "slack_channel": channel})


def retry_after(headers: httpx.Headers) -> float | None:
    """The wait `Retry-After` asks for, in seconds (Slack sends whole seconds)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0)


def _status_error(what: str, response: httpx.Response, secrets: tuple[str, ...]) -> DeliveryError:
    """429 and 5xx are worth another try; any other non-200 is Slack refusing for good."""
    detail = _redact(response.text.strip()[:200], secrets) or f"HTTP {response.status_code}"
    message = f"{what}: HTTP {response.status_code} {detail}"
    if response.status_code == 429:
        return RetryableDeliveryError(message, retry_after_seconds=retry_after(response.headers))
    if response.status_code >= 500:
        return RetryableDeliveryError(message)
    return PermanentDeliveryError(message)


def _transport_error(what: str, exc: httpx.HTTPError) -> RetryableDeliveryError:
    """Timeouts and refused connections may heal. Only the exception's type is kept: its text
    and its `request` can carry the URL, which for a webhook is the secret."""
    return RetryableDeliveryError(f"{what}: {type(exc).__name__}")


def _webhook_secrets(webhook_url: str) -> tuple[str, ...]:
    """The URL, its path and its last segment: an answer may echo any of them, and the last
    segment of `/services/T…/B…/<secret>` is what lets anyone post to the channel."""
    path = httpx.URL(webhook_url).path
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return (webhook_url, path, *((last,) if len(last) >= 4 else ()))


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _escape(text: str) -> str:
    """mrkdwn's three control characters (Slack, "Formatting text for app surfaces")."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
