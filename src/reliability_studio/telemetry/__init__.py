"""Typed clients for the observability backends: Prometheus (Loki, Tempo, Kubernetes later)."""
