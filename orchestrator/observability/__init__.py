"""Metrics (Prometheus), structured logs and webhooks: shared by the coordinator and the agents."""
