"""Live values of one model version, counted in the reference's bins per time bucket.

A bucket (10 s by default) holds, per feature and for the predictions, one
integer array of counts in that stream's bins, plus the labelled requests and
how many were right. Any window is the sum of the buckets it covers, so the
memory of a version is bounded by buckets x streams x bins, whatever the
traffic: at most `max_buckets` buckets are kept, the oldest dropped first.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: Counts of one bin in one bucket (10 s) stay far below 2**31; sums are taken in int64.
_BUCKET_DTYPE = np.int32


@dataclass
class _Bucket:
    features: dict[str, np.ndarray] = field(default_factory=dict)
    predictions: np.ndarray | None = None
    correct: int = 0
    labelled: int = 0
    #: Epoch seconds of the first and last value folded in, to place the bucket against a window.
    first_at: float = math.inf
    last_at: float = -math.inf

    def spans(self, seconds: float) -> None:
        """Widen the bucket's time span to include `seconds`."""
        self.first_at = min(self.first_at, seconds)
        self.last_at = max(self.last_at, seconds)


@dataclass(frozen=True)
class WindowCounts:
    """The sum of the buckets of a window."""

    features: dict[str, np.ndarray]
    predictions: np.ndarray | None
    correct: int
    labelled: int

    def as_bucket(self) -> _Bucket:
        return _Bucket(dict(self.features), self.predictions, self.correct, self.labelled)


class LiveWindow:
    """Not thread-safe: the drift service calls it under its lock.

    Besides the buckets it keeps their running total, so a window covering most
    buckets (the report's default hour) costs the few buckets outside it, not
    the hundreds inside.
    """

    def __init__(self, bucket_seconds: float = 10.0, max_buckets: int = 360) -> None:
        if bucket_seconds <= 0 or max_buckets < 1:
            raise ValueError("bucket_seconds and max_buckets must be positive")
        self.bucket_seconds = bucket_seconds
        self.max_buckets = max_buckets
        self._keys: list[int] = []
        self._buckets: dict[int, _Bucket] = {}
        self._total = _Bucket()
        #: Samples that arrived older than every kept bucket while the window was full.
        self.dropped_late = 0

    def add(self, at: dt.datetime, features: Mapping[str, np.ndarray], predictions: np.ndarray | None = None,
            correct: int = 0, labelled: int = 0) -> None:
        """Count one sample in the bucket of `at`: its features' and predictions' bin counts, its labelled
        requests and how many were right. One call per sample, so the bucket is looked up once."""
        bucket = self._bucket(at)
        if bucket is None:
            return
        for target, dtype in ((bucket, _BUCKET_DTYPE), (self._total, np.int64)):
            known = target.features
            for name, counts in features.items():
                into = known.get(name)
                if into is None:
                    known[name] = counts.astype(dtype)
                else:
                    np.add(into, counts, out=into, casting="unsafe")
            if predictions is not None:
                if target.predictions is None:
                    target.predictions = predictions.astype(dtype)
                else:
                    np.add(target.predictions, predictions, out=target.predictions, casting="unsafe")
            target.correct += correct
            target.labelled += labelled

    def counts(self, since: dt.datetime, until: dt.datetime) -> WindowCounts:
        """Sum of the buckets with values after `since` and up to `until` (a bucket across a bound counts whole)."""
        start, end = _seconds(since), _seconds(until)
        lo = bisect.bisect_left(self._keys, math.floor(start / self.bucket_seconds))
        hi = bisect.bisect_right(self._keys, math.floor(end / self.bucket_seconds))
        inside = [key for key in self._keys[lo:hi]
                  if not (self._buckets[key].last_at <= start or self._buckets[key].first_at > end)]
        if 2 * len(inside) <= len(self._keys):
            return _sum([self._buckets[key] for key in inside])
        chosen = set(inside)
        outside = [self._buckets[key] for key in self._keys if key not in chosen]
        return _subtract(self._total, _sum(outside))

    def last_seen(self) -> float | None:
        """Epoch seconds of the newest value, or None when empty."""
        return self._buckets[self._keys[-1]].last_at if self._keys else None

    def counters(self) -> int:
        """Integers held across buckets and streams."""
        total = 0
        for bucket in self._buckets.values():
            total += sum(c.size for c in bucket.features.values()) + 2
            total += bucket.predictions.size if bucket.predictions is not None else 0
        return total

    def __len__(self) -> int:
        """Buckets held: with the streams and bins, what bounds this window's memory."""
        return len(self._keys)

    @staticmethod
    def bucket_key(at: dt.datetime, bucket_seconds: float) -> int:
        """Which bucket of a window of `bucket_seconds` buckets counts what happened at `at`."""
        return _key(_seconds(at), bucket_seconds)

    def widen(self, at: dt.datetime) -> None:
        """Mark the bucket of `at`, if it holds anything, as spanning `at` too (values folded with a later time)."""
        seconds = _seconds(at)
        bucket = self._buckets.get(_key(seconds, self.bucket_seconds))
        if bucket is not None:
            bucket.spans(seconds)

    def _bucket(self, at: dt.datetime) -> _Bucket | None:
        seconds = _seconds(at)
        key = _key(seconds, self.bucket_seconds)
        bucket = self._buckets.get(key)
        if bucket is None:
            while self._keys and len(self._keys) >= self.max_buckets:  # a loop: max_buckets may have shrunk
                if key < self._keys[0]:
                    self.dropped_late += 1
                    return None  # older than everything kept, and no room: too late to count
                oldest = self._buckets.pop(self._keys.pop(0))
                self._total = _subtract(self._total, _sum([oldest])).as_bucket()
            bisect.insort(self._keys, key)
            bucket = self._buckets[key] = _Bucket()
        bucket.spans(seconds)
        return bucket


def _key(seconds: float, bucket_seconds: float) -> int:
    return math.floor(seconds / bucket_seconds)


def _sum(buckets: list[_Bucket]) -> WindowCounts:
    features: dict[str, np.ndarray] = {}
    predictions: np.ndarray | None = None
    correct = labelled = 0
    for bucket in buckets:
        for name, counts in bucket.features.items():
            total = features.get(name)
            features[name] = counts.astype(np.int64) if total is None else total + counts
        if bucket.predictions is not None:
            predictions = (bucket.predictions.astype(np.int64) if predictions is None
                           else predictions + bucket.predictions)
        correct += bucket.correct
        labelled += bucket.labelled
    return WindowCounts(features, predictions, correct, labelled)


def _subtract(total: _Bucket | WindowCounts, part: WindowCounts) -> WindowCounts:
    features = {name: counts - part.features[name] if name in part.features else counts.copy()
                for name, counts in total.features.items()}
    predictions = total.predictions
    if predictions is not None:
        predictions = predictions - part.predictions if part.predictions is not None else predictions.copy()
    return WindowCounts(features, predictions, total.correct - part.correct, total.labelled - part.labelled)


def _seconds(at: dt.datetime) -> float:
    if at.tzinfo is None:
        raise ValueError("naive datetime given to the drift window")
    return (at - _EPOCH).total_seconds()
