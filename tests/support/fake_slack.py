"""A stand-in for Slack's incoming webhooks and `chat.postMessage`, on 127.0.0.1.

Slack cannot be reached from the tests, so the Slack sender is tested against this server.
It is a contract test: the server answers as Slack's documented APIs do, and nothing more.
Sources (docs.slack.dev): "Sending messages using incoming webhooks" (200 `ok`; 400
`invalid_payload` / `no_text`, 404 `no_service`, as plain text), `chat.postMessage` (HTTP 200
`{ok: true, channel, ts, message}` or `{ok: false, error}`: `not_authed`, `invalid_auth`,
`channel_not_found`, `no_text`, `ratelimited`), and "Rate limits" (429 with `Retry-After` in
seconds, about one message a second per channel).

What it answers:

- `POST /services/T000/B000/XXXX` (the webhook): `ok`; a body that is not JSON → 400
  `invalid_payload`; neither `text` nor `blocks` → 400 `no_text`; another `/services/...` path
  → 404 `no_service`.
- `POST /api/chat.postMessage`: checks `Authorization: Bearer <token>` (`not_authed` without,
  `invalid_auth` for another token), the channel (`channel_not_found`), the text; answers
  `{ok: true, channel: <id>, ts, message}` with a `ts` that grows with every message.
- Anything else: 404.

Every request is recorded (path, lower-case headers, JSON body). `answer_with` (a status,
a body, headers such as `Retry-After`), `refuse_with` (HTTP 200 `{ok: false, error}`) and
`hang` script the next requests (or all of them).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from tests.support.postgres import free_port

WEBHOOK_PATH = "/services/T000/B000/XXXX"
TOKEN = "xoxb-0000-0000-test"  # the stand-in's own token
CHANNELS = {"#incidents": "C0INCIDENTS", "C0INCIDENTS": "C0INCIDENTS"}
HANG_SECONDS = 10.0
FIRST_TS = 1_700_000_000


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
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    """Slack's webhook and Web API on a free port of 127.0.0.1."""

    def __init__(self, *, token: str = TOKEN, channels: dict[str, str] | None = None) -> None:
        self.token = token
        self.channels = dict(CHANNELS if channels is None else channels)
        self.requests: list[RecordedRequest] = []
        self.messages: list[dict[str, Any]] = []  # what chat.postMessage accepted, with ts
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._persistent: _Fault | None = None
        self._closing = threading.Event()
        self._count = 0
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

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def api_base(self) -> str:
        return self.url + "/api"

    def answer_with(
        self,
        status: int,
        body: str = "",
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` requests (all when None) with `status`, `body`, `headers`."""
        self._script(_Fault("answer", status, body, content_type, dict(headers or {})), times)

    def refuse_with(
        self, error: str, *, headers: dict[str, str] | None = None, times: int | None = 1
    ) -> None:
        """Answer the next Web API calls as Slack refuses one: HTTP 200 `{ok: false, error}`."""
        body = json.dumps({"ok": False, "error": error})
        self.answer_with(
            200,
            body,
            headers=headers,
            content_type="application/json; charset=utf-8",
            times=times,
        )

    def hang(self, *, times: int | None = 1) -> None:
        """Accept the next `times` requests (all when None) and never answer them."""
        self._script(_Fault("hang"), times)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
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

    # --- Slack's side ---------------------------------------------------------------------

    def _webhook(self, path: str, payload: Any) -> tuple[int, str, str]:
        if path != WEBHOOK_PATH:
            return 404, "no_service", "text/plain; charset=utf-8"
        if not isinstance(payload, dict):
            return 400, "invalid_payload", "text/plain; charset=utf-8"
        if not payload.get("text") and not payload.get("blocks"):
            return 400, "no_text", "text/plain; charset=utf-8"
        return 200, "ok", "text/plain; charset=utf-8"

    def _post_message(self, headers: dict[str, str], payload: Any) -> dict[str, Any]:
        authorization = headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return {"ok": False, "error": "not_authed"}
        if authorization.removeprefix("Bearer ") != self.token:
            return {"ok": False, "error": "invalid_auth"}
        if not isinstance(payload, dict):
            return {"ok": False, "error": "invalid_arguments"}
        channel = self.channels.get(str(payload.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not payload.get("text") and not payload.get("blocks"):
            return {"ok": False, "error": "no_text"}
        with self._lock:
            self._count += 1
            ts = f"{FIRST_TS + self._count}.{self._count * 100:06d}"
            message = {"type": "message", "text": payload.get("text", ""), "ts": ts}
            if payload.get("thread_ts"):
                message["thread_ts"] = payload["thread_ts"]
            self.messages.append({**message, "channel": channel})
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        slack = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload: Any = json.loads(raw)
                except ValueError:
                    payload = None
                headers = {name.lower(): value for name, value in self.headers.items()}
                path = self.path.split("?", 1)[0]
                with slack._lock:
                    slack.requests.append(RecordedRequest(path, headers, raw, payload))
                fault = slack._next_fault()
                if fault is not None and fault.kind == "hang":
                    slack._closing.wait(HANG_SECONDS)
                    self.close_connection = True
                    return
                if fault is not None:
                    self._send(fault.status, fault.body, fault.content_type, fault.headers)
                elif path.startswith("/services/"):
                    self._send(*slack._webhook(path, payload))
                elif path == "/api/chat.postMessage":
                    answer = slack._post_message(headers, payload)
                    self._send(200, json.dumps(answer), "application/json; charset=utf-8")
                else:
                    self._send(404, "404 page not found", "text/plain; charset=utf-8")

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
