"""The signed webhook channel: the Standard Webhooks signature, checked both by our own `verify`
and by an independent re-implementation of the spec's recipe, and the sender against a real
local HTTP receiver (`tests/support/webhook_receiver.py`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from reliability_studio.notify.channels.webhook import (
    WebhookSender,
    body_of,
    redact_url,
    retry_after_seconds,
    sign,
    verify,
)
from reliability_studio.notify.delivery import (
    Delivered,
    DeliveryError,
    Notification,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from tests.support.postgres import free_port
from tests.support.webhook_receiver import Answer, WebhookReceiver

# The spec's secret form: "whsec_" and the base64 of the key bytes.
KEY = b"a-32-byte-key-for-hmac-sha256-ok"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1_714_564_800
INCIDENT_ID = uuid.UUID("5b0d7a3e-4a59-4d35-9d1e-2f6c0b8c1a11")


def notification(**changes: object) -> Notification:
    fields: dict[str, object] = {
        "id": uuid.UUID("0f8e7c57-58b4-4a3f-9a41-7e5b6c4d3e21"),
        "event": "incident.created",
        "occurred_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        "incident_id": INCIDENT_ID,
        "title": "Payment Service Down",
        "severity": "critical",
        "status": "open",
        "services": ["payments"],
        "url": "https://studio.example/incidents/5b0d7a3e",
        "resource": {"id": str(INCIDENT_ID), "title": "Payment Service Down", "number": 42},
    }
    fields.update(changes)
    return Notification(**fields)  # type: ignore[arg-type]


def reference_signature(key: bytes, message_id: str, timestamp: str, body: bytes) -> str:
    """The spec's recipe written out independently of the module under test."""
    signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(body: bytes, *, secret: str = SECRET, timestamp: int = NOW) -> dict[str, str]:
    message_id = str(notification().id)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def deliver(url: str, n: Notification | None = None, secret: str | None = SECRET) -> Delivered:
    async def go() -> Delivered:
        async with httpx.AsyncClient(timeout=5) as http:
            return await WebhookSender(http).send(url, secret, n or notification(), now=NOW)

    return asyncio.run(go())


def failure(url: str, secret: str | None = SECRET) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        deliver(url, secret=secret)
    return caught.value


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


# The body and the signature


def test_the_body_carries_the_event_type_the_resource_and_the_notification_id() -> None:
    document = json.loads(body_of(notification()))
    assert document["type"] == "incident.created"
    assert document["data"] == notification().resource
    assert document["id"] == str(notification().id)
    assert document["incident_id"] == str(INCIDENT_ID)
    assert document["occurred_at"] == "2024-05-01T12:00:00+00:00"


def test_the_body_is_compact_utf8_json() -> None:
    body = body_of(notification(title="Zahlungsdienst gestört"))
    assert b", " not in body
    assert b": " not in body
    assert "gestört".encode() in body


def test_a_signature_verifies_with_verify() -> None:
    body = body_of(notification())
    assert verify(SECRET, signed_headers(body), body, now=NOW)


def test_a_signature_matches_an_independent_implementation_of_the_spec_recipe() -> None:
    body = body_of(notification())
    headers = signed_headers(body)
    expected = reference_signature(KEY, headers["webhook-id"], str(NOW), body)
    assert headers["webhook-signature"] == expected


def test_a_raw_secret_is_used_as_its_utf8_bytes() -> None:
    body = body_of(notification())
    signature = sign("plain-shared-secret", "msg_1", NOW, body)
    assert signature == reference_signature(b"plain-shared-secret", "msg_1", str(NOW), body)


def test_header_names_are_matched_case_insensitively() -> None:
    body = body_of(notification())
    headers = {name.title(): value for name, value in signed_headers(body).items()}
    assert verify(SECRET, headers, body, now=NOW)


def test_a_tampered_body_fails_verification() -> None:
    body = body_of(notification())
    headers = signed_headers(body)
    assert not verify(SECRET, headers, body.replace(b"critical", b"minor"), now=NOW)


def test_a_tampered_timestamp_fails_verification() -> None:
    body = body_of(notification())
    headers = signed_headers(body) | {"webhook-timestamp": str(NOW + 1)}
    assert not verify(SECRET, headers, body, now=NOW)


def test_a_tampered_message_id_fails_verification() -> None:
    body = body_of(notification())
    headers = signed_headers(body) | {"webhook-id": str(uuid.uuid4())}
    assert not verify(SECRET, headers, body, now=NOW)


def test_another_secret_fails_verification() -> None:
    body = body_of(notification())
    other = "whsec_" + base64.b64encode(b"another-key-of-thirty-two-bytes!").decode()
    assert not verify(other, signed_headers(body), body, now=NOW)


def test_a_stale_timestamp_fails_verification_even_when_the_signature_is_right() -> None:
    body = body_of(notification())
    headers = signed_headers(body, timestamp=NOW - 301)
    assert not verify(SECRET, headers, body, now=NOW)
    assert verify(SECRET, headers, body, now=NOW - 1)


def test_a_timestamp_from_the_future_fails_verification() -> None:
    body = body_of(notification())
    assert not verify(SECRET, signed_headers(body, timestamp=NOW + 301), body, now=NOW)


def test_one_matching_signature_among_several_is_enough() -> None:
    body = body_of(notification())
    headers = signed_headers(body)
    old = sign("whsec_" + base64.b64encode(b"old-key").decode(), headers["webhook-id"], NOW, body)
    headers["webhook-signature"] = f"v1a,bm90LWVkMjU1MTk= {old} {headers['webhook-signature']}"
    assert verify(SECRET, headers, body, now=NOW)


