"""Every Prometheus collector of the controller, owned by one recorder.

Tests pass a fresh `CollectorRegistry()` and read values with
`registry.get_sample_value`. Labels stay bounded: rpc, code, model, version,
strategy, kind, gate, verdict, severity; never request ids. Names follow the
Prometheus conventions: base units (`_seconds`, `_bytes`), `_total` counters,
ratios 0-1 (`_ratio`) except the traffic split, kept in the percent people set
and read everywhere else (docs/observability.md says why, metric by metric).
Process and platform numbers come from prometheus_client's own collectors
(`process_*`, `python_*`), registered on the same registry, not copies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np
from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

if TYPE_CHECKING:
    from ..deployments.model import GateEvaluation

_PHASES = ("PENDING", "PROGRESSING", "PAUSED", "SUCCEEDED", "ROLLING_BACK", "ROLLED_BACK", "ABORTED", "FAILED")
_STRATEGIES = ("immediate", "blue_green", "canary", "rolling")
_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Served-request latency as reported by the serving code: 1 ms .. 30 s.
_MODEL_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: A rollout takes seconds (immediate) to hours (a slow canary).
_ROLLOUT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)
#: A connected pipeline acknowledges in milliseconds; one that was down, when it comes back.
_ACK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_PIPELINE_STATES = ("IDLE", "RUNNING", "OPTIMIZING", "PAUSED", "FAILED")
_DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class MetricsRecorder:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpc_requests = Counter("modelctl_rpc_requests_total", "RPCs handled, by method and status code",
                                    ["rpc", "code"], registry=r)
        self.rpc_duration = Histogram("modelctl_rpc_duration_seconds", "RPC handling time, by method", ["rpc"],
                                      buckets=_RPC_BUCKETS, registry=r)
        self.rpc_in_flight = Gauge("modelctl_rpc_in_flight", "Unary and client-streaming RPCs being handled now",
                                   ["rpc"], registry=r)
        self.streams_open = Gauge("modelctl_streams_open", "Server streams open now, by kind (WatchDeployment: "
                                  "deployment, StreamAlerts: alerts, ...)", ["kind"], registry=r)
        # The process (CPU seconds, resident memory, open fds, start time), the interpreter and its GC:
        # prometheus_client's standard collectors, so stock dashboards and rules work unchanged.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        if GC_COLLECTOR is not None:  # None on interpreters without gc.get_stats
            GCCollector(registry=r)
        self.system_cpu = Gauge("modelctl_system_cpu_usage_ratio", "CPU busy on the whole machine, 0-1",
                                registry=r)
        self.system_memory = Gauge("modelctl_system_memory_used_ratio",
                                   "Memory in use on the whole machine (total minus available), 0-1", registry=r)
        self.system_memory_total = Gauge("modelctl_system_memory_total_bytes", "Physical memory of the machine",
                                         registry=r)
        self.loop_lag = Gauge("modelctl_event_loop_lag_seconds", "How late the event loop runs a ready callback",
                              registry=r)
        self.database_up = Gauge("modelctl_database_up", "1 when the database answers", registry=r)
        self.database_latency = Gauge("modelctl_database_latency_seconds", "Round trip of the last database ping",
                                      registry=r)
        self.database_transactions = Histogram(
            "modelctl_database_transaction_seconds", "Database transactions from begin to commit or rollback, "
            "lock waits included, by kind (read, write)", ["kind"], buckets=_DB_BUCKETS, registry=r)
        self.models = Gauge("modelctl_registry_models", "Registered models", registry=r)
        self.versions = Gauge("modelctl_registry_versions", "Registered model versions not archived", registry=r)

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
        self.gate_evaluations = Counter("modelctl_gate_evaluations_total",
                                        "Stored gate evaluations of deployments, by gate and verdict",
                                        ["model", "gate", "verdict"], registry=r)
        self.time_to_success = Histogram("modelctl_deployment_time_to_success_seconds",
                                         "From DeployModel to SUCCEEDED, by strategy", ["strategy"],
                                         buckets=_ROLLOUT_BUCKETS, registry=r)
        for strategy in _STRATEGIES:  # at 0 from the start, so increase() over a range sees the first rollout
            self.time_to_success.labels(strategy=strategy)
        self._event_models: set[str] = set()
        self.live_version = Gauge("modelctl_model_live_version_info", "The version serving a model: 1 per "
                                  "(model, live version)", ["model", "version"], registry=r)
        self.traffic_weight = Gauge("modelctl_traffic_weight_percent", "Traffic split: percent per version",
                                    ["model", "version"], registry=r)
        # --- model performance, as reported with ReportMetrics ---
        self.model_requests = Counter("modelctl_model_requests_total", "Requests served, as reported",
                                      ["model", "version"], registry=r)
        self.model_errors = Counter("modelctl_model_errors_total", "Failed requests, as reported",
                                    ["model", "version"], registry=r)
        self.model_latency = Histogram("modelctl_model_latency_seconds", "Latency of served requests, as reported",
                                       ["model", "version"], buckets=_MODEL_LATENCY_BUCKETS, registry=r)
        self._traffic_versions: dict[str, set[str]] = {}
        # --- alerts and notifications ---
        self.alerts_open = Gauge("modelctl_alerts_open", "Open alerts, by severity", ["severity"], registry=r)
        self.alerts_raised = Counter("modelctl_alerts_raised_total", "Alerts raised, by kind and severity",
                                     ["kind", "severity"], registry=r)
        self.notifications_sent = Counter("modelctl_notifications_sent_total",
                                          "Notifications delivered, by destination scheme", ["scheme"], registry=r)
        self.notifications_failed = Counter("modelctl_notifications_failed_total",
                                            "Notifications given up after notifications.max_attempts, by scheme",
                                            ["scheme"], registry=r)
        self._pending_schemes: set[str] = set()
        self.notifications_pending = Gauge("modelctl_notifications_pending",
                                           "Notifications in the outbox still owed, by destination scheme",
                                           ["scheme"], registry=r)
        self._live: dict[str, str] = {}
        self._live_lock = threading.Lock()
        self.rollback_seconds = Histogram("modelctl_breach_to_rollback_seconds",
                                          "From receiving the report that breaches a critical gate to traffic "
                                          "back on the stable version (fast fail)",
                                          buckets=_RPC_BUCKETS, registry=r)

        # --- A/B experiments: one running experiment per model, so {model} (and arm, version) stays bounded ---
        self.experiment_samples = Gauge("modelctl_experiment_samples", "Samples per arm of a running experiment",
                                        ["model", "arm", "version"], registry=r)
        self.experiment_value = Gauge("modelctl_experiment_value",
                                      "The experiment metric per arm (rate 0-1, mean value, or mean ms)",
                                      ["model", "arm", "version"], registry=r)
        self.experiment_p_value = Gauge("modelctl_experiment_p_value",
                                        "Always-valid (sequential) p-value of the running experiment", ["model"],
                                        registry=r)
        self.experiment_lift = Gauge("modelctl_experiment_lift", "Relative lift of treatment over control",
                                     ["model"], registry=r)
        self.experiment_samples_needed = Gauge("modelctl_experiment_samples_needed",
                                               "Samples an arm still needs for the configured power", ["model"],
                                               registry=r)
        self.experiment_srm_p_value = Gauge("modelctl_experiment_srm_p_value",
                                            "Sample-ratio-mismatch p-value (tiny: the split is broken)", ["model"],
                                            registry=r)
        self.experiment_significant = Gauge("modelctl_experiment_significant",
                                            "1 once the running experiment is significant", ["model"], registry=r)
        self._experiment_arms: dict[str, list[tuple[str, str]]] = {}
        # --- drift: versions the drift engine holds (bounded), features at most drift.max_features each ---
        self.drift_score = Gauge("modelctl_drift_score", "Drift of a model version over drift.window, by kind: "
                                 "data (largest feature PSI), prior (PSI of predictions), concept (accuracy drop)",
                                 ["model", "version", "kind"], registry=r)
        self.drift_feature_psi = Gauge("modelctl_drift_feature_psi", "PSI of one input feature over drift.window",
                                       ["model", "version", "feature"], registry=r)
        self._drift_features: dict[tuple[str, str], set[str]] = {}
        # --- pipelines: labels are states and command kinds, never pipeline names or command ids ---
        self.pipelines = Gauge("modelctl_pipelines", "Registered pipelines, by the state they last reported",
                               ["state"], registry=r)
        self.pipelines_stale = Gauge("modelctl_pipelines_stale", "Pipelines silent for longer than "
                                     "pipelines.stale_after", registry=r)
        self.pipeline_commands = Counter("modelctl_pipeline_commands_total", "Pipeline commands that ended, by "
                                         "kind and outcome (SUCCEEDED, FAILED, EXPIRED, CANCELLED)",
                                         ["kind", "outcome"], registry=r)
        self.pipeline_ack_seconds = Histogram("modelctl_pipeline_command_ack_seconds",
                                              "From SendPipelineCommand to the pipeline's acknowledgement",
                                              buckets=_ACK_BUCKETS, registry=r)
        for state in _PIPELINE_STATES:
            self.pipelines.labels(state=state)

    def set_pipelines(self, by_state: dict[str, int], stale: int) -> None:
        """Pipelines per reported state (every state exported, 0 included) and how many are stale."""
        for state in _PIPELINE_STATES:
            self.pipelines.labels(state=state).set(by_state.get(state, 0))
        self.pipelines_stale.set(stale)

    def observe_command_outcome(self, kind: str, outcome: str) -> None:
        self.pipeline_commands.labels(kind=kind, outcome=outcome).inc()

    def observe_command_acknowledged(self, seconds: float) -> None:
        self.pipeline_ack_seconds.observe(max(0.0, seconds))

    def observe_deployment_event(self, event) -> None:  # type: ignore[no-untyped-def]
        model = event.model
        if model not in self._event_models:
            # Every kind at 0 from a model's first event: increase() and the rollback alert cannot see
            # the first increment of a counter that is created by it.
            self._event_models.add(model)
            for kind in type(event.kind):
                self.deployment_events.labels(model=model, kind=kind.value)
            self.rollbacks.labels(model=model)
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

    def set_experiment(self, model: str, arms: dict[str, tuple[str, float, float]], *, p_value: float,
                       lift: float, samples_needed: int | None, srm_p_value: float, significant: bool) -> None:
        """Mirror the running experiment of `model`; `arms` is arm -> (version, samples, value)."""
        labels = [(arm, version) for arm, (version, _, _) in arms.items()]
        if self._experiment_arms.get(model, labels) != labels:
            self.clear_experiment(model)  # a new experiment of the model: its arms' versions changed
        for arm, (version, samples, value) in arms.items():
            self.experiment_samples.labels(model=model, arm=arm, version=version).set(samples)
            self.experiment_value.labels(model=model, arm=arm, version=version).set(value)
        self._experiment_arms[model] = labels
        self.experiment_p_value.labels(model=model).set(p_value)
        self.experiment_lift.labels(model=model).set(lift)
        if samples_needed is not None:
            self.experiment_samples_needed.labels(model=model).set(samples_needed)
        self.experiment_srm_p_value.labels(model=model).set(srm_p_value)
        self.experiment_significant.labels(model=model).set(1 if significant else 0)

    def clear_experiment(self, model: str) -> None:
        """Stop exporting the experiment of `model` (it stopped)."""
        for arm, version in self._experiment_arms.pop(model, []):
            for gauge in (self.experiment_samples, self.experiment_value):
                try:
                    gauge.remove(model, arm, version)
                except KeyError:
                    pass
        for gauge in (self.experiment_p_value, self.experiment_lift, self.experiment_samples_needed,
                      self.experiment_srm_p_value, self.experiment_significant):
            try:
                gauge.remove(model)
            except KeyError:
                pass

    @property
    def experiment_models(self) -> frozenset[str]:
        """Models whose experiment is exported now."""
        return frozenset(self._experiment_arms)

    def set_drift(self, model: str, version: str, scores: dict[str, float], features: dict[str, float]) -> None:
        """Mirror a version's drift: `scores` kind -> score, `features` name -> PSI (features that left are dropped)."""
        for kind, score in scores.items():
            self.drift_score.labels(model=model, version=version, kind=kind).set(score)
        for feature in self._drift_features.get((model, version), set()) - set(features):
            try:
                self.drift_feature_psi.remove(model, version, feature)
            except KeyError:
                pass
        for feature, psi in features.items():
            self.drift_feature_psi.labels(model=model, version=version, feature=feature).set(psi)
        self._drift_features[(model, version)] = set(features)

    def clear_drift(self, model: str, version: str) -> None:
        """Stop exporting a version's drift (the drift engine forgot it)."""
        for kind in ("data", "prior", "concept"):
            try:
                self.drift_score.remove(model, version, kind)
            except KeyError:
                pass
        for feature in self._drift_features.pop((model, version), set()):
            try:
                self.drift_feature_psi.remove(model, version, feature)
            except KeyError:
                pass

    @property
    def drift_versions(self) -> frozenset[tuple[str, str]]:
        """(model, version) pairs whose drift is exported now."""
        return frozenset(self._drift_features)

    def set_open_alerts(self, counts: dict[str, int]) -> None:
        """Open alerts per severity name; every severity is exported, 0 included, so panels never go blank."""
        for severity in ("INFO", "WARNING", "ERROR", "CRITICAL"):
            self.alerts_open.labels(severity=severity).set(counts.get(severity, 0))

    def observe_notification(self, outcome: str, scheme: str, n: int = 1) -> None:
        (self.notifications_sent if outcome == "sent" else self.notifications_failed).labels(scheme=scheme).inc(n)

    def set_notifications_pending(self, by_scheme: dict[str, int]) -> None:
        for scheme in set(self._pending_schemes) | set(by_scheme):
            self.notifications_pending.labels(scheme=scheme).set(by_scheme.get(scheme, 0))
        self._pending_schemes = set(self._pending_schemes) | set(by_scheme)

    def observe_rpc(self, rpc: str, code: str, seconds: float) -> None:
        self.rpc_requests.labels(rpc=rpc, code=code).inc()
        self.rpc_duration.labels(rpc=rpc).observe(seconds)

    def database_transactions_observer(self):  # type: ignore[no-untyped-def]
        """The `Database.observe_transaction` hook: (kind, seconds) into the transaction histogram."""
        children = {kind: self.database_transactions.labels(kind=kind) for kind in ("read", "write")}
        return lambda kind, seconds: children[kind].observe(seconds)

    @contextlib.contextmanager
    def track_rpc(self, rpc: str, server_stream: bool) -> Iterator[None]:
        """Counts a call as in flight (or its stream as open) while the block runs."""
        gauge = self.streams_open.labels(kind=stream_kind(rpc)) if server_stream else self.rpc_in_flight.labels(rpc=rpc)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def observe_model_traffic(self, model: str, version: str, requests: int, errors: int,
                              latency_ms: Sequence[float]) -> None:
        """One reported sample of served traffic (not reference data)."""
        self.model_requests.labels(model=model, version=version).inc(requests)
        self.model_errors.labels(model=model, version=version).inc(errors)
        if len(latency_ms):  # a numpy array from ReportMetrics
            _observe_many(self.model_latency.labels(model=model, version=version), latency_ms, scale=1e-3)

    def observe_gate_evaluations(self, evaluations: Iterable[tuple[str, GateEvaluation]]) -> None:
        """(model, evaluation) pairs a transaction stored, once it has committed (the repository's hook)."""
        for model, e in evaluations:
            self.gate_evaluations.labels(model=model, gate=e.gate.value, verdict=e.verdict.value).inc()

    def observe_success(self, strategy: str, created_at: dt.datetime, finished_at: dt.datetime) -> None:
        self.time_to_success.labels(strategy=strategy).observe(max(0.0, (finished_at - created_at).total_seconds()))

    def set_live_versions(self, live: dict[str, str | None]) -> None:
        """Mirror the live version of the given models (None: no live version any more)."""
        with self._live_lock:
            for model, version in live.items():
                old = self._live.get(model)
                if old == version:
                    continue
                if old is not None:
                    try:
                        self.live_version.remove(model, old)
                    except KeyError:
                        pass
                if version is None:
                    self._live.pop(model, None)
                else:
                    self.live_version.labels(model=model, version=version).set(1)
                    self._live[model] = version


