"""`GET /metrics`: the Prometheus exposition of every family in `gatehouse.kit.metrics`."""
