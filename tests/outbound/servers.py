"""A tiny HTTP server on any loopback address (127.0.0.2 too), recording what reaches it."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class Recorder:
    """`with Recorder("127.0.0.1") as server:` answers every request with `status` and
    `headers`, and keeps each request's `Host` header in `hosts`; over TLS with `tls`."""

    def __init__(
        self,
        address: str = "127.0.0.1",
        status: int = 204,
        headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.status = status
        self.headers = headers or {}
        self.hosts: list[str] = []
        self.scheme = "https" if tls else "http"
        self._server = ThreadingHTTPServer((address, 0), self._handler())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.address = address
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, host: str | None = None, path: str = "/hook") -> str:
        """This server's URL, under another name (resolved by the test's resolver) if given."""
        return f"{self.scheme}://{host or self.address}:{self.port}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                recorder.hosts.append(self.headers.get("host", ""))
                self.send_response(recorder.status)
                for name, value in recorder.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = _answer  # noqa: N815 - http.server's naming
            do_POST = _answer  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        return Handler

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