_WORDS = re.compile(r"(?<!^)(?=[A-Z])")


def stream_kind(rpc: str) -> str:
    """`WatchTrafficSplit` -> `traffic_split`, `StreamAlerts` -> `alerts`: the label of an open stream."""
    for prefix in ("Watch", "Stream"):
        if rpc.startswith(prefix) and len(rpc) > len(prefix):
            rpc = rpc[len(prefix):]
            break
    return _WORDS.sub("_", rpc).lower()


def _observe_many(histogram: Histogram, values: Sequence[float], *, scale: float = 1.0) -> None:
    """`histogram.observe(v * scale)` for every value, in one pass: a report brings a thousand latencies,
    and a thousand observes (a lock each) cost more than the rest of the report. Falls back to
    plain observes if prometheus_client's histogram ever stops looking as it does today."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    scaled = np.asarray(values, dtype=np.float64) * scale
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in scaled.tolist():
            histogram.observe(value)
        return
    # observe() counts a value in the first bucket whose upper bound is >= it: searchsorted, side left.
    counts = np.bincount(np.searchsorted(np.asarray(bounds, dtype=np.float64), scaled, side="left"),
                         minlength=len(bounds))
    for i, count in enumerate(counts[:len(bounds)].tolist()):
        if count:
            buckets[i].inc(count)
    total.inc(float(scaled.sum()))
