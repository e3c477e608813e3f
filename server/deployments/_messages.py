"""The words of deployment events and errors that more than one decision uses.

Kept out of the controller so its checks read as decisions; every message names
versions and numbers, so an operator reading a stream needs nothing else.
"""

from __future__ import annotations

from ..durations import format_duration
from ..errors import FailedPreconditionError
from .gates import format_percent
from .model import Deployment
from .phases import Strategy
from .strategies import PlannedStep


def already_active(active: Deployment | None) -> FailedPreconditionError:
    if active is None:
        return FailedPreconditionError(
            "another deployment of this model became active at the same time; retry")
    return FailedPreconditionError(
        f"{active.model} already has an active deployment {active.id} "
        f"({active.version}, {active.phase.value}); wait for it to finish or abort it")


def experiment_running(model: str, experiment_id: str) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"{model} has a running experiment {experiment_id}; stop it first "
        f"(modelctl experiments stop {experiment_id}, or --promote-winner to deploy its winner)")


def back_on(dep: Deployment) -> str:
    """Where traffic went when the deployment gave it back."""
    if dep.previous_version is None:
        return f"traffic taken off {dep.version} (it was the first deployment)"
    return f"traffic back on {dep.previous_version}"


def strategy_name(strategy: Strategy) -> str:
    """As the CLI spells it: `blue-green`."""
    return strategy.value.lower().replace("_", "-")


def step_message(dep: Deployment, plan: tuple[PlannedStep, ...], number: int) -> str:
    """What step `number` of a traffic plan does, in the strategy's own terms."""
    step = plan[number - 1]
    watch = f"watched for {format_duration(step.duration)}" if step.analysed else "not watched"
    if dep.strategy is Strategy.IMMEDIATE:
        return f"{dep.version} takes 100% of traffic; {watch}"
    if dep.strategy is Strategy.BLUE_GREEN and number == 1:
        return f"analysing {dep.version} at 0% (shadow or test traffic) for {format_duration(step.duration)}"
    if dep.strategy is Strategy.BLUE_GREEN:
        kept = f"; {dep.previous_version} kept ready until the bake time ends" if dep.previous_version else ""
        return f"switched to {dep.version} at 100%{kept}; {watch}"
    return f"step {number}/{len(plan)}: {dep.version} at {format_percent(dep.traffic_percent)}"
