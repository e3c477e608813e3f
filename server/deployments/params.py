"""Per-deployment parameters: config defaults, overridden per deployment, validated once.

The resolved parameters are stored with the deployment, so a config change or a
restart never alters a rollout already under way.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..config import DeploymentSettings, ThresholdSettings
from ..errors import Violations
from .model import Gate
from .phases import Strategy

_AMOUNT = re.compile(r"^(\d+)(%?)$")
MIN_STEP_INTERVAL = 0.1


@dataclass(frozen=True)
class Thresholds:
    error_rate: float = 0.05
    latency_p95_ms: float = 1000.0
    drift_score: float = 0.1
    #: Relative gate: the new version's error rate may exceed the stable one's by at most this
    #: (absolute, 0.02 = two points). None turns the relative gate off.
    max_error_rate_increase: float | None = None
    #: Significance of the relative gate's z-test: it fails only when the excess is this unlikely to be noise.
    relative_alpha: float = 0.05


@dataclass(frozen=True)
class DeploymentParams:
    steps: tuple[float, ...] = (5, 10, 25, 50, 100)
    step_interval: float = 30.0
    min_samples: int = 50
    failure_limit: int = 2
    progress_deadline: float = 300.0
    bake_time: float = 60.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: Gates whose breach rolls back at once (on ingest), instead of counting toward failure_limit.
    critical_gates: frozenset[Gate] = frozenset({Gate.ERROR_RATE})
    #: Rolling: instances that may be switching (so unavailable) at once; a count or a percentage.
    max_unavailable: str = "25%"
    #: Rolling: further instances that may switch at once where the platform starts a copy first.
    max_surge: str = "25%"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, stored with the deployment."""
        data = dataclasses.asdict(self)
        data["steps"] = list(self.steps)
        data["critical_gates"] = sorted(g.value for g in self.critical_gates)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentParams:
        """The inverse of `to_dict`; keys missing from older rows take today's defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "steps" in values:
            values["steps"] = tuple(values["steps"])
        if "critical_gates" in values:
            values["critical_gates"] = frozenset(Gate(g) for g in values["critical_gates"])
        if "thresholds" in values:
            t_known = {f.name for f in dataclasses.fields(Thresholds)}
            stored = values["thresholds"]
            values["thresholds"] = Thresholds(**{k: v for k, v in stored.items() if k in t_known})
        return cls(**values)


#: Defaults with no config key: one place, shared with `from_dict` for older rows.
_BUILT_IN = DeploymentParams()


@dataclass(frozen=True)
class ParamOverrides:
    """What one deployment request sets; None keeps the config default. Durations are seconds."""

    steps: tuple[float, ...] | None = None
    step_interval: float | None = None
    min_samples: int | None = None
    failure_limit: int | None = None
    progress_deadline: float | None = None
    bake_time: float | None = None
    error_rate: float | None = None
    latency_p95_ms: float | None = None
    drift_score: float | None = None
    max_error_rate_increase: float | None = None
    relative_alpha: float | None = None
    critical_gates: tuple[str, ...] | None = None
    max_unavailable: str | None = None
    max_surge: str | None = None


def resolve_params(strategy: Strategy, overrides: ParamOverrides | None, *,
                   defaults: DeploymentSettings | None = None,
                   thresholds: ThresholdSettings | None = None) -> DeploymentParams:
    """Config defaults with `overrides` applied, or a ValidationError naming every bad field.

    Violations name the `ParamOverrides` field (`step_interval`, `error_rate`, ...).
    """
    d = defaults or DeploymentSettings()
    t = thresholds or ThresholdSettings()
    o = overrides or ParamOverrides()

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    problems = Violations()
    steps = tuple(pick(o.steps, d.steps))
    _check_steps(steps, problems)
    gates: list[Gate] = []
    for name in pick(o.critical_gates, ()):
        try:
            gates.append(Gate(name))
        except ValueError:
            known = ", ".join(g.value for g in Gate)
            problems.add("critical_gates", f"unknown gate {name!r} (one of {known})")
    params = DeploymentParams(
        steps=steps,
        step_interval=float(pick(o.step_interval, d.step_interval)),
        min_samples=int(pick(o.min_samples, d.min_samples)),
        failure_limit=int(pick(o.failure_limit, d.failure_limit)),
        progress_deadline=float(pick(o.progress_deadline, d.progress_deadline)),
        bake_time=float(pick(o.bake_time, d.bake_time)),
        thresholds=Thresholds(
            error_rate=float(pick(o.error_rate, t.error_rate)),
            latency_p95_ms=float(pick(o.latency_p95_ms, t.latency_p95_ms)),
            drift_score=float(pick(o.drift_score, t.drift_score)),
            max_error_rate_increase=o.max_error_rate_increase,
            relative_alpha=float(pick(o.relative_alpha, _BUILT_IN.thresholds.relative_alpha)),
        ),
        critical_gates=frozenset(gates) if o.critical_gates is not None else _BUILT_IN.critical_gates,
        max_unavailable=str(pick(o.max_unavailable, _BUILT_IN.max_unavailable)).strip(),
        max_surge=str(pick(o.max_surge, _BUILT_IN.max_surge)).strip(),
    )
    _check_numbers(params, strategy, problems)
    problems.raise_if_any()
    return params


def _check_steps(steps: tuple[float, ...], problems: Violations) -> None:
    if not steps:
        problems.add("steps", "must list at least one traffic percentage")
    elif any(not isinstance(p, (int, float)) or not 0 < p <= 100 for p in steps):
        problems.add("steps", "every step must be a percentage in (0, 100]")
    elif any(b <= a for a, b in zip(steps, steps[1:])):
        problems.add("steps", "must increase from step to step")
    elif steps[-1] != 100:
        problems.add("steps", "the last step must be 100, or the new version never takes all traffic")


def _check_numbers(p: DeploymentParams, strategy: Strategy, problems: Violations) -> None:
    if not p.step_interval >= MIN_STEP_INTERVAL:
        problems.add("step_interval", "must be at least 100ms")
    if p.min_samples < 1:
        problems.add("min_samples", "must be at least 1")
    if p.failure_limit < 1:
        problems.add("failure_limit", "must be at least 1")
    if not p.bake_time >= 0 or math.isinf(p.bake_time):
        problems.add("bake_time", "must be a finite duration, 0 or more")
    # A step or bake that lasts longer than the deadline could never pass: refuse it now.
    longest, longest_name = _longest_wait(p, strategy)
    if not p.progress_deadline > 0 or math.isinf(p.progress_deadline):
        problems.add("progress_deadline", "must be a positive, finite duration")
    elif p.progress_deadline < longest:
        problems.add("progress_deadline", f"must be at least {longest_name} ({longest:g}s), "
                                          "or no step could gather its samples in time")
    t = p.thresholds
    if not 0 <= t.error_rate <= 1:
        problems.add("error_rate", "must be between 0 and 1")
    if not 0 < t.latency_p95_ms < math.inf:
        problems.add("latency_p95_ms", "must be a positive number of milliseconds")
    if not 0 <= t.drift_score < math.inf:
        problems.add("drift_score", "must be 0 or more")
    if t.max_error_rate_increase is not None and not 0 <= t.max_error_rate_increase <= 1:
        problems.add("max_error_rate_increase", "must be between 0 and 1 (0.02 means two points)")
    if not 0 < t.relative_alpha <= 0.5:
        problems.add("relative_alpha", "must be in (0, 0.5], e.g. 0.05")
    amounts = []
    for name in ("max_unavailable", "max_surge"):
        text = getattr(p, name)
        m = _AMOUNT.fullmatch(text)
        if not m or (m.group(2) and int(m.group(1)) > 100):
            problems.add(name, "must be a count (2) or a percentage (25%)")
        else:
            amounts.append(int(m.group(1)))
    if len(amounts) == 2 and amounts == [0, 0]:
        problems.add("max_unavailable", "max_unavailable and max_surge cannot both be 0: nothing could move")


def _longest_wait(p: DeploymentParams, strategy: Strategy) -> tuple[float, str]:
    if strategy is Strategy.IMMEDIATE:
        return p.bake_time, "bake_time"
    if strategy is Strategy.BLUE_GREEN and p.bake_time > p.step_interval:
        return p.bake_time, "bake_time"
    return p.step_interval, "step_interval"


def resolve_amount(text: str, total: int, *, round_up: bool) -> int:
    """A rolling amount ("2" or "25%") as a number of instances out of `total`.

    Like Kubernetes, surge percentages round up and unavailable ones round down.
    """
    m = _AMOUNT.fullmatch(text)
    if m is None:
        raise ValueError(f"not a count or percentage: {text!r}")
    value = int(m.group(1))
    if not m.group(2):
        return value
    exact = value * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)
