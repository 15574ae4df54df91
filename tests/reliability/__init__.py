"""Reliability under faults: kill -9 under load, PostgreSQL outages, graceful shutdown."""
