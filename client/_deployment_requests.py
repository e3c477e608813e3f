"""Building deployment and telemetry requests from what callers naturally write.

Strategies and states by name (`"blue-green"`, `"succeeded"`) or enum value,
durations as seconds, `timedelta` or text (`"30s"`, `"500ms"`), rolling limits
as a count or a percentage. Pure functions: the mixins in `_deployments` and
`_dataplane` call them, tests call them directly; metric samples are built in
`_samples` (re-exported here). Mistakes a caller can see
without asking the server raise `ValueError`; the rest is the server's to judge.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence, Union

from modelctl.v1 import deployment_pb2 as _pb

from ._durations import DurationLike, duration_seconds
from ._samples import metrics_sample, metrics_samples  # noqa: F401 - telemetry requests live in _samples

#: A strategy by name ("canary", "blue-green", any case, `_` or `-`) or a `DeploymentStrategy` value.
StrategyLike = Union[str, int]
#: A state by name ("succeeded", "DEPLOYMENT_STATE_SUCCEEDED") or a `DeploymentState` value.
StateLike = Union[str, int]
#: Seconds, a timedelta, or text such as "30s", "500ms", "5m".
#: A rolling limit: a count of instances (2, "2") or a percentage ("25%").
LimitLike = Union[int, str]

STRATEGY_NAMES = ("immediate", "blue-green", "canary", "rolling")
STATE_NAMES = ("pending", "progressing", "paused", "succeeded", "rolling_back", "rolled_back", "aborted",
               "failed")
#: States a deployment never leaves.
FINAL_STATES = frozenset({_pb.DEPLOYMENT_STATE_SUCCEEDED, _pb.DEPLOYMENT_STATE_ROLLED_BACK,
                          _pb.DEPLOYMENT_STATE_ABORTED, _pb.DEPLOYMENT_STATE_FAILED})

_STRATEGY_PREFIX = "DEPLOYMENT_STRATEGY_"
_STATE_PREFIX = "DEPLOYMENT_STATE_"
_LIMIT = re.compile(r"\d+%?")


def _enum_value(enum: Any, value: str | int, prefix: str, names: Sequence[str], what: str) -> int:
    if isinstance(value, int):
        if value not in enum.values() or value == 0:
            raise ValueError(f"unknown {what} value {value}")
        return value
    key = value.strip().upper().replace("-", "_").removeprefix(prefix)
    if key.lower() not in {name.replace("-", "_") for name in names}:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(names)}")
    return int(enum.Value(prefix + key))


def strategy_value(strategy: StrategyLike) -> int:
    """The `DeploymentStrategy` value for "canary", "blue-green", "BLUE_GREEN", ... or an enum value."""
    return _enum_value(_pb.DeploymentStrategy, strategy, _STRATEGY_PREFIX, STRATEGY_NAMES, "strategy")


def strategy_name(value: int) -> str:
    """"blue-green" for DEPLOYMENT_STRATEGY_BLUE_GREEN: the CLI's spelling."""
    return _pb.DeploymentStrategy.Name(value).removeprefix(_STRATEGY_PREFIX).lower().replace("_", "-")


def state_value(state: StateLike) -> int:
    """The `DeploymentState` value for "succeeded", "ROLLED_BACK", "rolled-back", ... or an enum value."""
    return _enum_value(_pb.DeploymentState, state, _STATE_PREFIX, STATE_NAMES, "deployment state")


def state_name(value: int) -> str:
    """"SUCCEEDED" for DEPLOYMENT_STATE_SUCCEEDED."""
    return _pb.DeploymentState.Name(value).removeprefix(_STATE_PREFIX)


def is_final(state: int) -> bool:
    """True for SUCCEEDED, ROLLED_BACK, ABORTED and FAILED."""
    return state in FINAL_STATES


def _set_duration(message: Any, field: str, value: DurationLike | None) -> None:
    if value is not None:
        # A bake time of 0 means: not watched after the switch.
        seconds = duration_seconds(value, field, allow_zero=field == "bake_time")
        getattr(message, field).FromNanoseconds(round(seconds * 1e9))


