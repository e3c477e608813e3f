"""Every Prometheus collector of the controller, owned by one recorder.

Tests pass a fresh `CollectorRegistry()` and read values with
`registry.get_sample_value`. Labels stay bounded: rpc, code, model, version,
strategy; never request ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class MetricsRecorder:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpc_requests = Counter("modelctl_rpc_requests_total", "RPCs handled, by method and status code",
                                    ["rpc", "code"], registry=r)
        self.rpc_duration = Histogram("modelctl_rpc_duration_seconds", "RPC handling time, by method", ["rpc"],
                                      buckets=_RPC_BUCKETS, registry=r)
        self.process_cpu = Gauge("modelctl_process_cpu_percent", "CPU used by the controller, percent of one core",
                                 registry=r)
        self.process_memory = Gauge("modelctl_process_resident_memory_bytes", "Resident memory of the controller",
                                    registry=r)
        self.system_cpu = Gauge("modelctl_system_cpu_percent", "CPU used on the machine, percent", registry=r)
        self.system_memory = Gauge("modelctl_system_memory_used_percent", "Memory used on the machine, percent",
                                   registry=r)
        self.open_files = Gauge("modelctl_process_open_fds", "Open file descriptors of the controller", registry=r)
        self.loop_lag = Gauge("modelctl_event_loop_lag_seconds", "How late the event loop runs a ready callback",
                              registry=r)
        self.database_up = Gauge("modelctl_database_up", "1 when the database answers", registry=r)
        self.database_latency = Gauge("modelctl_database_latency_seconds", "Round trip of a database ping",
                                      registry=r)
        self.models = Gauge("modelctl_registry_models", "Registered models", registry=r)
        self.versions = Gauge("modelctl_registry_versions", "Registered model versions not archived", registry=r)
        self.uptime = Gauge("modelctl_uptime_seconds", "Seconds since the controller started", registry=r)

    def observe_rpc(self, rpc: str, code: str, seconds: float) -> None:
        self.rpc_requests.labels(rpc=rpc, code=code).inc()
        self.rpc_duration.labels(rpc=rpc).observe(seconds)
