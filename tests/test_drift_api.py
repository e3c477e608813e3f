"""GetDriftReport and drift through ReportMetrics over real gRPC: validation, persistence, the gate, metrics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.duration_pb2 import Duration

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import drift_pb2
from modelctl.v1 import registry_pb2 as rpb
from modelctl_server.clock import FakeClock
from modelctl_server.drift import DriftScores
from modelctl_server.metrics.drift_gauges import export
from modelctl_server.metrics.recorder import MetricsRecorder

from conftest import make_settings
from grpc_helpers import bad_fields, stub

N = 2000


async def _advance(clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)  # on the server's loop: FakeClock wakes its sleepers there


class Api:
    """A real server on a fake clock, and the calls these tests make."""

    def __init__(self, srv: Any, clock: FakeClock) -> None:
        self.srv = srv
        self.clock = clock
        self.api = stub(srv.address, srv.admin_token)

    def advance(self, seconds: float) -> None:
        self.srv.call(_advance(self.clock, seconds))

    def register(self, model: str, *versions: str) -> None:
        for v in versions:
            self.api.RegisterModel(rpb.RegisterModelRequest(name=model, version=v, artifact_uri=f"s3://m/{v}"))

    def features(self, version: str, reference: bool = False, requests: int = 0, model: str = "fraud",
                 **features: Any) -> None:
        values = {name: dpb.FeatureValues(categorical=v) if isinstance(v[0], str) else dpb.FeatureValues(numeric=v)
                  for name, v in features.items()}
        self.api.ReportMetrics(dpb.ReportMetricsRequest(samples=[dpb.MetricsSample(
            model=model, version=version, reference=reference, requests=requests, features=values)]))

    def report(self, version: str = "", window: float | None = None, model: str = "fraud") -> drift_pb2.DriftReport:
        request = drift_pb2.GetDriftReportRequest(model=model, version=version)
        if window is not None:
            request.window.FromNanoseconds(int(window * 1e9))
        return self.api.GetDriftReport(request)

    def make_live(self, model: str, version: str) -> None:
        dep = self.api.DeployModel(dpb.DeployModelRequest(
            model=model, version=version, strategy=dpb.DEPLOYMENT_STRATEGY_IMMEDIATE,
            params=dpb.DeploymentParams(bake_time=Duration(seconds=0))))
        for _ in range(2):
            self.srv.call(self.srv.app.reconciler.tick())
        assert self.api.GetDeployment(dpb.GetDeploymentRequest(id=dep.id)).state == dpb.DEPLOYMENT_STATE_SUCCEEDED


@pytest.fixture
def api(server_factory) -> Api:  # type: ignore[no-untyped-def]
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    a = Api(server_factory(clock=clock), clock)
    a.register("fraud", "1", "2")
    return a


def _normal(mean: float, seed: int, n: int = N) -> list[float]:
    return np.random.default_rng(seed).normal(mean, 10, n).tolist()


def test_a_shifted_feature_is_reported_drifted(api: Api) -> None:
    api.features("1", reference=True, age=_normal(40, 1), city=["a", "b"] * (N // 2))
    api.features("1", requests=N, age=_normal(50, 2), city=["a", "b"] * (N // 2))
    api.advance(1)
    report = api.report("1")
    assert report.model == "fraud" and report.version == "1"
    assert report.reference_source == drift_pb2.REFERENCE_SOURCE_REFERENCE_SAMPLES
    age, city = report.features
    assert (age.name, age.type) == ("age", drift_pb2.FEATURE_TYPE_NUMERIC)
    assert (city.name, city.type) == ("city", drift_pb2.FEATURE_TYPE_CATEGORICAL)
    assert age.drifted and age.psi > 0.25 and age.ks_p_value < 0.01
    assert not city.drifted and city.psi < 0.1 and city.chi_square_p_value > 0.01
    assert report.drifted and report.data_score == pytest.approx(age.psi)
    assert (report.reference_samples, report.window_samples, report.threshold) == (N, N, pytest.approx(0.1))
    assert report.window_end.ToDatetime(dt.timezone.utc) == api.clock.now()
    assert report.predictions.note == "no predictions reported"
    assert not report.HasField("reference_accuracy")


def test_validation_not_found_and_the_live_default(api: Api) -> None:
    for request, field in [
        (drift_pb2.GetDriftReportRequest(model="Bad Name"), "model"),
        (drift_pb2.GetDriftReportRequest(model="", version="1"), "model"),
        (drift_pb2.GetDriftReportRequest(model="fraud", version="bad version"), "version"),
        (drift_pb2.GetDriftReportRequest(model="fraud", version="1", window=Duration(seconds=0)), "window"),
        (drift_pb2.GetDriftReportRequest(model="fraud", version="1", window=Duration(seconds=-5)), "window"),
        (drift_pb2.GetDriftReportRequest(model="fraud", version="1", window=Duration(seconds=86_400 * 2)), "window"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            api.api.GetDriftReport(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert field in bad_fields(err.value)
    for request in [drift_pb2.GetDriftReportRequest(model="nope"),
                    drift_pb2.GetDriftReportRequest(model="nope", version="1"),
                    drift_pb2.GetDriftReportRequest(model="fraud", version="9")]:
        with pytest.raises(grpc.RpcError) as err:
            api.api.GetDriftReport(request)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, request
    with pytest.raises(grpc.RpcError) as err:
        api.report()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no live version" in (err.value.details() or "")

    api.make_live("fraud", "2")
    empty = api.report(window=60)  # the live version, with nothing reported: an honest report
    assert empty.version == "2" and not empty.drifted and not empty.features
    assert empty.reference_source == drift_pb2.REFERENCE_SOURCE_UNSPECIFIED
    assert any("no drift data reported" in note for note in empty.notes)
    window = empty.window_end.ToDatetime() - empty.window_start.ToDatetime()
    assert window == dt.timedelta(seconds=60)


def test_a_viewer_may_read_drift(api: Api) -> None:
    viewer = stub(api.srv.address, api.srv.make_token("viewer"))
    assert viewer.GetDriftReport(drift_pb2.GetDriftReportRequest(model="fraud", version="1")).version == "1"


def test_report_metrics_refuses_a_feature_that_changes_kind(api: Api) -> None:
    api.features("1", requests=3, age=[1.0, 2.0, 3.0])
    with pytest.raises(grpc.RpcError) as err:
        api.features("1", requests=1, age=["old"])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(err.value) == ["samples[0].features[age]"]
    report = api.report("1")
    assert report.reference_source == drift_pb2.REFERENCE_SOURCE_FIRST_LIVE_VALUES
    assert report.features[0].note == "reference is being built: 3 of 1000 values"


def test_the_reference_survives_a_restart(server_factory, tmp_path: Path, database_url: str) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "data", MODELCTL_DATABASE_URL=database_url)
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    first = Api(server_factory(settings, clock=clock), clock)
    first.register("fraud", "1", "2")
    first.features("1", reference=True, age=_normal(40, 3))
    first.features("1", requests=N, age=_normal(40, 4))  # seals the reference
    first.features("2", requests=600, score=_normal(0, 5, 600))  # a live-built reference, still growing
    first.advance(1)
    before = first.report("1")
    first.srv.stop()

    clock = FakeClock(first.clock.now())
    second = Api(server_factory(settings, clock=clock), clock)
    after = second.report("1")
    assert after.reference_source == drift_pb2.REFERENCE_SOURCE_REFERENCE_SAMPLES
    assert after.reference_samples == before.reference_samples == N
    assert after.window_samples == 0  # live windows are memory: rebuilt by the traffic that follows
    second.features("1", requests=N, age=_normal(50, 6))
    second.advance(1)
    assert second.report("1").features[0].drifted
    grown = second.report("2").features[0]
    assert grown.note == "reference is being built: 600 of 1000 values"


def test_the_drift_gate_rolls_back_a_canary_whose_traffic_drifts(api: Api) -> None:
    api.make_live("fraud", "1")
    api.features("2", reference=True, age=_normal(40, 7))
    dep = api.api.DeployModel(dpb.DeployModelRequest(
        model="fraud", version="2", strategy=dpb.DEPLOYMENT_STRATEGY_CANARY,
        params=dpb.DeploymentParams(steps=[50, 100], step_interval=Duration(seconds=30), min_samples=10,
                                    failure_limit=1)))
    api.srv.call(api.srv.app.reconciler.tick())
    api.advance(1)
    api.features("2", requests=50, age=_normal(60, 8, 500))
    api.advance(30)
    api.srv.call(api.srv.app.reconciler.tick())
    api.srv.call(api.srv.app.reconciler.tick())
    final = api.api.GetDeployment(dpb.GetDeploymentRequest(id=dep.id))
    assert final.state == dpb.DEPLOYMENT_STATE_ROLLED_BACK, final
    assert "drift-score gate failed" in final.reason
    failed = [e for e in final.evaluations if e.gate == "drift_score" and e.verdict == dpb.GATE_VERDICT_FAIL]
    assert failed and failed[0].value > 0.25
    split = api.api.GetTrafficSplit(dpb.GetTrafficSplitRequest(model="fraud")).weights
    assert {v: w for v, w in split.items() if w} == {"1": 100.0}


def test_drift_gauges_follow_the_tracked_versions(api: Api) -> None:
    api.features("1", reference=True, age=_normal(40, 9))
    api.features("1", requests=N, age=_normal(55, 10))
    api.advance(1)
    app = api.srv.app
    api.srv.call(app.drift_gauges.tick())
    registry = app.recorder.registry
    data = registry.get_sample_value("modelctl_drift_score", {"model": "fraud", "version": "1", "kind": "data"})
    psi = registry.get_sample_value("modelctl_drift_feature_psi", {"model": "fraud", "version": "1", "feature": "age"})
    assert data is not None and data > 0.25 and psi == pytest.approx(data)
    assert registry.get_sample_value("modelctl_drift_score", {"model": "fraud", "version": "1", "kind": "concept"}) == 0


def _scores(version: str, features: dict[str, float]) -> DriftScores:
    return DriftScores("m", version, max(features.values(), default=0.0), 0.2, 0.05, features)


def test_gauges_drop_features_and_versions_that_left() -> None:
    recorder = MetricsRecorder()
    registry = recorder.registry
    export(recorder, [_scores("1", {"a": 0.3, "b": 0.01}), _scores("2", {"a": 0.02})])
    assert registry.get_sample_value("modelctl_drift_feature_psi", {"model": "m", "version": "1", "feature": "b"}) \
        == pytest.approx(0.01)
    assert registry.get_sample_value("modelctl_drift_score", {"model": "m", "version": "1", "kind": "prior"}) == 0.2
    export(recorder, [_scores("1", {"a": 0.4})])
    assert registry.get_sample_value("modelctl_drift_feature_psi", {"model": "m", "version": "1", "feature": "b"}) \
        is None
    assert registry.get_sample_value("modelctl_drift_score", {"model": "m", "version": "2", "kind": "data"}) is None
    assert registry.get_sample_value("modelctl_drift_feature_psi", {"model": "m", "version": "2", "feature": "a"}) \
        is None
    assert registry.get_sample_value("modelctl_drift_score", {"model": "m", "version": "1", "kind": "data"}) == 0.4
