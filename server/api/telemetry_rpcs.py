"""ReportMetrics: batched samples per model version, aggregated on ingest, and the fast-fail check.

One ingestion path for everything a pipeline reports: traffic (requests, errors,
latency) feeds the metrics windows and the gates; features, predictions and
quality feed drift; outcomes feed experiments. The whole request is validated
before anything is written, so a rejected request changes nothing; an accepted
one is journaled (with the experiments' running sums, in the same transaction)
before it is answered.
"""

from __future__ import annotations

import logging
import math
import time

import grpc
import numpy as np

from modelctl.v1 import deployment_pb2 as _pb

from ..deployments.model import DeploymentEvent
from ..errors import NotFoundError, Violations
from ..registry import validation
from ..telemetry.sample import TelemetrySample
from ._time import is_datetime
from .services import Services

log = logging.getLogger(__name__)

MAX_SAMPLES_PER_REPORT = 1000
#: Counts are uint64 on the wire but signed 64-bit in the database.
MAX_COUNT = 2 ** 63 - 1
#: A latency beyond this (about 11.6 days) is a unit mistake, not a measurement.
MAX_LATENCY_MS = 1e9
MAX_FEATURE_NAME = 128
MAX_CATEGORY_LENGTH = 256
#: Outcome values are summed, and their squares too, for ever: beyond this (a quadrillion) they would overflow.
MAX_OUTCOME_VALUE = 1e15


