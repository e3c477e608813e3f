"""What a batch of reported samples adds to the arms of running experiments.

Pure: the service hands the increments to the store, which adds them with
additive UPDATEs in the same transaction that journals the reports, so a report
counts in an experiment exactly when it counts anywhere. Only live samples
count (a `reference` sample describes training data, not served traffic), only
for a version that is an arm of the model's running experiment, and only from
the experiment's start on.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..telemetry.sample import TelemetrySample
from .model import Arm, ArmIncrement, ArmTotals, Experiment


def sample_totals(sample: TelemetrySample) -> ArmTotals:
    """The sums one sample adds to its arm."""
    values = [float(v) for v in sample.values]
    latencies = [float(v) for v in sample.latency_ms]
    return ArmTotals(
        requests=sample.requests, errors=sample.errors, successes=sample.successes, trials=sample.trials,
        value_count=len(values), value_sum=sum(values), value_sum_squares=sum(v * v for v in values),
        latency_count=len(latencies), latency_sum=sum(latencies),
        latency_sum_squares=sum(v * v for v in latencies))


def counts_for(sample: TelemetrySample, running: Mapping[str, Experiment]) -> tuple[Experiment, Arm] | None:
    """The experiment and arm `sample` counts for, or None."""
    exp = running.get(sample.model)
    # check there is a running experiment of the model
    if exp is None:
        return None
    # check the sample describes served traffic, not reference data
    if sample.reference:
        return None
    # check the version is one of the arms
    arm = exp.arm_of(sample.version)
    if arm is None:
        return None
    # check the traffic was served while the experiment ran
    if sample.at < exp.created_at:
        return None
    return exp, arm


def increments(samples: Sequence[TelemetrySample], running: Mapping[str, Experiment]) -> list[ArmIncrement]:
    """One increment per (experiment, arm) touched by `samples`, in a stable order (fewer lock waits)."""
    added: dict[tuple[str, Arm], ArmTotals] = {}
    for sample in samples:
        target = counts_for(sample, running)
        if target is None:
            continue
        key = (target[0].id, target[1])
        added[key] = added.get(key, ArmTotals()).plus(sample_totals(sample))
    return [ArmIncrement(experiment_id, arm, totals)
            for (experiment_id, arm), totals in sorted(added.items(), key=lambda item: (item[0][0], item[0][1].value))
            if not totals.is_empty]
