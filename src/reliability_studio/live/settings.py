"""The live stream's settings, taken from the application's."""

from __future__ import annotations

from dataclasses import dataclass

from reliability_studio.config import Settings


@dataclass(frozen=True)
class LiveSettings:
    """How the live stream paces, buffers and gives up on clients."""

    client_buffer: int
    send_timeout_seconds: float
    heartbeat_seconds: float
    publish_interval_seconds: float


def live_settings(settings: Settings) -> LiveSettings:
    """The LIVE_* settings of `settings`."""
    return LiveSettings(
        client_buffer=settings.live_client_buffer,
        send_timeout_seconds=settings.live_send_timeout_seconds,
        heartbeat_seconds=settings.live_heartbeat_seconds,
        publish_interval_seconds=settings.live_publish_interval_seconds,
    )
