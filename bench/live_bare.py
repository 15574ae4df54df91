"""The bare ASGI broadcaster `bench.live_fanout` measures its ceiling with.

A WebSocket endpoint that keeps every socket, and a POST endpoint that queues the JSON it
receives as an event shaped like ours. Every FRAME_SECONDS the queued events go out as one
frame to every socket at once: the pacing our stream uses, with no database, no
LISTEN/NOTIFY, no subscriptions and no per-client buffers. The cost of the server stack
alone. (Sending each event to each socket as it comes is far slower: 50,000 sends a
second for 500 clients at 100 events/s.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

FRAME_SECONDS = 0.05
sockets: set[WebSocket] = set()
queued: list[bytes] = []
ready = asyncio.Event()


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text('[{"type":"subscribed"}]')
    sockets.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.discard(websocket)


async def send(websocket: WebSocket, text: str) -> None:
    with contextlib.suppress(Exception):
        await websocket.send_text(text)


async def publish(request: Request) -> Response:
    body = orjson.loads(await request.body())
    queued.append(orjson.dumps({"type": "timeline_event.created", "data": body}))
    ready.set()
    return JSONResponse({"id": "ok"}, status_code=201)


async def broadcast_forever() -> None:
    while True:
        await ready.wait()
        ready.clear()
        frame = (b"[" + b",".join(queued) + b"]").decode()
        queued.clear()
        await asyncio.gather(*(send(websocket, frame) for websocket in list(sockets)))
        await asyncio.sleep(FRAME_SECONDS)


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(broadcast_forever())
    yield
    task.cancel()


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        WebSocketRoute("/ws", ws),
        Route("/publish", publish, methods=["POST"]),
        Route("/health", health),
    ],
    lifespan=lifespan,
)
