"""The framework's ceiling: a bare ASGI endpoint answering a fixed JSON body.

Served by the same uvicorn, event loop (uvloop), HTTP parser (httptools) and worker count as
`reliability-studio serve`, so that the ratio of a scenario to it is the share of this
machine's HTTP capacity that our code leaves.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"status":"ok","service":"reliability-studio"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer every HTTP request with BODY; accept the lifespan protocol."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