def parse_steps(text: str) -> tuple[int, ...]:
    """`"5,10,25,50,100"` -> (5, 10, 25, 50, 100): whole percentages, increasing, ending at 100."""
    steps = tuple(_steps(text))
    if not steps:
        raise ValueError("give at least one step, e.g. 5,10,25,50,100")
    if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
        raise ValueError(f"steps must increase: {text!r}")
    if steps[-1] != 100:
        raise ValueError(f"the last step must be 100 (all traffic): {text!r}")
    return steps


def parse_limit(text: str) -> str:
    """A rolling limit as the server takes it: `"2"` or `"25%"`."""
    return _limit(text, "the limit")


def _limit(value: LimitLike | None, what: str) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    if not _LIMIT.fullmatch(text):
        raise ValueError(f"{what} must be a count (2) or a percentage (25%), not {value!r}")
    return text


def _steps(steps: Iterable[float] | str) -> list[int]:
    if isinstance(steps, str):
        steps = [part for part in steps.replace(" ", "").split(",") if part]
    percents = []
    for step in steps:
        try:
            step = float(step)
        except ValueError:
            raise ValueError(f"canary steps are whole percentages, not {step!r}") from None
        if not step.is_integer() or not 0 < step <= 100:
            raise ValueError(f"canary steps are whole percentages between 1 and 100, not {step!r}")
        percents.append(int(step))
    return percents


def deployment_params(*, params: _pb.DeploymentParams | None = None,
                      steps: Iterable[float] | str | None = None, interval: DurationLike | None = None,
                      min_samples: int | None = None, failure_limit: int | None = None,
                      progress_deadline: DurationLike | None = None,
                      bake_time: DurationLike | None = None, max_error_rate: float | None = None,
                      max_latency_p95_ms: float | None = None, max_drift_score: float | None = None,
                      max_error_rate_increase: float | None = None, relative_alpha: float | None = None,
                      critical_gates: Iterable[str] | None = None, max_unavailable: LimitLike | None = None,
                      max_surge: LimitLike | None = None) -> _pb.DeploymentParams:
    """`params` (if given) with each keyword that is not None written over it; unset means server default."""
    result = _pb.DeploymentParams()
    if params is not None:
        result.CopyFrom(params)
    if steps is not None:
        result.ClearField("steps")
        result.steps.extend(_steps(steps))
    _set_duration(result, "step_interval", interval)
    _set_duration(result, "progress_deadline", progress_deadline)
    _set_duration(result, "bake_time", bake_time)
    for field, count in (("min_samples", min_samples), ("failure_limit", failure_limit)):
        if count is not None:
            if count < 0:
                raise ValueError(f"{field} must not be negative")
            setattr(result, field, count)
    thresholds = {"error_rate": max_error_rate, "latency_p95_ms": max_latency_p95_ms,
                  "drift_score": max_drift_score, "max_error_rate_increase": max_error_rate_increase,
                  "relative_alpha": relative_alpha}
    for field, threshold in thresholds.items():
        if threshold is not None:
            if not math.isfinite(threshold) or threshold < 0:
                raise ValueError(f"threshold {field} must be a finite number >= 0")
            setattr(result.thresholds, field, float(threshold))
    if critical_gates is not None:
        result.ClearField("critical_gates")
        result.critical_gates.extend(critical_gates)
    if max_unavailable is not None:
        result.max_unavailable = _limit(max_unavailable, "max_unavailable")
    if max_surge is not None:
        result.max_surge = _limit(max_surge, "max_surge")
    return result


def list_deployments_request(*, model: str = "", states: Iterable[StateLike] = (), page_size: int = 0,
                             page_token: str = "") -> _pb.ListDeploymentsRequest:
    return _pb.ListDeploymentsRequest(model=model, states=[state_value(s) for s in states],
                                      page_size=page_size, page_token=page_token)
