"""The SDK's drift side: report_metrics with features, predictions, outcome, quality and reference; get_drift_report."""

from __future__ import annotations

import numpy as np
import pytest

import modelctl
from modelctl import errors
from modelctl._drift import drift_report_request
from modelctl._samples import feature_values, metrics_sample, metrics_samples
from modelctl.types import FeatureType, FeatureValues, MetricsSample, Outcome, Quality, ReferenceSource


def test_samples_from_plain_python() -> None:
    sample = metrics_sample("fraud", "2", requests=3, features={
        "age": [31, 45.5, np.float64(50)], "country": ["fr", "de", "fr"],
        "flag": {"categorical": ["y"]}, "score": FeatureValues(numeric=[0.5])},
        predictions=[0.1, 1], outcome={"successes": 1, "trials": 3, "values": [9.99]},
        quality={"correct": 2, "labelled": 3})
    assert list(sample.features["age"].numeric) == [31.0, 45.5, 50.0]
    assert list(sample.features["country"].categorical) == ["fr", "de", "fr"]
    assert list(sample.features["flag"].categorical) == ["y"]
    assert list(sample.features["score"].numeric) == [0.5]
    assert list(sample.predictions) == [0.1, 1.0]
    assert sample.outcome == Outcome(successes=1, trials=3, values=[9.99])
    assert sample.quality == Quality(correct=2, labelled=3)
    assert not sample.reference
    reference = metrics_sample("fraud", "2", reference=True, features={"age": [1.0]})
    assert reference.reference and not reference.HasField("outcome") and not reference.HasField("quality")
    # Plain samples are what they always were.
    assert metrics_sample("fraud", "1", requests=5) == MetricsSample(model="fraud", version="1", requests=5)


@pytest.mark.parametrize("build, message", [
    (lambda: feature_values("age", [1.0, "x"]), "all numbers"),
    (lambda: feature_values("age", [True, False]), "all numbers"),
    (lambda: feature_values("age", "abc"), "a list of values"),
    (lambda: feature_values("age", {"numbers": [1]}), "unknown keys"),
    (lambda: metrics_sample("m", "1", outcome={"successes": 3, "trials": 2}), "successes"),
    (lambda: metrics_sample("m", "1", quality={"correct": 3, "labelled": 2}), "correct"),
])
def test_mistakes_seen_before_sending(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        build()


def test_batches_mix_messages_and_dicts() -> None:
    batch = metrics_samples([MetricsSample(model="a", version="1", requests=1),
                             {"model": "a", "version": "1", "features": {"x": [1.0]}, "reference": True}], {})
    assert [s.reference for s in batch] == [False, True]


def test_drift_report_requests() -> None:
    assert drift_report_request("fraud") == drift_report_request("fraud", None, None)
    request = drift_report_request("fraud", "2", "15m")
    assert (request.version, request.window.seconds) == ("2", 900)
    with pytest.raises(ValueError, match="window"):
        drift_report_request("fraud", window="-1s")


def _feed(client: modelctl.Client) -> None:
    rng = np.random.default_rng(1)
    client.register_model("fraud", "1", "s3://m/1")
    client.report_metrics(model="fraud", version="1", reference=True,
                          features={"age": rng.normal(40, 10, 2000).tolist(), "country": ["fr", "de"] * 1000},
                          predictions=rng.beta(2, 5, 2000).tolist(), quality={"correct": 900, "labelled": 1000})
    client.report_metrics([{"model": "fraud", "version": "1", "requests": 2000,
                            "features": {"age": rng.normal(55, 10, 2000).tolist(), "country": ["fr", "de"] * 1000},
                            "predictions": rng.beta(2, 5, 2000).tolist(),
                            "quality": {"correct": 600, "labelled": 1000},
                            "outcome": {"successes": 30, "trials": 2000}}])


def test_report_features_then_read_the_report(live_server) -> None:  # type: ignore[no-untyped-def]
    with modelctl.Client(live_server.address, token=live_server.admin_token) as client:
        _feed(client)
        report = client.get_drift_report("fraud", "1", window="1h")
        assert report.reference_source == ReferenceSource.REFERENCE_SOURCE_REFERENCE_SAMPLES
        age, country = report.features
        assert age.type == FeatureType.FEATURE_TYPE_NUMERIC and age.drifted
        assert country.type == FeatureType.FEATURE_TYPE_CATEGORICAL and not country.drifted
        assert not report.predictions.drifted and report.prior_score < 0.1
        assert report.reference_accuracy == pytest.approx(0.9) and report.window_accuracy == pytest.approx(0.6)
        assert report.concept_score == pytest.approx(0.3) and report.drifted
        with pytest.raises(errors.ModelctlError) as err:
            client.get_drift_report("fraud")  # nothing live yet
        assert "no live version" in str(err.value)


async def test_the_async_client_reads_the_same_report(live_server) -> None:  # type: ignore[no-untyped-def]
    with modelctl.Client(live_server.address, token=live_server.admin_token) as client:
        _feed(client)
    async with modelctl.AsyncClient(live_server.address, token=live_server.admin_token) as client:
        await client.report_metrics(model="fraud", version="1", requests=10, features={"age": [40.0] * 10})
        report = await client.get_drift_report("fraud", "1")
        assert report.features[0].window_samples == 2010
        with pytest.raises(errors.ModelctlError) as err:
            await client.get_drift_report("fraud", "404")
        assert err.value.code.name == "NOT_FOUND"
