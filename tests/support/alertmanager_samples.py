"""Known answers from Alertmanager itself, shared by the fingerprint and ingestion tests."""

from __future__ import annotations

# A label set Alertmanager itself reported with this fingerprint (prometheus/alertmanager#2233).
REAL_LABELS = {
    "alertname": "TEST122",
    "alias": "TEST",
    "category": "infrastructure",
    "description": "TEST",
    "env": "dev",
    "instance": "dev22-web",
    "job": "phpfpm",
    "receivers": "slack|pagerduty",
    "resolved": "yes",
    "severity": "critical",
    "uuid": "bAuFfhGW",
}
REAL_FINGERPRINT = "125d2b1884ab0586"
