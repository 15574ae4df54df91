"""Alert handling: Alertmanager-compatible fingerprints and label matchers."""
