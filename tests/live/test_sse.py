"""Specification of the Server-Sent Events fallback `/api/sse`, on each backend."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx

from tests.live.conftest import LiveServer, add_note, create_incident


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, object]]]:
    """(event name, data) of each SSE event; comments (keep-alives) are skipped."""
    name = "message"
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))
            name = "message"


def test_a_stream_client_sees_a_timeline_event_named_by_its_type(live_server: LiveServer) -> None:
    incident_id = create_incident(live_server, "Checkout errors")
    with (
        httpx.Client(base_url=live_server.base_url, timeout=5) as client,
        client.stream("GET", "/api/sse", params={"incident_id": incident_id}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.iter_lines())
        assert next(events)[0] == "subscribed"
        posted = time.monotonic()
        event_id = add_note(live_server, incident_id, "Rolled back")
        name, data = next((n, d) for n, d in events if d.get("id") == event_id)
        assert time.monotonic() - posted < 1.0
    assert name == "timeline_event.created"
    assert data["type"] == name


def test_a_bad_id_is_a_422_naming_the_parameter(live_server: LiveServer) -> None:
    response = live_server.http.get("/api/sse", params={"service_id": "nope"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "service_id" in response.text
