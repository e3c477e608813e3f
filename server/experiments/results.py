"""An experiment's verdict, computed from its arms' running sums whenever it is read.

`analyse` picks the test the metric calls for (`stats` documents every
formula), lets the always-valid p-value decide `significant`, names a winner
only then, and says the result in one sentence an operator can act on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from . import stats
from .model import ArmTotals, Experiment, Metric


@dataclass(frozen=True)
class ArmResult:
    version: str
    #: Trials (conversion), values (value), requests (error-rate) or latencies (latency).
    samples: int
    #: The arm's metric: a rate (0-1), a mean value, or a mean latency in milliseconds.
    value: float
    std_dev: float


@dataclass(frozen=True)
class ExperimentResult:
    #: The winning version, only once `significant`.
    winner: str | None
    #: The always-valid p-value is below alpha.
    significant: bool
    #: Always-valid (mixture SPRT) p-value; never rises from one look to the next.
    p_value: float
    fixed_horizon_p_value: float
    #: (t - c) / c and its interval; 0 while the control mean is 0 or an arm is empty.
    lift: float
    lift_ci_low: float
    lift_ci_high: float
    control: ArmResult
    treatment: ArmResult
    #: Samples the arm furthest from its target still needs; None while the baseline is unknown.
    samples_needed: int | None
    srm_p_value: float
    sample_ratio_mismatch: bool
    #: "two-proportion z-test" or "Welch's t-test".
    test: str
    summary: str


def summarise(metric: Metric, totals: ArmTotals) -> stats.ArmSummary:
    """The arm's samples, mean and variance for `metric`."""
    if metric is Metric.CONVERSION:
        return stats.rate_summary(totals.successes, totals.trials)
    if metric is Metric.ERROR_RATE:
        return stats.rate_summary(totals.errors, totals.requests)
    if metric is Metric.VALUE:
        return stats.mean_summary(totals.value_count, totals.value_sum, totals.value_sum_squares)
    return stats.mean_summary(totals.latency_count, totals.latency_sum, totals.latency_sum_squares)


def analyse(exp: Experiment, control_totals: ArmTotals, treatment_totals: ArmTotals) -> ExperimentResult:
    control = summarise(exp.metric, control_totals)
    treatment = summarise(exp.metric, treatment_totals)
    share = exp.treatment_percent / 100.0
    rate = exp.metric.is_rate
    p_value = stats.always_valid_p_value(exp.sequential_p_value, control, treatment, exp.min_effect)
    if exp.state.is_final:
        p_value = exp.sequential_p_value  # no more looks: the verdict is the one it stopped with
    significant = p_value < exp.alpha
    winner = _winner(exp, control, treatment) if significant else None
    lift = stats.lift(control, treatment, exp.alpha)
    needed = stats.samples_needed(control, treatment, rate=rate, min_effect=exp.min_effect, alpha=exp.alpha,
                                  power=exp.power, treatment_share=share)
    srm = stats.srm_p_value(control.n, treatment.n, share)
    mismatch = srm < stats.SRM_ALPHA
    result = ExperimentResult(
        winner=winner, significant=significant, p_value=p_value,
        fixed_horizon_p_value=stats.fixed_horizon_p_value(control, treatment, rate=rate),
        lift=lift.value if lift else 0.0, lift_ci_low=lift.low if lift else 0.0,
        lift_ci_high=lift.high if lift else 0.0,
        control=ArmResult(exp.control_version, control.n, control.mean, control.std_dev),
        treatment=ArmResult(exp.treatment_version, treatment.n, treatment.mean, treatment.std_dev),
        samples_needed=needed, srm_p_value=srm, sample_ratio_mismatch=mismatch,
        test="two-proportion z-test" if rate else "Welch's t-test", summary="")
    return _with_summary(exp, result, lift is not None)


def _winner(exp: Experiment, control: stats.ArmSummary, treatment: stats.ArmSummary) -> str | None:
    if treatment.mean == control.mean:
        return None
    treatment_better = (treatment.mean > control.mean) == exp.metric.higher_wins
    return exp.treatment_version if treatment_better else exp.control_version


def format_value(metric: Metric, value: float) -> str:
    """A rate as a percentage, a latency in ms, a value as a number."""
    if metric.is_rate:
        return f"{value * 100:.2f}%"
    if metric is Metric.LATENCY:
        return f"{value:.4g} ms"
    return f"{value:.4g}"


def format_p(p: float) -> str:
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def _with_summary(exp: Experiment, r: ExperimentResult, has_lift: bool) -> ExperimentResult:
    m = exp.metric
    arms = (f"{m.label} {format_value(m, r.treatment.value)} ({exp.treatment_version}) vs "
            f"{format_value(m, r.control.value)} ({exp.control_version})")
    lift = (f", lift {r.lift:+.1%} (CI {r.lift_ci_low:+.1%} to {r.lift_ci_high:+.1%})"
            if has_lift and math.isfinite(r.lift_ci_low) else "")
    # check each arm has the samples a test needs
    if min(r.control.samples, r.treatment.samples) < stats.MIN_SAMPLES:
        text = (f"waiting for samples: each arm needs at least {stats.MIN_SAMPLES} "
                f"(control {r.control.samples}, treatment {r.treatment.samples})")
    # check for a verdict
    elif r.significant and r.winner is not None:
        which = "treatment" if r.winner == exp.treatment_version else "control"
        text = (f"{which} {r.winner} wins: {arms}{lift}; always-valid p = {format_p(r.p_value)} "
                f"< {exp.alpha:g}")
    elif r.significant:
        text = f"significant (p = {format_p(r.p_value)}) but the arms are equal: {arms}"
    else:
        more = (f"; about {r.samples_needed:,} more samples per arm to detect a {exp.min_effect:.1%} lift"
                if r.samples_needed else "")
        text = (f"not significant yet: {arms}{lift}; always-valid p = {format_p(r.p_value)} "
                f"(needs < {exp.alpha:g}){more}")
    # check the split delivered what it promised: a broken one voids any verdict
    if r.sample_ratio_mismatch:
        text += (f"; SAMPLE RATIO MISMATCH: {r.control.samples:,} vs {r.treatment.samples:,} samples for a "
                 f"{100 - exp.treatment_percent:g}/{exp.treatment_percent:g} split (p = {format_p(r.srm_p_value)}); "
                 "the split is broken, do not trust this result")
    return dataclasses.replace(r, summary=text)