def test_missing_headers_or_garbage_fail_verification() -> None:
    body = body_of(notification())
    headers = signed_headers(body)
    for name in headers:
        assert not verify(SECRET, {k: v for k, v in headers.items() if k != name}, body, now=NOW)
    assert not verify(SECRET, headers | {"webhook-signature": "v1,***"}, body, now=NOW)
    assert not verify(SECRET, headers | {"webhook-timestamp": "soon"}, body, now=NOW)


def test_a_malformed_whsec_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="not base64"):
        sign("whsec_***", "msg_1", NOW, b"{}")


# The sender against a real receiver


def test_the_receiver_gets_exactly_one_request_that_verifies(receiver: WebhookReceiver) -> None:
    delivered = deliver(receiver.url)
    assert delivered == Delivered(status_code=204)
    assert len(receiver.received) == 1
    request = receiver.received[0]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-timestamp"] == str(NOW)
    assert verify(SECRET, request.headers, request.body, now=NOW)
    assert request.body == body_of(notification())


def test_the_idempotency_key_and_webhook_id_are_the_notification_id(
    receiver: WebhookReceiver,
) -> None:
    deliver(receiver.url)
    headers = receiver.received[0].headers
    assert headers["idempotency-key"] == str(notification().id)
    assert headers["webhook-id"] == str(notification().id)


def test_without_a_secret_the_request_is_sent_unsigned(receiver: WebhookReceiver) -> None:
    deliver(receiver.url, secret=None)
    assert "webhook-signature" not in receiver.received[0].headers


def test_429_with_retry_after_seconds_is_retryable_after_that_wait(
    receiver: WebhookReceiver,
) -> None:
    receiver.answer(Answer(429, {"Retry-After": "30"}, b"slow down"))
    error = failure(receiver.url)
    assert isinstance(error, RetryableDeliveryError)
    assert error.retry_after_seconds == 30


def test_retry_after_may_be_an_http_date() -> None:
    assert retry_after_seconds("Wed, 01 May 2024 12:01:00 GMT", now=NOW) == 60
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now=NOW) == 0
    assert retry_after_seconds("later", now=NOW) is None


def test_500_is_retryable(receiver: WebhookReceiver) -> None:
    receiver.answer(Answer(500, {}, b"boom"))
    error = failure(receiver.url)
    assert isinstance(error, RetryableDeliveryError)
    assert error.retry_after_seconds is None
    assert "500" in str(error)


def test_408_is_retryable(receiver: WebhookReceiver) -> None:
    receiver.answer(Answer(408))
    assert isinstance(failure(receiver.url), RetryableDeliveryError)


def test_400_is_permanent(receiver: WebhookReceiver) -> None:
    receiver.answer(Answer(400, {}, b"unknown event type"))
    error = failure(receiver.url)
    assert isinstance(error, PermanentDeliveryError)
    assert "unknown event type" in str(error)


def test_410_is_permanent(receiver: WebhookReceiver) -> None:
    receiver.answer(Answer(410))
    assert isinstance(failure(receiver.url), PermanentDeliveryError)


def test_a_redirect_is_permanent_and_not_followed(receiver: WebhookReceiver) -> None:
    receiver.answer(Answer(301, {"Location": receiver.url + "/moved"}))
    error = failure(receiver.url)
    assert isinstance(error, PermanentDeliveryError)
    assert "redirects are not followed" in str(error)
    assert [request.path for request in receiver.received] == ["/hooks/incidents"]


def test_connection_refused_is_retryable() -> None:
    error = failure(f"http://127.0.0.1:{free_port()}/hooks")
    assert isinstance(error, RetryableDeliveryError)


def test_a_timeout_is_retryable() -> None:
    async def go() -> None:
        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(2)
            writer.close()

        server = await asyncio.start_server(hang, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, httpx.AsyncClient(timeout=0.2) as http:
            await WebhookSender(http).send(f"http://127.0.0.1:{port}/", SECRET, notification())

    with pytest.raises(RetryableDeliveryError, match="timed out"):
        asyncio.run(go())


def test_an_unsupported_scheme_is_permanent() -> None:
    assert isinstance(failure("ftp://127.0.0.1/hooks"), PermanentDeliveryError)


def test_the_secret_and_url_credentials_never_appear_in_error_text(
    receiver: WebhookReceiver,
) -> None:
    token_url = receiver.url.replace("http://", "http://user:pa55@") + "?token=t0ps3cret"
    receiver.answer(
        Answer(500, {}, f"bad {SECRET} {token_url}".encode()),
        Answer(400, {}, SECRET.encode()),
        Answer(301, {"Location": token_url}),
    )
    refused = f"http://user:pa55@127.0.0.1:{free_port()}/hooks?token=t0ps3cret"
    errors = [failure(token_url) for _ in range(3)]
    errors += [failure(refused), failure("whsec_***"), failure(receiver.url, secret="whsec_***")]
    for error in errors:
        text = str(error)
        for leaked in (SECRET, "t0ps3cret", "pa55", "whsec_***"):
            assert leaked not in text, text


def test_redacted_urls_keep_host_and_path_only() -> None:
    url = "https://bot:pw@hooks.example:8443/in/abc?token=x#frag"
    assert redact_url(url) == "https://hooks.example:8443/in/abc"


def test_verify_defaults_to_the_current_time() -> None:
    body = body_of(notification())
    now = int(time.time())
    assert verify(SECRET, signed_headers(body, timestamp=now), body)