class TelemetryRpcs:
    services: Services

    async def ReportMetrics(self, request: _pb.ReportMetricsRequest, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        s = self.services
        _validate(request, s.settings.telemetry.max_values_per_sample, s.settings.drift.max_features)
        pairs = {(sample.model, sample.version) for sample in request.samples}
        for model, version in pairs - s.known_versions:
            await s.run(_require_version, s, model, version)
            s.known_versions.add((model, version))
        # One trip to the thread pool for the journal write, the windows and the fast-fail check.
        events = await s.run(_ingest_and_check, s, request, pairs)
        if events:
            s.announcer.announce(events)
            if any(e.kind.value == "ROLLBACK_STARTED" for e in events):
                s.recorder.rollback_seconds.observe(time.perf_counter() - started)
        return _pb.ReportMetricsResponse(accepted_samples=len(request.samples))


def _validate(request: _pb.ReportMetricsRequest, max_values: int, max_features: int) -> None:
    problems = Violations()
    if not request.samples:
        problems.add("samples", "send at least one sample")
    if len(request.samples) > MAX_SAMPLES_PER_REPORT:
        problems.add("samples", f"at most {MAX_SAMPLES_PER_REPORT} samples per report; send several reports")
    for i, sample in enumerate(request.samples[:MAX_SAMPLES_PER_REPORT]):
        _validate_sample(sample, f"samples[{i}]", problems, max_values, max_features)
    problems.raise_if_any()


def _validate_sample(sample: _pb.MetricsSample, at: str, problems: Violations, max_values: int,
                     max_features: int) -> None:
    validation.check_name(sample.model, problems, field=f"{at}.model")
    validation.check_version(sample.version, problems, field=f"{at}.version")
    if sample.requests > MAX_COUNT:
        problems.add(f"{at}.requests", f"at most {MAX_COUNT} per sample")
    if sample.HasField("time") and not is_datetime(sample.time):
        problems.add(f"{at}.time", "must be a date between the years 1 and 9999 (nanos 0..999999999)")
    if sample.errors > sample.requests:
        problems.add(f"{at}.errors", f"{sample.errors} errors out of {sample.requests} requests")
    if len(sample.latency_ms) > max_values:
        problems.add(f"{at}.latency_ms", f"at most {max_values} values; send a p95 instead")
    elif not _within(sample.latency_ms, 0.0, MAX_LATENCY_MS):
        problems.add(f"{at}.latency_ms", f"latencies must be finite milliseconds between 0 and {MAX_LATENCY_MS:g}")
    if sample.HasField("latency_p95_ms"):
        if not 0 <= sample.latency_p95_ms <= MAX_LATENCY_MS:
            problems.add(f"{at}.latency_p95_ms", f"must be finite milliseconds between 0 and {MAX_LATENCY_MS:g}")
        if sample.latency_ms:
            problems.add(f"{at}.latency_p95_ms", "send latency_ms samples or a p95, not both")
        if not sample.requests:
            problems.add(f"{at}.latency_p95_ms", "a p95 needs the requests it describes")
    _validate_features(sample, at, problems, max_values, max_features)
    _check_values(sample.predictions, f"{at}.predictions", problems, max_values)
    if sample.HasField("outcome"):
        o = sample.outcome
        if o.trials > MAX_COUNT:
            problems.add(f"{at}.outcome.trials", f"at most {MAX_COUNT} per sample")
        if o.successes > o.trials:
            problems.add(f"{at}.outcome.successes", f"{o.successes} successes out of {o.trials} trials")
        _check_values(o.values, f"{at}.outcome.values", problems, max_values, limit=MAX_OUTCOME_VALUE)
    if sample.HasField("quality"):
        q = sample.quality
        if q.labelled > MAX_COUNT:
            problems.add(f"{at}.quality.labelled", f"at most {MAX_COUNT} per sample")
        if q.correct > q.labelled:
            problems.add(f"{at}.quality.correct", f"{q.correct} correct out of {q.labelled} labelled")
    if sample.reference:
        # Reference data describes what the version was trained or validated on, not served traffic.
        traffic = [name for name, present in (
            ("requests", sample.requests), ("errors", sample.errors), ("latency_ms", len(sample.latency_ms)),
            ("latency_p95_ms", sample.HasField("latency_p95_ms")), ("outcome", sample.HasField("outcome")))
            if present]
        for name in traffic:
            problems.add(f"{at}.{name}", "a reference sample describes reference data, not traffic: "
                                         "report traffic in a separate sample")
        if not (sample.features or sample.predictions or sample.HasField("quality")):
            problems.add(f"{at}.reference", "a reference sample needs features, predictions or quality")


def _validate_features(sample: _pb.MetricsSample, at: str, problems: Violations, max_values: int,
                       max_features: int) -> None:
    if len(sample.features) > max_features:
        problems.add(f"{at}.features", f"at most {max_features} features per model version (drift.max_features)")
        return
    for name, values in sorted(sample.features.items()):
        field = f"{at}.features[{name[:MAX_FEATURE_NAME]}]"
        if not name or len(name) > MAX_FEATURE_NAME or not name.isprintable():
            problems.add(f"{at}.features", f"feature names must be 1 to {MAX_FEATURE_NAME} printable characters")
            continue
        if values.numeric and values.categorical:
            problems.add(field, "a feature is numeric or categorical, not both")
        elif not values.numeric and not values.categorical:
            problems.add(field, "no values: send numeric or categorical values, or leave the feature out")
        _check_values(values.numeric, f"{field}.numeric", problems, max_values)
        if len(values.categorical) > max_values:
            problems.add(f"{field}.categorical", f"at most {max_values} values per sample "
                                                 "(telemetry.max_values_per_sample)")
        elif any(len(v) > MAX_CATEGORY_LENGTH for v in values.categorical):
            problems.add(f"{field}.categorical", f"categories must be at most {MAX_CATEGORY_LENGTH} characters")


def _check_values(values, field: str, problems: Violations, max_values: int,  # type: ignore[no-untyped-def]
                  limit: float | None = None) -> None:
    """At most `max_values` finite values, each within ±`limit` when one is given; one problem at most."""
    if len(values) > max_values:
        problems.add(field, f"at most {max_values} values per sample (telemetry.max_values_per_sample)")
    elif not _within(values, -math.inf, math.inf, inclusive=False):
        problems.add(field, "values must be finite numbers (no NaN or infinity)")
    elif limit is not None and not _within(values, -limit, limit):
        problems.add(field, f"values must be between -{limit:g} and {limit:g}")


def _within(values, low: float, high: float, *, inclusive: bool = True) -> bool:  # type: ignore[no-untyped-def]
    """Every value in [low, high] (or strictly between, when not `inclusive`); NaN never is.

    Vectorised: a report carries up to thousands of values per field, and a Python loop over them
    was a visible share of ReportMetrics' time."""
    if len(values) == 0:
        return True
    array = _floats(values)
    if inclusive:
        return bool(np.all((array >= low) & (array <= high)))
    return bool(np.all((array > low) & (array < high)))


def _floats(values) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A repeated double field (or a list) as a float64 array.

    Straight from protobuf's buffer: 3.5 us for 1,000 values, against 60 us for `list(values)` and 110 us
    more for an array of that list, once per field and per use (latencies, every feature, predictions)."""
    return np.asarray(values, dtype=np.float64)


def _require_version(s: Services, model: str, version: str) -> None:
    try:
        s.registry.get_version(model, version)
    except NotFoundError:
        raise NotFoundError(f"{model} version {version} is not registered; register it before reporting metrics") \
            from None


def _to_sample(s: Services, sample: _pb.MetricsSample) -> TelemetrySample:
    now = s.clock.now()
    at = sample.time.ToDatetime(tzinfo=now.tzinfo) if sample.HasField("time") else now
    # A client clock ahead of ours must not push reports into the future.
    at = min(at, now)
    return TelemetrySample(
        model=sample.model, version=sample.version, at=at, requests=sample.requests, errors=sample.errors,
        latency_ms=_floats(sample.latency_ms),
        latency_p95_ms=sample.latency_p95_ms if sample.HasField("latency_p95_ms") else None,
        numeric={name: _floats(v.numeric) for name, v in sample.features.items() if v.numeric},
        categorical={name: list(v.categorical) for name, v in sample.features.items() if v.categorical},
        predictions=_floats(sample.predictions), successes=sample.outcome.successes, trials=sample.outcome.trials,
        values=list(sample.outcome.values), correct=sample.quality.correct, labelled=sample.quality.labelled,
        reference=sample.reference)


def _ingest_and_check(s: Services, request: _pb.ReportMetricsRequest,
                      pairs: set[tuple[str, str]]) -> list[DeploymentEvent]:
    """Ingest, then fast-fail: a critical gate breached by these very reports rolls back before we answer.

    Once per model, with every version it reported: the check judges the model's deployment as a
    whole, so a batch with both the canary's and the stable version's samples is evaluated once.
    """
    for sample in _ingest(s, request):
        if not sample.reference:
            s.recorder.observe_model_traffic(sample.model, sample.version, sample.requests, sample.errors,
                                             sample.latency_ms)
    versions: dict[str, set[str]] = {}
    for model, version in pairs:
        versions.setdefault(model, set()).add(version)
    events: list[DeploymentEvent] = []
    for model in sorted(versions):
        events += s.deployments.on_metrics(model, versions[model])
    return events


def _ingest(s: Services, request: _pb.ReportMetricsRequest) -> list[TelemetrySample]:
    """Check what needs state (feature types), journal, then fold into the windows, drift and experiments."""
    samples = [_to_sample(s, sample) for sample in request.samples]
    problems = Violations()
    problems.extend(s.drift.check(samples))
    problems.raise_if_any()
    live = [sample for sample in samples if not sample.reference]
    reports = [s.metrics.prepare(x.model, x.version, requests=x.requests, errors=x.errors, latency_ms=x.latency_ms,
                                 latency_quantiles={0.95: x.latency_p95_ms} if x.latency_p95_ms is not None else None,
                                 at=x.at) for x in live]
    if reports:
        s.journal.append(reports, also=s.experiments.journal_hook(live))
    for report in reports:
        s.metrics.add(report)
    try:
        s.drift.ingest(samples)
    except Exception:  # noqa: BLE001 - the report is journaled and will be answered: drift is derived from it
        log.exception("folding a report into the drift profiles failed; the report itself is kept")
    return samples
