"""What a gate sees of a model version's traffic over a window, and where it comes from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WindowStats:
    """Aggregated traffic of one model version between `since` and `until`.

    `requests` is the sample count of the rate gates; `latency_samples` that of
    the latency gate (a client may time only some of its requests).
    """

    since: dt.datetime
    until: dt.datetime
    requests: int
    errors: int
    latency_samples: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None

    @property
    def error_rate(self) -> float:
        """Errors per request; 0.0 without requests (gates check `requests` first)."""
        return self.errors / self.requests if self.requests else 0.0

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
