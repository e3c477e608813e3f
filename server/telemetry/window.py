"""What a gate sees of a model version's traffic over a window, and where it comes from."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from .histogram import LatencyHistogram

_FROM_HISTOGRAM: Any = object()


class WindowStats:
    """Aggregated traffic of one model version between `since` and `until`.

    `requests` is the sample count of the rate gates; `latency_samples` that of
    the latency gate (a client may time only some of its requests). The latency
    quantiles are given, or read from `histogram` the first time they are asked
    for: the gates read only p95, so p50 and p99 cost nothing on the hot path.
    Immutable, and equal when every value is.
    """

    __slots__ = ("since", "until", "requests", "errors", "latency_samples", "_histogram", "_quantiles")

    def __init__(self, since: dt.datetime, until: dt.datetime, requests: int, errors: int, latency_samples: float,
                 latency_p50_ms: float | None = _FROM_HISTOGRAM, latency_p95_ms: float | None = _FROM_HISTOGRAM,
                 latency_p99_ms: float | None = _FROM_HISTOGRAM, *,
                 histogram: LatencyHistogram | None = None) -> None:
        set_ = object.__setattr__
        set_(self, "since", since)
        set_(self, "until", until)
        set_(self, "requests", requests)
        set_(self, "errors", errors)
        set_(self, "latency_samples", latency_samples)
        set_(self, "_histogram", histogram)
        set_(self, "_quantiles", {0.50: latency_p50_ms, 0.95: latency_p95_ms, 0.99: latency_p99_ms})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("WindowStats is immutable")

    def _quantile(self, q: float) -> float | None:
        value = self._quantiles[q]
        if value is _FROM_HISTOGRAM:
            value = self._histogram.quantile(q) if self._histogram is not None else None
            self._quantiles[q] = value  # memoised: computed at most once per window
        return value

    @property
    def latency_p50_ms(self) -> float | None:
        return self._quantile(0.50)

    @property
    def latency_p95_ms(self) -> float | None:
        return self._quantile(0.95)

    @property
    def latency_p99_ms(self) -> float | None:
        return self._quantile(0.99)

    @property
    def error_rate(self) -> float:
        """Errors per request; 0.0 without requests (gates check `requests` first)."""
        return self.errors / self.requests if self.requests else 0.0

    def _values(self) -> tuple[object, ...]:
        return (self.since, self.until, self.requests, self.errors, self.latency_samples, self.latency_p50_ms,
                self.latency_p95_ms, self.latency_p99_ms)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowStats) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        names = ("since", "until", "requests", "errors", "latency_samples", "latency_p50_ms", "latency_p95_ms",
                 "latency_p99_ms")
        return "WindowStats(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, self._values())) + ")"

    @classmethod
    def empty(cls, since: dt.datetime, until: dt.datetime) -> WindowStats:
        return cls(since, until, 0, 0, 0.0, None, None, None)


class MetricsSource(Protocol):
    """Where the deployment engine reads metrics; `MetricsStore` in production, a script in tests."""

    def window(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> WindowStats:
        ...


class DriftSource(Protocol):
    """Drift scores for the drift gate; None means no score for that window (the gate is skipped)."""

    def drift_score(self, model: str, version: str, since: dt.datetime, until: dt.datetime) -> float | None:
        ...
