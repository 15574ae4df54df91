"""The Slack sender against a stand-in that answers as Slack's documented APIs do.

What the dispatcher relies on: `Delivered.thread` names the first message (so follow-ups
thread under it), `RetryableDeliveryError` for what may pass (429 with Slack's wait, 5xx,
timeouts, `ratelimited`), `PermanentDeliveryError` for what will not (a bad token, an unknown
channel, a dead webhook), and never a secret (token, webhook URL) in an error's text.
"""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest

from reliability_studio.notify.channels.slack import SlackSender, render_blocks
from reliability_studio.notify.delivery import (
    Delivered,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.postgres import free_port

T = TypeVar("T")
INCIDENT = uuid.UUID("6f1c2b9e-0000-4000-8000-000000000001")
URL = "https://studio.example.com/incidents/6f1c2b9e-0000-4000-8000-000000000001"


def notification(**changes: Any) -> Notification:
    """An `incident.created` about a critical payment outage; `changes` override fields."""
    base = Notification(
        id=uuid.UUID("00000000-0000-4000-8000-0000000000aa"),
        event="incident.created",
        occurred_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        incident_id=INCIDENT,
        title="Payment Service Down",
        severity="critical",
        status="open",
        services=["payments", "checkout"],
        url=URL,
        resource={"id": str(INCIDENT)},
    )
    return replace(base, **changes)


def run(use: Callable[[SlackSender], Awaitable[T]], *, timeout: float = 5.0) -> T:
    """`use(sender)` with a fresh httpx client, in a new event loop."""

    async def main() -> T:
        async with httpx.AsyncClient(timeout=timeout) as http:
            return await use(SlackSender(http))

    return asyncio.run(main())


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def all_text(blocks: list[dict[str, Any]]) -> str:
    """Every string in `blocks`, to look for a fact without caring which block holds it."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(blocks)
    return "\n".join(found)


# --- rendering ----------------------------------------------------------------------------


def test_blocks_open_with_the_severity_as_a_label_before_the_title() -> None:
    _, blocks = render_blocks(notification())
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "[CRITICAL] Payment Service Down"},
    }


def test_blocks_carry_status_services_link_and_event_type() -> None:
    _, blocks = render_blocks(notification(status="investigating"))
    text = all_text(blocks)
    assert "investigating" in text
    assert "payments, checkout" in text
    assert f"<{URL}|" in text
    assert any(block.get("accessory", {}).get("url") == URL for block in blocks)
    assert blocks[-1]["type"] == "context"
    assert "incident.created" in all_text([blocks[-1]])


def test_blocks_have_no_link_when_the_notification_has_no_url() -> None:
    _, blocks = render_blocks(notification(url=None))
    assert "http" not in all_text(blocks)


def test_fallback_text_carries_the_same_facts_in_one_line() -> None:
    text, _ = render_blocks(notification())
    assert text.startswith("[CRITICAL] Payment Service Down")
    assert "open" in text
    assert "payments, checkout" in text
    assert URL in text


def test_blocks_escape_mrkdwn_control_characters_in_user_text() -> None:
    fallback, blocks = render_blocks(notification(services=["<!channel>", "a&b"]))
    for text in (fallback, all_text(blocks)):
        assert "<!channel>" not in text
        assert "&lt;!channel&gt;, a&amp;b" in text


# --- incoming webhook ---------------------------------------------------------------------


def test_webhook_delivery_posts_text_and_blocks(slack: FakeSlack) -> None:
    delivered = run(lambda sender: sender.send_webhook(slack.webhook_url, notification()))
    assert delivered == Delivered(200)
    [request] = slack.requests
    assert request.path == "/services/T000/B000/XXXX"
    assert request.json["text"].startswith("[CRITICAL] Payment Service Down")
    assert request.json["blocks"] == render_blocks(notification())[1]


def test_webhook_that_slack_no_longer_knows_is_permanent_with_slacks_error(
    slack: FakeSlack,
) -> None:
    with pytest.raises(PermanentDeliveryError, match="404 no_service"):
        run(lambda s: s.send_webhook(slack.url + "/services/T000/B000/GONE", notification()))


def test_webhook_429_is_retryable_after_slacks_retry_after(slack: FakeSlack) -> None:
    slack.answer_with(429, "rate_limited", headers={"Retry-After": "7"})
    with pytest.raises(RetryableDeliveryError) as caught:
        run(lambda sender: sender.send_webhook(slack.webhook_url, notification()))
    assert caught.value.retry_after_seconds == 7


def test_webhook_5xx_is_retryable(slack: FakeSlack) -> None:
    slack.answer_with(500, "rollup_error")
    with pytest.raises(RetryableDeliveryError) as caught:
        run(lambda sender: sender.send_webhook(slack.webhook_url, notification()))
    assert caught.value.retry_after_seconds is None


def test_webhook_timeout_is_retryable(slack: FakeSlack) -> None:
    slack.hang()
    with pytest.raises(RetryableDeliveryError, match="Timeout"):
        run(
            lambda sender: sender.send_webhook(slack.webhook_url, notification()),
            timeout=0.3,
        )


def test_webhook_url_is_not_in_the_error_text(slack: FakeSlack) -> None:
    secret_path = "/services/T000/B000/SECRETSECRET"
    slack.answer_with(404, f"no_service for {secret_path}")
    with pytest.raises(PermanentDeliveryError) as refused:
        run(lambda sender: sender.send_webhook(slack.url + secret_path, notification()))
    closed = f"http://127.0.0.1:{free_port()}{secret_path}"
    with pytest.raises(RetryableDeliveryError) as unreachable:
        run(lambda sender: sender.send_webhook(closed, notification()))
    for error in (refused.value, unreachable.value):
        assert "SECRETSECRET" not in "".join(traceback.format_exception(error))


# --- chat.postMessage ---------------------------------------------------------------------


def test_post_message_authenticates_with_the_bot_token_and_returns_the_ts(
    slack: FakeSlack,
) -> None:
    delivered = run(
        lambda s: s.send_message(TOKEN, "C0INCIDENTS", notification(), api_base=slack.api_base)
    )
    [message] = slack.messages
    assert delivered == Delivered(
        200, thread={"slack_ts": message["ts"], "slack_channel": "C0INCIDENTS"}
    )
    [request] = slack.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json["channel"] == "C0INCIDENTS"
    assert request.json["blocks"] == render_blocks(notification())[1]
    assert "thread_ts" not in request.json


def test_follow_up_threads_under_the_first_messages_ts(slack: FakeSlack) -> None:
    async def first_then_follow_up(sender: SlackSender) -> tuple[Delivered, Delivered]:
        first = await sender.send_message(
            TOKEN, "C0INCIDENTS", notification(), api_base=slack.api_base
        )
        update = notification(event="incident.updated", status="identified", thread=first.thread)
        second = await sender.send_message(TOKEN, "C0INCIDENTS", update, api_base=slack.api_base)
        third = await sender.send_message(
            TOKEN, "C0INCIDENTS", replace(update, thread=second.thread), api_base=slack.api_base
        )
        return first, third

    first, third = run(first_then_follow_up)
    parent, reply, later_reply = slack.messages
    assert first.thread["slack_ts"] == parent["ts"]
    assert reply["thread_ts"] == parent["ts"]
    assert later_reply["thread_ts"] == parent["ts"]  # under the parent, never under a reply
    assert third.thread == first.thread


def test_thread_of_another_channel_is_not_used(slack: FakeSlack) -> None:
    elsewhere = {"slack_ts": "1700000001.000100", "slack_channel": "C0OTHER"}
    delivered = run(
        lambda s: s.send_message(
            TOKEN, "C0INCIDENTS", notification(thread=elsewhere), api_base=slack.api_base
        )
    )
    assert "thread_ts" not in slack.requests[0].json
    assert delivered.thread["slack_ts"] == slack.messages[0]["ts"]


def test_post_message_429_is_retryable_after_slacks_retry_after(slack: FakeSlack) -> None:
    slack.answer_with(429, "", headers={"Retry-After": "7"})
    with pytest.raises(RetryableDeliveryError) as caught:
        run(lambda s: s.send_message(TOKEN, "C0INCIDENTS", notification(), api_base=slack.api_base))
    assert caught.value.retry_after_seconds == 7


def test_post_message_ratelimited_answer_is_retryable(slack: FakeSlack) -> None:
    slack.refuse_with("ratelimited", headers={"Retry-After": "3"})
    with pytest.raises(RetryableDeliveryError, match="ratelimited") as caught:
        run(lambda s: s.send_message(TOKEN, "C0INCIDENTS", notification(), api_base=slack.api_base))
    assert caught.value.retry_after_seconds == 3


def test_post_message_5xx_is_retryable(slack: FakeSlack) -> None:
    slack.answer_with(503, "upstream unavailable")
    with pytest.raises(RetryableDeliveryError, match="503"):
        run(lambda s: s.send_message(TOKEN, "C0INCIDENTS", notification(), api_base=slack.api_base))


def test_invalid_auth_is_permanent(slack: FakeSlack) -> None:
    with pytest.raises(PermanentDeliveryError, match="invalid_auth"):
        run(
            lambda s: s.send_message(
                "xoxb-revoked", "C0INCIDENTS", notification(), api_base=slack.api_base
            )
        )


def test_unknown_channel_is_permanent(slack: FakeSlack) -> None:
    with pytest.raises(PermanentDeliveryError, match="channel_not_found"):
        run(lambda s: s.send_message(TOKEN, "C0NOWHERE", notification(), api_base=slack.api_base))


def test_token_is_not_in_the_error_text(slack: FakeSlack) -> None:
    token = "xoxb-1111-2222-verysecret"
    slack.answer_with(400, f"bad request with {token}")
    with pytest.raises(PermanentDeliveryError) as refused:
        run(lambda s: s.send_message(token, "C0INCIDENTS", notification(), api_base=slack.api_base))
    closed = f"http://127.0.0.1:{free_port()}/api"
    with pytest.raises(RetryableDeliveryError) as unreachable:
        run(lambda s: s.send_message(token, "C0INCIDENTS", notification(), api_base=closed))
    for error in (refused.value, unreachable.value):
        assert "verysecret" not in "".join(traceback.format_exception(error))
