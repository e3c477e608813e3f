"""Every Prometheus collector of the controller, owned by one recorder.

Tests pass a fresh `CollectorRegistry()` and read values with
`registry.get_sample_value`. Labels stay bounded: rpc, code, model, version,
strategy; never request ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

_PHASES = ("PENDING", "PROGRESSING", "PAUSED", "SUCCEEDED", "ROLLING_BACK", "ROLLED_BACK", "ABORTED", "FAILED")
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

        # --- deployments and traffic ---
        self.deployment_state = Enum("modelctl_deployment_state", "Phase of the newest deployment of a model",
                                     ["model"], states=list(_PHASES), registry=r)
        self.deployment_step = Gauge("modelctl_deployment_step", "Current step of the newest deployment of a model",
                                     ["model"], registry=r)
        self.deployment_traffic = Gauge("modelctl_deployment_traffic_percent",
                                        "Share of traffic on the version being deployed", ["model"], registry=r)
        self.deployment_events = Counter("modelctl_deployment_events_total", "Deployment events, by kind",
                                         ["model", "kind"], registry=r)
        self.rollbacks = Counter("modelctl_rollbacks_total", "Deployments that rolled back (gate breach)",
                                 ["model"], registry=r)
        self.traffic_weight = Gauge("modelctl_traffic_weight_percent", "Traffic split: percent per version",
                                    ["model", "version"], registry=r)
        # --- model performance, as reported with ReportMetrics ---
        self.model_requests = Counter("modelctl_model_requests_total", "Requests served, as reported",
                                      ["model", "version"], registry=r)
        self.model_errors = Counter("modelctl_model_errors_total", "Failed requests, as reported",
                                    ["model", "version"], registry=r)
        self._traffic_versions: dict[str, set[str]] = {}
        self.rollback_seconds = Histogram("modelctl_fast_rollback_seconds",
                                          "From ingesting a breaching report to traffic back on stable",
                                          buckets=_RPC_BUCKETS, registry=r)

    def observe_deployment_event(self, event) -> None:  # type: ignore[no-untyped-def]
        model = event.model
        self.deployment_events.labels(model=model, kind=event.kind.value).inc()
        self.deployment_state.labels(model=model).state(event.phase.value)
        self.deployment_step.labels(model=model).set(event.step)
        self.deployment_traffic.labels(model=model).set(event.traffic_percent)
        if event.kind.value == "ROLLBACK_STARTED":
            self.rollbacks.labels(model=model).inc()

    def set_traffic(self, model: str, weights: dict[str, float]) -> None:
        """Mirror a model's split; versions that left it stop being exported."""
        for version in self._traffic_versions.get(model, set()) - set(weights):
            try:
                self.traffic_weight.remove(model, version)
            except KeyError:
                pass
        for version, percent in weights.items():
            self.traffic_weight.labels(model=model, version=version).set(percent)
        self._traffic_versions[model] = set(weights)

    def observe_rpc(self, rpc: str, code: str, seconds: float) -> None:
        self.rpc_requests.labels(rpc=rpc, code=code).inc()
        self.rpc_duration.labels(rpc=rpc).observe(seconds)
