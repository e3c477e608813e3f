"""The traffic-split strategies (immediate, blue-green, canary) as one plan of steps.

Each step gives the new version a share of traffic for a while; when the time is
up the gates decide whether to take the next step. Seen this way the three
strategies differ only in their plan, and one algorithm in the controller runs
them all. Rolling moves instances instead of traffic: see `rolling.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .params import DeploymentParams
from .phases import Strategy


@dataclass(frozen=True)
class PlannedStep:
    #: The new version's share of traffic during the step.
    percent: float
    #: Seconds the step is watched before its gates decide.
    duration: float
    #: False for an unwatched step (a bake time of 0): it ends without gates.
    analysed: bool


def traffic_plan(strategy: Strategy, params: DeploymentParams) -> tuple[PlannedStep, ...]:
    if strategy is Strategy.IMMEDIATE:
        return (PlannedStep(100.0, params.bake_time, params.bake_time > 0),)
    if strategy is Strategy.BLUE_GREEN:
        # Pre-promotion analysis at 0 % on shadow or test traffic, then the switch and the bake.
        return (PlannedStep(0.0, params.step_interval, True),
                PlannedStep(100.0, params.bake_time, params.bake_time > 0))
    if strategy is Strategy.CANARY:
        return tuple(PlannedStep(float(p), params.step_interval, True) for p in params.steps)
    raise ValueError(f"{strategy.value} does not move traffic by plan")


def step_split(version: str, previous: str | None, percent: float) -> dict[str, float]:
    """The traffic split while `version` has `percent`.

    A version at 0 stays in the split: the new one during blue-green analysis
    (it is loaded for shadow traffic), the previous one once the new one has
    everything (kept loaded for an instant rollback until the deployment ends).
    """
    if previous is None:
        # A first deployment: there is nothing else to send the rest of the traffic to.
        return {version: 100.0 if percent > 0 else 0.0}
    return {previous: 100.0 - percent, version: percent}


def stable_split(previous: str | None) -> dict[str, float]:
    """Everything back on the previous version (nothing at all for a first deployment)."""
    return {previous: 100.0} if previous is not None else {}


def final_split(version: str) -> dict[str, float]:
    return {version: 100.0}


def stable_takes_traffic(previous: str | None, percent: float) -> bool:
    """Whether the relative gate has a stable version to compare with in this step."""
    return previous is not None and percent < 100
