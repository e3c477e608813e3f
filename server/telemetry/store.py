"""Model traffic aggregated on ingest: per (model, version), one small record per time bucket.

A report never becomes a row: it is folded into the bucket of its time (1 s by
default) as request and error counts and a latency histogram. Each series keeps
at most `max_data_points` buckets, dropping the oldest, and the store at most
`max_series` series, dropping the one idle longest, so memory stays bounded
whatever clients send.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import threading
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from ..clock import Clock
from ..errors import Violations
from .histogram import LatencyHistogram
from .window import WindowStats

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Ingested:
    """What one `ingest` added; the caller hands (model, version) to the engine's fast-fail check."""

    model: str
    version: str
    requests: int
    errors: int
    at: dt.datetime


@dataclass(frozen=True)
class Report:
    """One validated report, its latency already folded into a histogram: what the journal keeps."""

    model: str
    version: str
    requests: int
    errors: int
    latency: LatencyHistogram
    at: dt.datetime


@dataclass
class _Bucket:
    requests: int = 0
    errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    #: Times (epoch seconds) of the first and last report folded in, to place the bucket against a window.
    first_at: float = math.inf
    last_at: float = -math.inf


class _Series:
    """The buckets of one (model, version), kept sorted by time so windows are a bisect away."""

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.buckets: dict[int, _Bucket] = {}
        self.last_ingest = 0.0

    def bucket(self, key: int, max_points: int) -> _Bucket | None:
        found = self.buckets.get(key)
        if found is not None:
            return found
        if len(self.keys) >= max_points:
            if key < self.keys[0]:
                return None  # older than everything kept, and there is no room: too late to count
            del self.buckets[self.keys.pop(0)]
        bisect.insort(self.keys, key)
        created = self.buckets[key] = _Bucket()
        return created


