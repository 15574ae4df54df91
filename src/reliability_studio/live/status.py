"""The live stream's state, as `/health` reports it."""

from __future__ import annotations

from typing import Any

from reliability_studio.live.bus import PostgresBus
from reliability_studio.live.hub import Hub


def live_status(app_state: Any) -> dict[str, Any]:
    """`off` when disabled; `connecting` while a PostgreSQL listener is not connected (events
    wait, clients will be told to resync); otherwise `ok`. With the client count."""
    hub: Hub | None = getattr(app_state, "live_hub", None)
    if hub is None:
        return {"status": "off"}
    bus: PostgresBus | None = getattr(app_state, "live_bus", None)
    connected = bus is None or bus.connected.is_set()
    return {"status": "ok" if connected else "connecting", "clients": hub.client_count}
