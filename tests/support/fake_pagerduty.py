"""A stand-in for PagerDuty's Events API v2 (`POST /v2/enqueue`), on 127.0.0.1.

PagerDuty cannot be reached from the tests, so the PagerDuty sender is tested against this
server. It is a contract test: the server answers as the documented API does, and nothing
more. Sources: developer.pagerduty.com, "Events API v2 Overview" and "Send an Alert Event"
(PagerDuty/developer-docs `docs/events-API-v2/`): 202 `{status: "success", message: "Event
processed", dedup_key}`; 400 `{status: "invalid event", message: "Event object is invalid",
errors: [...]}`; 429 when over the integration's rate; 5xx when PagerDuty is unwell.

What it checks, as PagerDuty does: JSON; `routing_key` present; `event_action` one of
trigger/acknowledge/resolve; `dedup_key` present for acknowledge and resolve; for a trigger,
`payload.summary`, `payload.source` and `payload.severity` (critical/error/warning/info).
A trigger without a `dedup_key` gets a generated one, as PagerDuty does.

Every request is recorded (path, lower-case headers, JSON body). `answer_with` (a status, a
body, headers such as `Retry-After`) and `hang` script the next requests (or all of them).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from tests.support.postgres import free_port

HANG_SECONDS = 10.0
ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it. Header names are lower case; `json` is None when the
    body was not JSON."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None


@dataclass(frozen=True)
class _Fault:
    kind: Literal["answer", "hang"]
    status: int = 500
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def invalid_event(*errors: str) -> str:
    """PagerDuty's 400 body for an event it cannot read."""
    return json.dumps(
        {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}
    )


class FakePagerDuty:
    """The Events API v2 on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.events: list[dict[str, Any]] = []  # the events accepted (202), in order
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._persistent: _Fault | None = None
        self._closing = threading.Event()
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer_with(
        self,
        status: int,
        body: str = "",
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` requests (all when None) with `status`, `body`, `headers`."""
        self._script(_Fault("answer", status, body, content_type, dict(headers or {})), times)

    def hang(self, *, times: int | None = 1) -> None:
        """Accept the next `times` requests (all when None) and never answer them."""
        self._script(_Fault("hang"), times)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakePagerDuty:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _script(self, fault: _Fault, times: int | None) -> None:
        with self._lock:
            if times is None:
                self._persistent = fault
            else:
                self._faults.extend([fault] * times)

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            return self._persistent

    # --- PagerDuty's side -----------------------------------------------------------------

    def _enqueue(self, event: Any) -> tuple[int, str]:
        if not isinstance(event, dict):
            return 400, invalid_event("Event object is not JSON")
        errors: list[str] = []
        if not event.get("routing_key"):
            errors.append("'routing_key' is missing or blank")
        action = event.get("event_action")
        if action not in ACTIONS:
            errors.append("'event_action' is invalid (must be trigger, acknowledge or resolve)")
        if action in ("acknowledge", "resolve") and not event.get("dedup_key"):
            errors.append("'dedup_key' is missing or blank")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing or not an object")
            else:
                for name in ("summary", "source"):
                    if not payload.get(name):
                        errors.append(f"'payload.{name}' is missing or blank")
                if payload.get("severity") not in SEVERITIES:
                    errors.append("'payload.severity' is invalid")
        if errors:
            return 400, invalid_event(*errors)
        key = str(event.get("dedup_key") or uuid.uuid4().hex)
        with self._lock:
            self.events.append(event)
        return 202, json.dumps(
            {"status": "success", "message": "Event processed", "dedup_key": key}
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        pagerduty = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    event: Any = json.loads(raw)
                except ValueError:
                    event = None
                headers = {name.lower(): value for name, value in self.headers.items()}
                path = self.path.split("?", 1)[0]
                with pagerduty._lock:
                    pagerduty.requests.append(RecordedRequest(path, headers, raw, event))
                fault = pagerduty._next_fault()
                if fault is not None and fault.kind == "hang":
                    pagerduty._closing.wait(HANG_SECONDS)
                    self.close_connection = True
                    return
                if fault is not None:
                    self._send(fault.status, fault.body, fault.content_type, fault.headers)
                elif path == "/v2/enqueue":
                    self._send(*pagerduty._enqueue(event), "application/json")
                else:
                    self._send(404, json.dumps({"status": "not found"}), "application/json")

            def _send(
                self,
                status: int,
                body: str,
                content_type: str,
                headers: dict[str, str] | None = None,
            ) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read `requests`, not stderr."""

        return Handler
