"""An app served by a real uvicorn in a thread of the test process, on 127.0.0.1.

For clients that need a real socket (WebSocket and SSE clients with timeouts) without the
start-up cost of a separate process. The lifespan runs as in `serve`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from tests.support.postgres import free_port

START_TIMEOUT_SECONDS = 15.0


@contextmanager
def served_in_thread(
    app: FastAPI, send_buffer_bytes: int | None = None, port: int | None = None
) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL (`http://127.0.0.1:PORT`).

    `port` fixes the port (a redirect URL must name it in advance). `send_buffer_bytes`
    fixes the kernel's send buffer of every connection (accepted
    sockets inherit it from the listener), instead of letting it grow to megabytes: a
    client that stops reading then stalls the server's writes at once.
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer_bytes is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    listener.bind(("127.0.0.1", port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        listener.close()