class MetricsStore:
    """Thread-safe: reports arrive on the RPC thread pool while the reconcile loop reads windows."""

    def __init__(self, clock: Clock, *, bucket_seconds: float = 1.0, max_data_points: int = 3600,
                 max_series: int = 10_000) -> None:
        if bucket_seconds <= 0 or max_data_points < 1 or max_series < 1:
            raise ValueError("bucket_seconds, max_data_points and max_series must be positive")
        self._clock = clock
        self._width = bucket_seconds
        self._max_points = max_data_points
        self._max_series = max_series
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()
        #: Reports (or parts) that arrived too late for the retained history.
        self.dropped_late = 0

    def ingest(self, model: str, version: str, *, requests: int, errors: int = 0,
               latency_ms: Iterable[float] = (), latency_quantiles: Mapping[float, float] | None = None,
               at: dt.datetime | None = None) -> Ingested:
        """Fold one report in: `requests` seen, `errors` among them, and their latency.

        Latency comes either as samples (`latency_ms`, any subset of the requests)
        or as `latency_quantiles` {0.5: ms, 0.95: ms, ...} describing all `requests`.
        """
        return self.add(self.prepare(model, version, requests=requests, errors=errors, latency_ms=latency_ms,
                                     latency_quantiles=latency_quantiles, at=at))

    def prepare(self, model: str, version: str, *, requests: int, errors: int = 0,
                latency_ms: Iterable[float] = (), latency_quantiles: Mapping[float, float] | None = None,
                at: dt.datetime | None = None) -> Report:
        """Validate a report and summarise its latency, without adding it yet (to journal it first)."""
        samples = latency_ms if isinstance(latency_ms, np.ndarray) else list(latency_ms)
        _validate(model, version, requests, errors, samples, latency_quantiles)
        latency = LatencyHistogram()
        latency.add_samples(samples)
        if latency_quantiles and requests:
            latency.add_quantiles(latency_quantiles, requests)
        return Report(model, version, requests, errors, latency, at or self._clock.now())

    def add(self, report: Report) -> Ingested:
        """Fold a prepared report (new, or replayed from the journal after a restart) into its bucket."""
        seconds = _epoch_seconds(report.at)
        key = math.floor(seconds / self._width)
        with self._lock:
            series = self._series.get((report.model, report.version))
            if series is None:
                series = self._series[(report.model, report.version)] = _Series()
            series.last_ingest = self._clock.monotonic()
            self._evict_idle_series()
            bucket = series.bucket(key, self._max_points)
            if bucket is None:
                self.dropped_late += 1
            else:
                bucket.first_at = min(bucket.first_at, seconds)
                bucket.last_at = max(bucket.last_at, seconds)
                bucket.requests += report.requests
                bucket.errors += report.errors
                bucket.latency.merge(report.latency)
        return Ingested(report.model, report.version, report.requests, report.errors, report.at)

    @property
    def retention_seconds(self) -> float:
        """How far back a series can reach: older reports no longer matter."""
        return self._width * self._max_points

    def window(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> WindowStats:
        """The reports made after `since` and up to `until`.

        A report describes requests served before it was made, so one made at
        `since` exactly belongs to the time before. A bucket holding reports from
        both sides of a boundary counts whole: a step that began mid-bucket must
        see the reports that came after it in that bucket, or fast-fail would wait.
        """
        start, end = _epoch_seconds(since), _epoch_seconds(until)
        requests = errors = 0
        latency = LatencyHistogram()
        with self._lock:
            series = self._series.get((model, version))
            if series is not None:
                lo = bisect.bisect_left(series.keys, math.floor(start / self._width))
                hi = bisect.bisect_right(series.keys, math.floor(end / self._width))
                for key in series.keys[lo:hi]:
                    bucket = series.buckets[key]
                    if bucket.last_at <= start or bucket.first_at > end:
                        continue
                    requests += bucket.requests
                    errors += bucket.errors
                    latency.merge(bucket.latency)
        # Quantiles are read from the merged histogram only when asked (the gates ask for p95 alone).
        return WindowStats(since, until, requests, errors, latency.total, histogram=latency)

    def series(self) -> list[tuple[str, str]]:
        """The (model, version) pairs with data, for exporters."""
        with self._lock:
            return sorted(self._series)

    def data_points(self, model: str, version: str) -> int:
        with self._lock:
            series = self._series.get((model, version))
            return len(series.keys) if series else 0

    def forget(self, model: str, version: str | None = None) -> None:
        """Drop a model's series (all versions when `version` is None)."""
        with self._lock:
            for key in [k for k in self._series if k[0] == model and version in (None, k[1])]:
                del self._series[key]

    def _evict_idle_series(self) -> None:
        while len(self._series) > self._max_series:
            idle = min(self._series, key=lambda k: self._series[k].last_ingest)
            del self._series[idle]


def _epoch_seconds(at: dt.datetime) -> float:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the metrics store")
    return (at - _EPOCH).total_seconds()


def _validate(model: str, version: str, requests: int, errors: int, samples: list[float] | np.ndarray,
              quantiles: Mapping[float, float] | None) -> None:
    problems = Violations()
    if not model:
        problems.add("model", "must not be empty")
    if not version:
        problems.add("version", "must not be empty")
    if requests < 0:
        problems.add("requests", "must not be negative")
    if errors < 0 or errors > max(requests, 0):
        problems.add("errors", f"must be between 0 and requests ({requests})")
    if len(samples) and not bool(np.all(np.isfinite(values := np.asarray(samples, dtype=np.float64)) & (values >= 0))):
        problems.add("latency_ms", "every sample must be a finite, non-negative number of milliseconds")
    if quantiles:
        if len(samples):
            problems.add("latency_quantiles", "give latency samples or quantiles, not both")
        if any(not 0 < q <= 1 for q in quantiles):
            problems.add("latency_quantiles", "quantiles must be in (0, 1], e.g. 0.95")
        elif any(not math.isfinite(v) or v < 0 for v in quantiles.values()):
            problems.add("latency_quantiles", "values must be finite, non-negative milliseconds")
        else:
            values = [v for _, v in sorted(quantiles.items())]
            if values != sorted(values):
                problems.add("latency_quantiles", "a higher quantile cannot have a lower latency")
    problems.raise_if_any()
