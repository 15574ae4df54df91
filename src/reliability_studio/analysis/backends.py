"""Building the evidence backends from the settings; an empty URL turns a backend off."""

from __future__ import annotations

import logging

from reliability_studio.analysis.gatherer import Backends
from reliability_studio.config import Settings
from reliability_studio.telemetry.kubernetes import (
    KubernetesClient,
    KubernetesConfigError,
    load_config,
)
from reliability_studio.telemetry.loki import LokiClient
from reliability_studio.telemetry.prometheus import PrometheusClient
from reliability_studio.telemetry.tempo import TempoClient

log = logging.getLogger(__name__)


def build_backends(settings: Settings) -> Backends:
    """Clients for every backend the settings configure (each with the analysis timeout)."""
    timeout = settings.analysis_backend_timeout_seconds
    backends = Backends()
    if settings.prometheus_url.strip():
        backends.prometheus = PrometheusClient(
            settings.prometheus_url, timeout_seconds=timeout, attempts=2
        )
    if settings.loki_url.strip():
        backends.loki = LokiClient(
            settings.loki_url, timeout_seconds=timeout, attempts=2, tenant=settings.loki_tenant
        )
    if settings.tempo_url.strip():
        backends.tempo = TempoClient(
            settings.tempo_url, timeout_seconds=timeout, attempts=2, tenant=settings.tempo_tenant
        )
    if settings.kubernetes_config != "none":
        try:
            config = load_config(settings.kubernetes_config or None)
        except KubernetesConfigError as error:
            log.info("Kubernetes evidence is off: %s", error)
        else:
            backends.kubernetes = KubernetesClient(config, timeout_seconds=timeout, attempts=2)
    return backends


async def close_backends(backends: Backends) -> None:
    """Close every client's connections."""
    for client in (backends.prometheus, backends.loki, backends.tempo, backends.kubernetes):
        if client is not None:
            await client.close()
