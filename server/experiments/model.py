"""An experiment's records: what it compares, its stored status, and the running sums of its arms.

All frozen. The arms hold sums that add up (counts, sums, sums of squares),
never one row per request, so a report is folded in with one additive UPDATE
and every statistic is computed from the sums on read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from dataclasses import dataclass

from .states import ExperimentState


class Metric(enum.Enum):
    CONVERSION = "CONVERSION"
    """outcome.successes / outcome.trials; higher wins; two-proportion z-test."""
    VALUE = "VALUE"
    """Mean of outcome.values (revenue, say); higher wins; Welch's t-test."""
    ERROR_RATE = "ERROR_RATE"
    """errors / requests; lower wins; two-proportion z-test."""
    LATENCY = "LATENCY"
    """Mean of latency_ms; lower wins; Welch's t-test."""

    @property
    def is_rate(self) -> bool:
        """A proportion of trials (z-test), as opposed to a mean of values (Welch)."""
        return self in (Metric.CONVERSION, Metric.ERROR_RATE)

    @property
    def higher_wins(self) -> bool:
        return self in (Metric.CONVERSION, Metric.VALUE)

    @property
    def label(self) -> str:
        """As the CLI spells it: `error-rate`."""
        return self.value.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Metric:
        try:
            return cls[text.strip().upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"unknown metric {text!r} (one of {', '.join(m.label for m in cls)})") from None


class Arm(enum.Enum):
    CONTROL = "control"
    TREATMENT = "treatment"


@dataclass(frozen=True)
class ArmTotals:
    """Running sums of one arm: enough for every metric's mean and variance."""

    requests: int = 0
    errors: int = 0
    successes: int = 0
    trials: int = 0
    value_count: int = 0
    value_sum: float = 0.0
    value_sum_squares: float = 0.0
    latency_count: int = 0
    latency_sum: float = 0.0
    latency_sum_squares: float = 0.0

    def plus(self, other: ArmTotals) -> ArmTotals:
        return ArmTotals(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                            for f in dataclasses.fields(self)})

    @property
    def is_empty(self) -> bool:
        return self == ArmTotals()


@dataclass(frozen=True)
class ArmIncrement:
    """What one batch of reports adds to one arm of one experiment."""

    experiment_id: str
    arm: Arm
    totals: ArmTotals


@dataclass(frozen=True)
class Experiment:
    id: str
    model: str
    control_version: str
    treatment_version: str
    #: Share of traffic on the treatment, percent, strictly between 0 and 100.
    treatment_percent: float
    metric: Metric
    state: ExperimentState
    #: Smallest relative lift worth detecting (0.02 = 2 %).
    min_effect: float
    alpha: float
    power: float
    #: The smallest always-valid p-value seen so far; it never rises.
    sequential_p_value: float
    created_at: dt.datetime
    stopped_at: dt.datetime | None = None
    created_by: str = ""
    stopped_by: str = ""
    reason: str = ""
    #: The canary deployment of the winner started when it was stopped with promote_winner.
    deployment_id: str | None = None

    def arm_of(self, version: str) -> Arm | None:
        if version == self.control_version:
            return Arm.CONTROL
        if version == self.treatment_version:
            return Arm.TREATMENT
        return None

    def version_of(self, arm: Arm) -> str:
        return self.control_version if arm is Arm.CONTROL else self.treatment_version

    @property
    def split(self) -> dict[str, float]:
        """The traffic split the experiment sets while it runs."""
        return {self.control_version: 100.0 - self.treatment_percent,
                self.treatment_version: self.treatment_percent}


@dataclass(frozen=True)
class StartRequest:
    """What StartExperiment asks for, validated field by field at the boundary."""

    model: str
    control_version: str
    treatment_version: str
    treatment_percent: float = 50.0
    metric: Metric = Metric.CONVERSION
    #: None: the configured `experiments.min_effect`.
    min_effect: float | None = None
