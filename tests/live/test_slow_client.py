"""Specification: a client that stops reading never stalls the others, and is dropped."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reliability_studio.config import Settings
from tests.live.conftest import LiveServer, add_note, create_incident, serve_app

BUFFER = 20


@pytest.fixture
def small_buffer_server(settings: Settings) -> Iterator[LiveServer]:
    """The app with room for only BUFFER events waiting per client, and small kernel
    buffers, so that a client that stops reading is soon behind."""
    yield from serve_app(
        settings.model_copy(
            update={"live_client_buffer": BUFFER, "live_frame_interval_seconds": 0}
        ),
        send_buffer_bytes=8192,
    )


def stalled_client(base_url: str) -> socket.socket:
    """A WebSocket client that completes the handshake, then never reads again."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b"101" in sock.recv(1024).split(b"\r\n", 1)[0]
    return sock


def is_event(event_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("id") == event_id


def dropped_count(server: LiveServer) -> float:
    for line in server.http.get("/metrics").text.splitlines():
        if line.startswith("live_clients_dropped_total "):
            return float(line.split()[1])
    raise AssertionError("live_clients_dropped_total is not exported")


def test_a_client_that_stops_reading_does_not_delay_the_others_and_is_dropped(
    small_buffer_server: LiveServer,
) -> None:
    server = small_buffer_server
    incident_id = create_incident(server, "Checkout errors")
    stalled = stalled_client(server.base_url)
    try:
        with server.ws(f"?incident_id={incident_id}") as reader:
            slowest = 0.0
            for n in range(300):
                posted = time.monotonic()
                event_id = add_note(server, incident_id, f"update {n} " + "x" * 190)
                reader.wait_for(is_event(event_id), timeout=1.0)
                slowest = max(slowest, time.monotonic() - posted)
                if n % 10 == 9 and dropped_count(server) >= 1:
                    break
            assert dropped_count(server) == 1, "the stalled client was never dropped"
            assert slowest < 1.0
            # And the stream goes on for the client that reads.
            last = add_note(server, incident_id, "after the drop")
            reader.wait_for(lambda e: e.get("id") == last, timeout=1.0)
    finally:
        stalled.close()
