"""A latency histogram with log-spaced buckets: bounded, mergeable, quantiles within 2 %.

Reports arrive as raw samples or as quantiles a client computed; both fold into
the same buckets, so windows of any length merge by adding counts, which a
reservoir of samples could not do without bias.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np

#: Each bucket is 4 % wider than the one below it: a quantile read back from the
#: bucket's geometric middle is within 2 % of the true value.
GROWTH = 1.04
#: Latencies at or below this (milliseconds) share bucket 0, read back as 0.
FLOOR_MS = 0.01
#: Latencies above ~2.8 hours land in the top bucket; the histogram never grows past it.
TOP_MS = 1e7
TOP_BUCKET = math.ceil(math.log(TOP_MS / FLOOR_MS) / math.log(GROWTH))
_LOG_GROWTH = math.log(GROWTH)


def bucket_of(value_ms: float) -> int:
    """The bucket of any float: NaN and values at or below the floor in 0, +inf and huge ones at the top.

    Total on every input: the API rejects such values, but a histogram read back
    from the journal or fed by another caller must never raise (1e308 / FLOOR_MS
    is infinity, and int(infinity) raised OverflowError inside ReportMetrics).
    """
    if not value_ms > FLOOR_MS:  # NaN fails the comparison too
        return 0
    if value_ms >= TOP_MS:
        return TOP_BUCKET
    return min(TOP_BUCKET, int(math.log(value_ms / FLOOR_MS) / _LOG_GROWTH) + 1)


def bucket_value(index: int) -> float:
    """The geometric middle of a bucket, the value a quantile falling in it reads as."""
    if index <= 0:
        return 0.0
    return FLOOR_MS * GROWTH ** (index - 0.5)


class LatencyHistogram:
    """Weights per log bucket; weights are floats because quantile reports spread a count."""

    __slots__ = ("_weights", "total")

    def __init__(self) -> None:
        self._weights: dict[int, float] = {}
        self.total = 0.0

    def add(self, value_ms: float, weight: float = 1.0) -> None:
        if not 0 < weight < math.inf or math.isnan(value_ms):
            return  # no weight, or not a measurement: nothing a quantile could be read from
        index = bucket_of(value_ms)
        self._weights[index] = self._weights.get(index, 0.0) + weight
        self.total += weight

    def add_samples(self, values_ms: Iterable[float]) -> None:
        # A report carries up to thousands of latencies: bucket them in one vectorised pass
        # (the same arithmetic as bucket_of), then add one weight per bucket used.
        values = np.asarray(values_ms if isinstance(values_ms, (list, tuple, np.ndarray)) else list(values_ms),
                            dtype=np.float64)
        if values.size == 0:
            return
        if values.size < 16:
            for value in values.tolist():
                self.add(value)
            return
        # Clipped into [floor, top] first so the arithmetic never overflows; the ends are set after.
        clipped = np.clip(values, FLOOR_MS, TOP_MS)
        with np.errstate(invalid="ignore"):  # NaN's index is garbage until it is set to 0 below
            indexes = np.minimum(TOP_BUCKET, (np.log(clipped / FLOOR_MS) / _LOG_GROWTH).astype(np.int64) + 1)
        indexes[~(values > FLOOR_MS)] = 0  # NaN fails the comparison too, as in bucket_of
        indexes[values >= TOP_MS] = TOP_BUCKET
        # Counting by bincount over the fixed bucket range: a sort-based np.unique was most of this.
        counts = np.bincount(indexes, minlength=TOP_BUCKET + 1)
        used = np.flatnonzero(counts)
        weights = self._weights
        for index, count in zip(used.tolist(), counts[used].tolist()):
            weights[index] = weights.get(index, 0.0) + count
        self.total += float(values.size)

    def add_quantiles(self, quantiles: Mapping[float, float], count: float) -> None:
        """Fold in a distribution known only by some quantiles of `count` requests.

        The mass between two reported quantiles is put at the upper one, and the
        mass above the highest at the highest: reading the same quantiles back
        then gives the reported values.
        """
        below = 0.0
        points = sorted(quantiles.items())
        for q, value in points:
            self.add(value, (q - below) * count)
            below = q
        self.add(points[-1][1], (1.0 - below) * count)

    def merge(self, other: LatencyHistogram) -> None:
        for index, weight in other._weights.items():
            self._weights[index] = self._weights.get(index, 0.0) + weight
        self.total += other.total

    def quantile(self, q: float) -> float | None:
        """The `q` quantile (0..1) in milliseconds, or None when empty."""
        if self.total <= 0:
            return None
        target = q * self.total
        # Float sums of spread quantile weights land a hair below the exact boundary.
        tolerance = 1e-9 * self.total
        seen = 0.0
        for index in sorted(self._weights):
            seen += self._weights[index]
            if seen + tolerance >= target:
                return bucket_value(index)
        return bucket_value(max(self._weights))

    def __len__(self) -> int:
        """Buckets in use: the memory this histogram holds."""
        return len(self._weights)

    def to_dict(self) -> dict[str, float]:
        """A JSON-ready form ({bucket index: weight}), for the metrics journal."""
        return {str(index): weight for index, weight in self._weights.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, float]) -> LatencyHistogram:
        histogram = cls()
        if not isinstance(data, Mapping):
            return histogram
        for key, value in data.items():
            # A journal row is trusted as far as it is sane: a bucket outside the range or a weight
            # that is not a finite positive number is skipped, so a replay never stops the start.
            try:
                index, weight = int(key), float(value)
            except (TypeError, ValueError, OverflowError):
                continue
            if 0 <= index <= TOP_BUCKET and 0 < weight < math.inf:
                histogram._weights[index] = histogram._weights.get(index, 0.0) + weight
                histogram.total += weight
        return histogram
