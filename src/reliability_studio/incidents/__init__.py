"""Incidents (`/api/incidents`): lifecycle, severity and links to services."""
