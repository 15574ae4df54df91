"""Our own Prometheus metrics, served at `/metrics`.

Each application gets its own registry, so that several apps in one process (tests) never
collide and the numbers are those of this app alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import Pool, QueuePool

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counters and latency histograms, by method, route template and status."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to last response byte, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.alerts_received = Counter(
            "alerts_received_total",
            "Alert messages stored, by integration and outcome "
            "(created, updated, duplicate, stale).",
            ["integration", "outcome"],
            registry=self.registry,
        )
        self.alerts_refused = Counter(
            "alerts_refused_total",
            "Ingestion requests refused before storing, by integration and reason.",
            ["integration", "reason"],
            registry=self.registry,
        )
        self.alerts_unknown_service = Counter(
            "alerts_unknown_service_total",
            "Alert messages naming a service that is not in the catalog.",
            registry=self.registry,
        )
        self.correlation_alerts = Counter(
            "alerts_correlated_total",
            "Alerts the correlator has acted on.",
            registry=self.registry,
        )
        self.correlation_pass_seconds = Histogram(
            "alert_correlation_pass_seconds",
            "Duration of correlation passes that took alerts.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.live_clients = Gauge(
            "live_clients",
            "Clients connected to the live stream (WebSocket and SSE) of this process.",
            registry=self.registry,
        )
        self.live_clients_dropped = Counter(
            "live_clients_dropped_total",
            "Live clients disconnected because they did not keep up.",
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def watch_pool(self, pool_of: Callable[[], Pool | None]) -> None:
        """Expose the database pool's gauges, read at scrape time."""
        self.registry.register(_PoolCollector(pool_of))


class _PoolCollector(Collector):
    def __init__(self, pool_of: Callable[[], Pool | None]) -> None:
        self._pool_of = pool_of

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._pool_of()
        if not isinstance(pool, QueuePool):
            return
        gauges = {
            "db_pool_size": ("Connections the pool keeps open.", pool.size()),
            "db_pool_checked_out": ("Connections in use by requests.", pool.checkedout()),
            "db_pool_checked_in": ("Idle connections in the pool.", pool.checkedin()),
            "db_pool_overflow": ("Connections open beyond the pool size.", pool.overflow()),
        }
        for name, (documentation, value) in gauges.items():
            yield GaugeMetricFamily(name, documentation, value=value)
