"""ReportMetrics' new fields (features, predictions, outcome, quality, reference) over real gRPC.

Every bad-input rule answers INVALID_ARGUMENT naming the field, and a rejected
request changes nothing: not the metrics windows, not the journal, not drift.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
import pytest

from modelctl.v1 import deployment_pb2 as dpb
from modelctl.v1 import drift_pb2
from modelctl.v1 import registry_pb2 as rpb

from grpc_helpers import bad_fields, stub


@pytest.fixture
def api(server_factory):  # type: ignore[no-untyped-def]
    srv = server_factory(MODELCTL_TELEMETRY_MAX_VALUES_PER_SAMPLE="100", MODELCTL_DRIFT_MAX_FEATURES="3")
    api = stub(srv.address, srv.admin_token)
    api.RegisterModel(rpb.RegisterModelRequest(name="fraud", version="1", artifact_uri="s3://m/1"))
    api.srv = srv
    return api


def _refused(api, *samples: dpb.MetricsSample) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        api.ReportMetrics(dpb.ReportMetricsRequest(samples=list(samples)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return bad_fields(err.value)


def _sample(**fields: Any) -> dpb.MetricsSample:
    return dpb.MetricsSample(model="fraud", version="1", **fields)


def _features(**features: list[Any]) -> dict[str, dpb.FeatureValues]:
    out = {}
    for name, values in features.items():
        if values and isinstance(values[0], str):
            out[name] = dpb.FeatureValues(categorical=values)
        else:
            out[name] = dpb.FeatureValues(numeric=values)
    return out


@pytest.mark.parametrize("sample, field", [
    (_sample(requests=1, features={"age": dpb.FeatureValues(numeric=[1.0], categorical=["a"])}),
     "samples[0].features[age]"),
    (_sample(requests=1, features={"age": dpb.FeatureValues()}), "samples[0].features[age]"),
    (_sample(requests=1, features=_features(age=[float("nan")])), "samples[0].features[age].numeric"),
    (_sample(requests=1, features=_features(age=[float("inf")])), "samples[0].features[age].numeric"),
    (_sample(requests=1, features=_features(age=[1.0] * 101)), "samples[0].features[age].numeric"),
    (_sample(requests=1, features=_features(city=["x" * 257])), "samples[0].features[city].categorical"),
    (_sample(requests=1, features=_features(city=["x"] * 101)), "samples[0].features[city].categorical"),
    (_sample(requests=1, features=_features(a=[1.0], b=[1.0], c=[1.0], d=[1.0])), "samples[0].features"),
    (_sample(requests=1, features={"": dpb.FeatureValues(numeric=[1.0])}), "samples[0].features"),
    (_sample(requests=1, predictions=[float("-inf")]), "samples[0].predictions"),
    (_sample(requests=1, predictions=[0.5] * 101), "samples[0].predictions"),
    (_sample(requests=1, outcome=dpb.Outcome(successes=3, trials=2)), "samples[0].outcome.successes"),
    (_sample(requests=1, outcome=dpb.Outcome(values=[float("nan")])), "samples[0].outcome.values"),
    (_sample(requests=1, outcome=dpb.Outcome(trials=2 ** 63)), "samples[0].outcome.trials"),
    # Summed (and squared) into an experiment's arm for ever: 1e308 then -1e308 would make NaN.
    (_sample(requests=1, outcome=dpb.Outcome(values=[1.0, -1e16])), "samples[0].outcome.values"),
    (_sample(requests=1, quality=dpb.Quality(correct=5, labelled=4)), "samples[0].quality.correct"),
    (_sample(requests=1, latency_ms=[1.0] * 101), "samples[0].latency_ms"),
    (_sample(requests=1, latency_ms=[1e308]), "samples[0].latency_ms"),
    (_sample(requests=1, latency_p95_ms=1e308), "samples[0].latency_p95_ms"),
    (_sample(requests=1, time={"seconds": 1_700_000_000, "nanos": 1_000_000_000}), "samples[0].time"),
    (_sample(requests=1, time={"seconds": 1_700_000_000, "nanos": -1}), "samples[0].time"),
    (_sample(reference=True, requests=5, features=_features(age=[1.0])), "samples[0].requests"),
    (_sample(reference=True, outcome=dpb.Outcome(trials=1), features=_features(age=[1.0])), "samples[0].outcome"),
    (_sample(reference=True), "samples[0].reference"),
])
def test_each_bad_field_is_named(api, sample: dpb.MetricsSample, field: str) -> None:  # type: ignore[no-untyped-def]
    assert field in _refused(api, sample)


def test_a_feature_keeps_its_type_across_batches(api) -> None:  # type: ignore[no-untyped-def]
    # Within one request ...
    assert _refused(api, _sample(requests=1, features=_features(age=[30.0])),
                    _sample(requests=1, features=_features(age=["thirty"]))) == ["samples[1].features[age]"]
    # ... and against what an earlier request established.
    api.ReportMetrics(dpb.ReportMetricsRequest(samples=[_sample(requests=1, features=_features(age=[30.0]))]))
    assert _refused(api, _sample(requests=1, features=_features(age=["thirty"]))) == ["samples[0].features[age]"]


def test_a_rejected_request_changes_nothing(api) -> None:  # type: ignore[no-untyped-def]
    app = api.srv.app
    good = _sample(requests=10, errors=1, latency_ms=[5.0], features=_features(age=[1.0, 2.0]),
                   outcome=dpb.Outcome(successes=1, trials=2))
    bad = _sample(requests=1, quality=dpb.Quality(correct=2, labelled=1))
    assert _refused(api, good, bad) == ["samples[1].quality.correct"]
    # The same with a type conflict only the drift engine can see: the good sample must not land either.
    api.ReportMetrics(dpb.ReportMetricsRequest(samples=[_sample(requests=1, features=_features(city=["paris"]))]))
    conflict = _sample(requests=1, features=_features(city=[1.0]))
    assert _refused(api, good, conflict) == ["samples[1].features[city]"]
    now = app.clock.now()
    window = app.metrics_store.window("fraud", "1", now - dt.timedelta(hours=1), now)
    assert (window.requests, window.errors) == (1, 0)  # only the accepted city report
    assert len(list(app.journal.since(now - dt.timedelta(hours=1)))) == 1
    report = api.GetDriftReport(drift_pb2.GetDriftReportRequest(model="fraud", version="1"))
    assert [f.name for f in report.features] == ["city"]


def test_reference_samples_need_no_requests_and_are_not_traffic(api) -> None:  # type: ignore[no-untyped-def]
    app = api.srv.app
    reply = api.ReportMetrics(dpb.ReportMetricsRequest(samples=[
        _sample(reference=True, features=_features(age=[1.0, 2.0, 3.0]), predictions=[0.1, 0.9],
                quality=dpb.Quality(correct=9, labelled=10)),
        _sample(requests=3, errors=0, latency_ms=[1.0, 2.0, 3.0], outcome=dpb.Outcome(successes=1, trials=3,
                                                                                      values=[2.5]))]))
    assert reply.accepted_samples == 2
    now = app.clock.now()
    window = app.metrics_store.window("fraud", "1", now - dt.timedelta(hours=1), now)
    assert window.requests == 3
    assert len(list(app.journal.since(now - dt.timedelta(hours=1)))) == 1  # the reference is not traffic
