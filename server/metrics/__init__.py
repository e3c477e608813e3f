"""Prometheus metrics: the recorder owning every collector, and the /metrics exporter."""
