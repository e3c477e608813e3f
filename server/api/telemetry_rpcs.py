"""ReportMetrics: batched samples per model version, aggregated on ingest, and the fast-fail check."""

from __future__ import annotations

import math
import time

import grpc

from modelctl.v1 import deployment_pb2 as _pb

from ..errors import NotFoundError, Violations
from ..registry import validation
from .services import Services

MAX_SAMPLES_PER_REPORT = 1000
MAX_LATENCIES_PER_SAMPLE = 10_000
#: Counts are uint64 on the wire but signed 64-bit in the database.
MAX_COUNT = 2 ** 63 - 1
#: What google.protobuf.Timestamp can turn into a datetime: 0001-01-01 .. 9999-12-31.
MIN_TIME_SECONDS, MAX_TIME_SECONDS = -62_135_596_800, 253_402_300_799


class TelemetryRpcs:
    services: Services

    async def ReportMetrics(self, request: _pb.ReportMetricsRequest, context: grpc.aio.ServicerContext):
        started = time.perf_counter()
        _validate(request)
        s = self.services
        pairs = {(sample.model, sample.version) for sample in request.samples}
        for model, version in pairs - s.known_versions:
            await s.run(_require_version, s, model, version)
            s.known_versions.add((model, version))
        await s.run(_ingest, s, request)
        for sample in request.samples:
            s.recorder.model_requests.labels(model=sample.model, version=sample.version).inc(sample.requests)
            s.recorder.model_errors.labels(model=sample.model, version=sample.version).inc(sample.errors)
        # Fast fail: a critical gate breached by these very reports rolls back before we answer.
        for model, version in sorted(pairs):
            events = await s.run(s.deployments.on_metrics, model, version)
            if events:
                s.announcer.announce(events)
                if any(e.kind.value == "ROLLBACK_STARTED" for e in events):
                    s.recorder.rollback_seconds.observe(time.perf_counter() - started)
        return _pb.ReportMetricsResponse(accepted_samples=len(request.samples))


def _validate(request: _pb.ReportMetricsRequest) -> None:
    problems = Violations()
    if not request.samples:
        problems.add("samples", "send at least one sample")
    if len(request.samples) > MAX_SAMPLES_PER_REPORT:
        problems.add("samples", f"at most {MAX_SAMPLES_PER_REPORT} samples per report; send several reports")
    for i, sample in enumerate(request.samples[:MAX_SAMPLES_PER_REPORT]):
        at = f"samples[{i}]"
        validation.check_name(sample.model, problems, field=f"{at}.model")
        validation.check_version(sample.version, problems, field=f"{at}.version")
        if sample.requests > MAX_COUNT:
            problems.add(f"{at}.requests", f"at most {MAX_COUNT} per sample")
        if sample.HasField("time") and not MIN_TIME_SECONDS <= sample.time.seconds <= MAX_TIME_SECONDS:
            problems.add(f"{at}.time", "must be a date between the years 1 and 9999")
        if sample.errors > sample.requests:
            problems.add(f"{at}.errors", f"{sample.errors} errors out of {sample.requests} requests")
        if len(sample.latency_ms) > MAX_LATENCIES_PER_SAMPLE:
            problems.add(f"{at}.latency_ms", f"at most {MAX_LATENCIES_PER_SAMPLE} values; send a p95 instead")
        if any(not math.isfinite(v) or v < 0 for v in sample.latency_ms):
            problems.add(f"{at}.latency_ms", "latencies must be finite, non-negative milliseconds")
        if sample.HasField("latency_p95_ms") and (not math.isfinite(sample.latency_p95_ms)
                                                  or sample.latency_p95_ms < 0):
            problems.add(f"{at}.latency_p95_ms", "must be finite, non-negative milliseconds")
        if sample.HasField("latency_p95_ms") and sample.latency_ms:
            problems.add(f"{at}.latency_p95_ms", "send latency_ms samples or a p95, not both")
        if sample.HasField("latency_p95_ms") and not sample.requests:
            problems.add(f"{at}.latency_p95_ms", "a p95 needs the requests it describes")
    problems.raise_if_any()


def _require_version(s: Services, model: str, version: str) -> None:
    try:
        s.registry.get_version(model, version)
    except NotFoundError:
        raise NotFoundError(f"{model} version {version} is not registered; register it before reporting metrics") \
            from None


def _ingest(s: Services, request: _pb.ReportMetricsRequest) -> None:
    """Journal the reports (durable before we answer), then fold them into the in-memory windows."""
    now = s.clock.now()
    reports = []
    for sample in request.samples:
        at = sample.time.ToDatetime(tzinfo=now.tzinfo) if sample.HasField("time") else None
        if at is not None and at > now:
            at = now  # a client clock ahead of ours must not push reports into the future
        quantiles = {0.95: sample.latency_p95_ms} if sample.HasField("latency_p95_ms") else None
        reports.append(s.metrics.prepare(sample.model, sample.version, requests=sample.requests,
                                         errors=sample.errors, latency_ms=list(sample.latency_ms),
                                         latency_quantiles=quantiles, at=at))
    s.journal.append(reports)
    for report in reports:
        s.metrics.add(report)
