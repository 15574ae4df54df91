"""A local webhook receiver on 127.0.0.1: a real HTTP server, in a thread, for the webhook
sender's tests.

It records every request (method, path, headers, raw body) and answers each with the next
scripted `Answer` (status, headers, body, perhaps after a delay, or never), or with the
`default` answer (204) once the script runs out.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from tests.support.postgres import free_port


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # time.monotonic() on arrival


@dataclass(frozen=True)
class Answer:
    """What the receiver answers to one request."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_seconds: float = 0.0  # wait this long before answering
    hold: bool = False  # never answer: keep the request open until the receiver stops


class _Server(ThreadingHTTPServer):
    # Every request is a new connection (HTTP/1.0): room for many senders connecting at once.
    request_queue_size = 128


class WebhookReceiver:
    """`with WebhookReceiver() as receiver:` serves on `receiver.url` until the block ends."""

    def __init__(self, default: Answer | None = None) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.answers: deque[Answer] = deque()
        self.default = default or Answer()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/incidents"

    def answer(self, *answers: Answer) -> None:
        """Scripts the answers to the next requests, in order."""
        with self._lock:
            self.answers.extend(answers)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            method="POST",
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.monotonic(),
                        )
                    )
                    answer = receiver.answers.popleft() if receiver.answers else receiver.default
                if answer.hold:
                    receiver._stopping.wait(60)
                    self.close_connection = True
                    return
                if answer.delay_seconds and receiver._stopping.wait(answer.delay_seconds):
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: pytest shows what matters."""

        return Handler

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()  # held and delayed requests end now, unanswered
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
