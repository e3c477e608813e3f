"""One reported sample in domain form: what a `MetricsSample` says, validated, without protobuf.

`ReportMetrics` converts each wire sample into a `TelemetrySample` once; the
metrics windows, the drift engine and the experiments each read the parts they
need from it. A sample with `reference` set describes the version's reference
data (training or validation set), not live traffic. Every number in it is finite:
ReportMetrics refuses NaN and infinity, so its readers don't filter them again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Mapping, Sequence


@dataclass(frozen=True)
class TelemetrySample:
    model: str
    version: str
    #: When the window ended (clamped to the server's now).
    at: dt.datetime
    requests: int = 0
    errors: int = 0
    latency_ms: Sequence[float] = ()
    latency_p95_ms: float | None = None
    #: Input features seen in the batch: numeric ones here, categorical ones below, never both for a name.
    numeric: Mapping[str, Sequence[float]] = field(default_factory=dict)
    categorical: Mapping[str, Sequence[str]] = field(default_factory=dict)
    predictions: Sequence[float] = ()
    #: Business outcome: conversions out of trials, and/or a value per request.
    successes: int = 0
    trials: int = 0
    values: Sequence[float] = ()
    #: Labelled requests, and how many of them the model got right.
    correct: int = 0
    labelled: int = 0
    reference: bool = False

    @property
    def has_features(self) -> bool:
        return bool(self.numeric or self.categorical or len(self.predictions) or self.labelled)
