"""An incident's timeline (`/api/incidents/{id}/timeline`)."""
