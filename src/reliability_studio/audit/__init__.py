"""The audit log: every write made through the API, recorded in its own transaction."""
