"""Pure ASGI middleware: request ids, access logs, metrics, body limits, crash safety.

Written as plain ASGI rather than `BaseHTTPMiddleware`, which costs a task per request.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reliability_studio.api.problems import problem_response
from reliability_studio.metrics import Metrics

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = logging.getLogger("reliability_studio.access")
error_log = logging.getLogger("reliability_studio.errors")


class BodyTooLargeError(StarletteHTTPException):
    """The request body passed the configured limit while being read.

    An HTTPException, because FastAPI turns any other exception raised while it reads the
    body into a 400 "error parsing the body"; this one it lets through to the 413 handler.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large_detail(max_bytes))


def _too_large_detail(max_bytes: int) -> str:
    return f"The request body is larger than {max_bytes} bytes."


class RequestContextMiddleware:
    """Give each request an id, log it, count it, and turn a crash into a 500 problem.

    The request id is echoed from `X-Request-ID` when it is safe, generated otherwise,
    and returned on every response.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception(
                "unhandled exception", extra={"request_id": request_id, "path": scope["path"]}
            )
            if not response_started:
                status = 500
                response = problem_response(
                    500,
                    "Internal Server Error",
                    "An unexpected error occurred; quote the request id when reporting it.",
                    request_id=request_id,
                )
                await response(scope, receive, send)
        finally:
            duration = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe_request(scope["method"], route, status, duration)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "request_id": request_id,
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not response_started:
                await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE.phrase,
            _too_large_detail(self.max_bytes),
            request_id=scope.get("state", {}).get("request_id"),
        )
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _request_id_from(scope: Scope) -> str:
    supplied = _header(scope, b"x-request-id")
    if supplied and _SAFE_REQUEST_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    """The matched route's path template, so that metrics do not explode per id."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
