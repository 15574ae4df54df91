"""Service level objectives (`/api/slos`)."""
