"""An incident's tasks, its action items (`/api/incidents/{id}/tasks`)."""
