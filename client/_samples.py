"""Building `MetricsSample`s from what pipelines naturally write.

A sample is one window of a version's traffic (requests, errors, latency), and
optionally what the model saw and achieved: feature values, predictions, the
business outcome, labelled quality; or, with `reference=True`, the version's
reference data (training or validation set) for drift.

    {"model": "fraud", "version": "2", "requests": 500,
     "features": {"age": [31, 45.5], "country": ["fr", "de"]},     # numbers: numeric, strings: categorical
     "predictions": [0.12, 0.87],
     "outcome": {"successes": 12, "trials": 500, "values": [9.99, 20.0]},
     "quality": {"correct": 180, "labelled": 200}}

Mistakes a caller can see without asking the server raise `ValueError`.
"""

from __future__ import annotations

import datetime as dt
from numbers import Real
from typing import Any, Iterable, Mapping, Union

from modelctl.v1 import deployment_pb2 as _pb

#: Values of one feature: numbers (numeric), strings (categorical), a `FeatureValues`,
#: or {"numeric": [...]} / {"categorical": [...]}.
FeatureLike = Union[_pb.FeatureValues, Iterable[Any], Mapping[str, Iterable[Any]]]
#: An `Outcome`, or {"successes": n, "trials": n, "values": [...]}.
OutcomeLike = Union[_pb.Outcome, Mapping[str, Any]]
#: A `Quality`, or {"correct": n, "labelled": n}.
QualityLike = Union[_pb.Quality, Mapping[str, int]]


def feature_values(name: str, values: FeatureLike) -> _pb.FeatureValues:
    """One feature's values; all numbers make it numeric, all strings categorical."""
    if isinstance(values, _pb.FeatureValues):
        return values
    if isinstance(values, Mapping):
        unknown = set(values) - {"numeric", "categorical"}
        if unknown:
            raise ValueError(f"feature {name!r}: unknown keys {sorted(unknown)}; use numeric or categorical")
        return _pb.FeatureValues(numeric=[float(v) for v in values.get("numeric", ())],
                                 categorical=[str(v) for v in values.get("categorical", ())])
    if isinstance(values, (str, bytes)):
        raise ValueError(f"feature {name!r}: give a list of values, not a single string")
    items = list(values)
    if all(isinstance(v, str) for v in items):
        return _pb.FeatureValues(categorical=items)
    if all(isinstance(v, Real) and not isinstance(v, bool) for v in items):
        return _pb.FeatureValues(numeric=[float(v) for v in items])
    raise ValueError(f"feature {name!r}: values must be all numbers (numeric) or all strings (categorical)")


def outcome_message(outcome: OutcomeLike) -> _pb.Outcome:
    if isinstance(outcome, _pb.Outcome):
        return outcome
    successes, trials = int(outcome.get("successes", 0)), int(outcome.get("trials", 0))
    if successes < 0 or trials < 0 or successes > trials:
        raise ValueError(f"outcome: successes ({successes}) must be between 0 and trials ({trials})")
    return _pb.Outcome(successes=successes, trials=trials, values=[float(v) for v in outcome.get("values", ())])


def quality_message(quality: QualityLike) -> _pb.Quality:
    if isinstance(quality, _pb.Quality):
        return quality
    correct, labelled = int(quality.get("correct", 0)), int(quality.get("labelled", 0))
    if correct < 0 or labelled < 0 or correct > labelled:
        raise ValueError(f"quality: correct ({correct}) must be between 0 and labelled ({labelled})")
    return _pb.Quality(correct=correct, labelled=labelled)


def metrics_sample(model: str, version: str, *, requests: int = 0, errors: int = 0,
                   latency_ms: Iterable[float] = (), latency_p95_ms: float | None = None,
                   time: dt.datetime | None = None, features: Mapping[str, FeatureLike] | None = None,
                   predictions: Iterable[float] = (), outcome: OutcomeLike | None = None,
                   quality: QualityLike | None = None, reference: bool = False) -> _pb.MetricsSample:
    """One window of measurements for a model version; `time` (when the window ended) defaults to now."""
    if requests < 0 or errors < 0:
        raise ValueError("requests and errors must not be negative")
    if errors > requests:
        raise ValueError(f"errors ({errors}) cannot exceed requests ({requests})")
    sample = _pb.MetricsSample(model=model, version=version, requests=requests, errors=errors,
                               latency_ms=list(latency_ms), predictions=[float(p) for p in predictions],
                               reference=reference)
    if latency_p95_ms is not None:
        sample.latency_p95_ms = latency_p95_ms
    if time is not None:
        # A naive datetime is taken as UTC, as protobuf does.
        sample.time.FromDatetime(time)
    for name, values in (features or {}).items():
        sample.features[name].CopyFrom(feature_values(name, values))
    if outcome is not None:
        sample.outcome.CopyFrom(outcome_message(outcome))
    if quality is not None:
        sample.quality.CopyFrom(quality_message(quality))
    return sample


def metrics_samples(samples: Iterable[_pb.MetricsSample | Mapping[str, Any]] | None,
                    one: Mapping[str, Any]) -> list[_pb.MetricsSample]:
    """The batch of a `report_metrics` call: `samples`, or the one described by keywords, not both."""
    if samples is not None:
        if one:
            raise ValueError("pass either samples or the keywords of one sample, not both")
        return [s if isinstance(s, _pb.MetricsSample) else metrics_sample(**s) for s in samples]
    if not one.get("model") or not one.get("version"):
        raise ValueError("report_metrics needs samples, or model= and version= for one sample")
    return [metrics_sample(**one)]
