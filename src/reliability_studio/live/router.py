"""The live stream: WebSocket `/api/ws`, and Server-Sent Events `/api/sse` as a fallback.

Both take the same subscription as query parameters: nothing for every change of the
organization, or `incident_id` and/or `service_id` (repeatable) for only those.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketState

from reliability_studio.api.deps import OrganizationId, organization_of
from reliability_studio.api.problems import PROBLEM_RESPONSES
from reliability_studio.live.events import Subscription
from reliability_studio.live.hub import Hub, Subscriber
from reliability_studio.live.settings import LiveSettings

router = APIRouter(prefix="/api", tags=["live"], responses=PROBLEM_RESPONSES)

# WebSocket close codes (RFC 6455 and the IANA registry).
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001
INTERNAL_ERROR = 1011

IncidentIds = Annotated[
    list[uuid.UUID],
    Query(alias="incident_id", description="Only changes of these incidents (repeatable)."),
]
ServiceIds = Annotated[
    list[uuid.UUID],
    Query(alias="service_id", description="Only changes that concern these services."),
]


class SubscriptionError(ValueError):
    """A subscription a client asked for that cannot be honoured; names the field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def parse_subscription(organization: uuid.UUID, raw: dict[str, Any]) -> Subscription:
    """A subscription from a client message or query: lists of ids, checked one by one."""
    lists: dict[str, frozenset[str]] = {}
    for field in ("incident_ids", "service_ids"):
        values = raw.get(field, [])
        if not isinstance(values, list):
            raise SubscriptionError(field, f"{field} must be a list of ids")
        try:
            lists[field] = frozenset(str(uuid.UUID(str(value))) for value in values)
        except ValueError:
            raise SubscriptionError(field, f"{field} must hold only UUIDs") from None
    return Subscription(str(organization), lists["incident_ids"], lists["service_ids"])


@router.websocket("/ws", name="live_websocket")
async def live_websocket(websocket: WebSocket) -> None:
    """Changes as they happen, each text frame a JSON array of events.

    The first frame confirms the subscription. A client may replace its subscription at
    any time by sending `{"action": "subscribe", "incident_ids": [...], "service_ids":
    [...]}`, and may send `{"action": "ping"}`.
    """
    settings: LiveSettings = websocket.app.state.live_settings
    hub: Hub = websocket.app.state.live_hub
    query = {
        "incident_ids": websocket.query_params.getlist("incident_id"),
        "service_ids": websocket.query_params.getlist("service_id"),
    }
    await websocket.accept()
    try:
        subscription = parse_subscription(organization_of(websocket), query)
    except SubscriptionError as exc:
        await websocket.close(code=POLICY_VIOLATION, reason=exc.detail)
        return
    subscriber = hub.subscribe(subscription)
    try:
        await _send(websocket, [orjson.dumps(subscription.describe())], settings)
        sending = asyncio.create_task(_send_events(websocket, subscriber))
        subscriber.sender = sending
        receiving = asyncio.create_task(_receive_commands(websocket, subscriber, settings))
        done, pending = await asyncio.wait(
            {sending, receiving}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task
        for task in done:
            if task.cancelled():  # the sender of a dropped client
                continue
            with contextlib.suppress(WebSocketDisconnect, TimeoutError, RuntimeError):
                task.result()
    except (WebSocketDisconnect, TimeoutError):
        pass
    finally:
        hub.unsubscribe(subscriber)
        # Never end without a close frame: a client must learn why, and that it may reconnect.
        if websocket.application_state is WebSocketState.CONNECTED:
            code, reason = (
                (TRY_AGAIN_LATER, "too slow; reconnect")
                if subscriber.dropped
                else (INTERNAL_ERROR, "the stream ended; reconnect")
            )
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, TimeoutError):
                async with asyncio.timeout(settings.send_timeout_seconds):
                    await websocket.close(code=code, reason=reason)


async def _send(websocket: WebSocket, frame: list[bytes], settings: LiveSettings) -> None:
    """One text frame; a client that does not take it in time is given up."""
    async with asyncio.timeout(settings.send_timeout_seconds):
        await websocket.send_text((b"[" + b",".join(frame) + b"]").decode())


async def _send_events(websocket: WebSocket, subscriber: Subscriber) -> None:
    # No timeout per frame (a timer per send is costly at thousands a second): a client
    # that stops reading falls behind until its buffer overflows, and is dropped then.
    while True:
        frame = await subscriber.next_frame()
        if not frame:  # dropped as too slow
            return
        await websocket.send_text((b"[" + b",".join(frame) + b"]").decode())


async def _receive_commands(
    websocket: WebSocket, subscriber: Subscriber, settings: LiveSettings
) -> None:
    while True:
        message = await websocket.receive_text()
        try:
            command = orjson.loads(message)
            if not isinstance(command, dict):
                raise SubscriptionError("action", "a message must be a JSON object")
            action = command.get("action")
            if action == "ping":
                reply: dict[str, Any] = {"type": "pong"}
            elif action == "subscribe":
                subscriber.resubscribe(parse_subscription(organization_of(websocket), command))
                reply = subscriber.subscription.describe()
            else:
                raise SubscriptionError("action", "action must be 'subscribe' or 'ping'")
        except orjson.JSONDecodeError:
            reply = {"type": "error", "field": "message", "detail": "not valid JSON"}
        except SubscriptionError as exc:
            reply = {"type": "error", "field": exc.field, "detail": exc.detail}
        await _send(websocket, [orjson.dumps(reply)], settings)


@router.get(
    "/sse",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def live_events(
    request: Request,
    organization: OrganizationId,
    incident_ids: IncidentIds = [],  # noqa: B006 (FastAPI copies defaults per request)
    service_ids: ServiceIds = [],  # noqa: B006
) -> StreamingResponse:
    """Changes as they happen, as Server-Sent Events: the fallback for clients that cannot
    use the WebSocket. Each event's SSE `event` is its type and `data` its JSON."""
    hub: Hub = request.app.state.live_hub
    settings: LiveSettings = request.app.state.live_settings
    subscription = Subscription(
        str(organization),
        frozenset(str(i) for i in incident_ids),
        frozenset(str(s) for s in service_ids),
    )
    subscriber = hub.subscribe(subscription)
    return StreamingResponse(
        _event_stream(hub, subscriber, settings),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _event_stream(
    hub: Hub, subscriber: Subscriber, settings: LiveSettings
) -> AsyncIterator[bytes]:
    try:
        yield _sse([orjson.dumps(subscriber.subscription.describe())])
        while True:
            try:
                async with asyncio.timeout(settings.heartbeat_seconds):
                    frame = await subscriber.next_frame()
            except TimeoutError:
                yield b": keep-alive\n\n"  # keeps proxies from closing an idle stream
                continue
            if not frame:
                yield b'event: dropped\ndata: {"type":"dropped","detail":"too slow"}\n\n'
                return
            yield _sse(frame)
    finally:
        hub.unsubscribe(subscriber)


def _sse(frame: list[bytes]) -> bytes:
    """Events in SSE wire format, each named by its type."""
    parts = []
    for encoded in frame:
        kind = orjson.loads(encoded).get("type", "message")
        parts.append(b"event: " + kind.encode() + b"\ndata: " + encoded + b"\n\n")
    return b"".join(parts)
