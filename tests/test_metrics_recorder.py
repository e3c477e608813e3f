"""The exporter's collectors that issue 8 added, fed by a real controller (and the recorder on its own)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any, Callable

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from prometheus_client import CollectorRegistry

from modelctl.v1 import deployment_pb2, registry_pb2
from modelctl_server.metrics.recorder import MetricsRecorder, stream_kind

from grpc_helpers import stub

FAST = {"MODELCTL_DEPLOYMENT_RECONCILE_INTERVAL": "50ms", "MODELCTL_DEPLOYMENT_MIN_SAMPLES": "5"}


def _eventually(read: Callable[[], Any], expect: Callable[[Any], bool], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if expect(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {value!r} after {timeout}s")
        time.sleep(0.02)


def _register(api: Any, model: str, *versions: str) -> None:
    for v in versions:
        api.RegisterModel(registry_pb2.RegisterModelRequest(name=model, version=v,
                                                            artifact_uri=f"s3://m/{model}/{v}"), timeout=10)


def _deploy(api: Any, model: str, version: str, strategy: int, steps: tuple[int, ...] = ()) -> str:
    params = deployment_pb2.DeploymentParams(steps=list(steps), step_interval=Duration(nanos=100_000_000),
                                             bake_time=Duration(nanos=100_000_000), min_samples=5)
    return api.DeployModel(deployment_pb2.DeployModelRequest(model=model, version=version, strategy=strategy,
                                                             params=params), timeout=10).id


def _report(api: Any, model: str, version: str, requests: int = 20, errors: int = 0,
            latency_ms: tuple[float, ...] = (12.0,)) -> None:
    api.ReportMetrics(deployment_pb2.ReportMetricsRequest(samples=[deployment_pb2.MetricsSample(
        model=model, version=version, requests=requests, errors=errors, latency_ms=list(latency_ms))]), timeout=10)


def _until_final(api: Any, dep_id: str, feed: Callable[[], None]) -> str:
    def state() -> str:
        feed()
        return deployment_pb2.DeploymentState.Name(
            api.GetDeployment(deployment_pb2.GetDeploymentRequest(id=dep_id), timeout=10).state)
    return _eventually(state, lambda s: s.endswith(("SUCCEEDED", "ROLLED_BACK", "FAILED", "ABORTED")),
                       f"deployment {dep_id}")


def test_stream_kinds() -> None:
    assert stream_kind("WatchDeployment") == "deployment"
    assert stream_kind("WatchTrafficSplit") == "traffic_split"
    assert stream_kind("WatchAssignment") == "assignment"
    assert stream_kind("StreamAlerts") == "alerts"
    assert stream_kind("WatchPipelineCommands") == "pipeline_commands"


def test_process_numbers_come_from_the_standard_collectors_only() -> None:
    registry = CollectorRegistry()
    MetricsRecorder(registry)
    names = {family.name for family in registry.collect()}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds", "python_info"} <= names
    # No hand-written copies of what the collectors export.
    assert not {n for n in names if n.startswith("modelctl_process_")}
    assert registry.get_sample_value("process_open_fds") > 0


def test_live_version_is_one_series_per_model() -> None:
    registry = CollectorRegistry()
    r = MetricsRecorder(registry)
    r.set_live_versions({"fraud": "1", "churn": None})
    r.set_live_versions({"fraud": "2"})
    assert registry.get_sample_value("modelctl_model_live_version_info", {"model": "fraud", "version": "2"}) == 1
    assert registry.get_sample_value("modelctl_model_live_version_info", {"model": "fraud", "version": "1"}) is None
    r.set_live_versions({"fraud": None})
    assert registry.get_sample_value("modelctl_model_live_version_info", {"model": "fraud", "version": "2"}) is None


def test_time_to_success_starts_at_zero_for_every_strategy() -> None:
    registry = CollectorRegistry()
    r = MetricsRecorder(registry)
    for strategy in ("immediate", "blue_green", "canary", "rolling"):
        assert registry.get_sample_value("modelctl_deployment_time_to_success_seconds_count",
                                         {"strategy": strategy}) == 0
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    r.observe_success("canary", start, start + dt.timedelta(seconds=90))
    assert registry.get_sample_value("modelctl_deployment_time_to_success_seconds_sum", {"strategy": "canary"}) == 90


def test_in_flight_calls_and_open_streams(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory()
    value = srv.app.recorder.registry.get_sample_value
    api = stub(srv.address, srv.admin_token)
    _register(api, "fraud", "1")
    stream = api.WatchTrafficSplit(deployment_pb2.WatchTrafficSplitRequest(model="fraud"))
    first = threading.Event()

    def drain() -> None:
        try:
            for _ in stream:
                first.set()
        except grpc.RpcError:
            pass
    threading.Thread(target=drain, daemon=True).start()
    assert first.wait(10)
    assert value("modelctl_streams_open", {"kind": "traffic_split"}) == 1
    assert value("modelctl_rpc_in_flight", {"rpc": "RegisterModel"}) == 0  # done: back to 0
    stream.cancel()
    _eventually(lambda: value("modelctl_streams_open", {"kind": "traffic_split"}), lambda v: v == 0,
                "open traffic streams after the cancel")
    # A call in progress is in flight: the in-flight gauge as seen from inside the call's handling.
    seen = []
    original = srv.app.registry.list

    def spying_list(*args: Any, **kwargs: Any) -> Any:
        seen.append(value("modelctl_rpc_in_flight", {"rpc": "ListModels"}))
        return original(*args, **kwargs)
    srv.app.registry.list = spying_list  # type: ignore[method-assign]
    api.ListModels(registry_pb2.ListModelsRequest(), timeout=10)
    assert seen == [1.0]
    assert value("modelctl_rpc_in_flight", {"rpc": "ListModels"}) == 0


def test_rollout_metrics_from_a_real_controller(server_factory) -> None:  # type: ignore[no-untyped-def]
    srv = server_factory(**FAST)
    value = srv.app.recorder.registry.get_sample_value
    api = stub(srv.address, srv.admin_token)
    _register(api, "fraud", "1", "2", "3")
    immediate, canary = deployment_pb2.DEPLOYMENT_STRATEGY_IMMEDIATE, deployment_pb2.DEPLOYMENT_STRATEGY_CANARY

    dep = _deploy(api, "fraud", "1", immediate)
    assert _until_final(api, dep, lambda: _report(api, "fraud", "1")).endswith("SUCCEEDED")
    _eventually(lambda: value("modelctl_model_live_version_info", {"model": "fraud", "version": "1"}),
                lambda v: v == 1, "live version 1")
    _eventually(lambda: value("modelctl_deployment_time_to_success_seconds_count", {"strategy": "immediate"}),
                lambda v: v == 1, "time to success of the immediate deployment")

    dep = _deploy(api, "fraud", "2", canary, steps=(50, 100))
    assert _until_final(api, dep, lambda: (_report(api, "fraud", "1"), _report(api, "fraud", "2"))) \
        .endswith("SUCCEEDED")
    _eventually(lambda: value("modelctl_model_live_version_info", {"model": "fraud", "version": "2"}),
                lambda v: v == 1, "live version 2")
    assert value("modelctl_model_live_version_info", {"model": "fraud", "version": "1"}) is None
    passed = value("modelctl_gate_evaluations_total", {"model": "fraud", "gate": "error_rate", "verdict": "PASS"})
    assert passed is not None and passed >= 2  # one per analysed canary step at least

    # A breaking canary: rolled back by the report itself, counted as a FAIL and a rollback.
    dep = _deploy(api, "fraud", "3", canary, steps=(50, 100))
    assert value("modelctl_rollbacks_total", {"model": "fraud"}) == 0  # there before the first rollback
    assert _until_final(api, dep, lambda: _report(api, "fraud", "3", requests=20, errors=10)).endswith("ROLLED_BACK")
    assert value("modelctl_gate_evaluations_total", {"model": "fraud", "gate": "error_rate", "verdict": "FAIL"}) >= 1
    assert value("modelctl_rollbacks_total", {"model": "fraud"}) == 1
    assert value("modelctl_model_live_version_info", {"model": "fraud", "version": "2"}) == 1

    # Reported latencies, in seconds, per version; transactions timed by kind.
    assert value("modelctl_model_latency_seconds_count", {"model": "fraud", "version": "2"}) >= 2
    assert value("modelctl_model_latency_seconds_sum", {"model": "fraud", "version": "1"}) == pytest.approx(
        0.012 * value("modelctl_model_latency_seconds_count", {"model": "fraud", "version": "1"}))
    assert value("modelctl_database_transaction_seconds_count", {"kind": "write"}) > 0
    assert value("modelctl_database_transaction_seconds_count", {"kind": "read"}) > 0


def test_open_alerts_are_exported_from_the_database_at_start(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A restarted controller exports the alerts still open, before any new alert change (the Overview's
    "open alerts by severity" and every severity at 0 on a fresh server)."""
    from modelctl_server.alerts.model import AlertKind, Severity, Signal

    from conftest import make_settings

    settings = make_settings(tmp_path / "data")
    first = server_factory(settings)
    first.app.alerts.raise_signal(Signal(AlertKind.DEPLOYMENT, "deployment:d1", Severity.ERROR, "rolled back",
                                         "fraud", "1", deployment_id="d1"))
    first.stop()
    value = server_factory(settings).app.recorder.registry.get_sample_value
    assert value("modelctl_alerts_open", {"severity": "ERROR"}) == 1
    assert value("modelctl_alerts_open", {"severity": "CRITICAL"}) == 0
