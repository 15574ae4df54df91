"""Evidence gathering and root-cause analysis: findings from Prometheus, Loki, Tempo and
Kubernetes, ranked into explained hypotheses."""
