"""Health gates: pure functions from a window of metrics to PASS, FAIL or WAIT.

A gate with fewer than `min_samples` samples WAITS: it never passes on no data.
Nothing here reads a clock or a database; the controller gathers the windows and
stores what these functions return.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..telemetry.window import WindowStats
from .model import Gate, GateEvaluation, Verdict
from .params import DeploymentParams


@dataclass(frozen=True)
class GateInputs:
    deployment_id: str
    step: int
    params: DeploymentParams
    #: The new version's traffic since the step began.
    candidate: WindowStats
    #: The stable version's traffic over the same window; None when it takes no traffic in this step.
    stable: WindowStats | None
    #: The new version's drift score for the window; None when no drift source has one.
    drift: float | None


def evaluate_gates(inputs: GateInputs, *, only_critical: bool = False) -> list[GateEvaluation]:
    """Every gate that applies, in a fixed order; gates with nothing to judge are left out."""
    evaluations = [
        _error_rate(inputs),
        _latency_p95(inputs),
        _drift_score(inputs),
        _relative_error_rate(inputs),
    ]
    return [e for e in evaluations if e is not None and (e.critical or not only_critical)]


def describe_failure(evaluation: GateEvaluation, traffic_percent: float) -> str:
    """The evaluation as a reason.

    For example "error-rate gate failed: 0.500 > 0.050 over 120 requests at step 2 (10%)".
    """
    return (f"{evaluation.gate.label} gate failed: {evaluation.detail} "
            f"at step {evaluation.step} ({format_percent(traffic_percent)})")


def describe_wait(evaluations: list[GateEvaluation]) -> str:
    """What the waiting gates lack: "error-rate has 12 of 50 requests, latency-p95 has 0 of 50 samples"."""
    return ", ".join(f"{e.gate.label} has {e.detail}" for e in evaluations if e.verdict is Verdict.WAIT)


def format_percent(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") + "%"


def two_proportion_p_value(errors_new: int, n_new: int, errors_stable: int, n_stable: int,
                           margin: float) -> float:
    """One-sided p-value that the new rate exceeds the stable rate by more than `margin`.

    A two-proportion z-test with the pooled standard error: small differences in
    a small window are noise, and must not fail the gate.
    """
    diff = errors_new / n_new - errors_stable / n_stable
    pooled = (errors_new + errors_stable) / (n_new + n_stable)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_new + 1 / n_stable))
    if se == 0:
        # Both windows all-success (or all-failure): the difference is exact, not estimated.
        return 0.0 if diff > margin else 1.0
    # the normal survival function (scipy's norm.sf), without importing scipy.stats (64 MB) for it
    return 0.5 * math.erfc((diff - margin) / se / math.sqrt(2.0))


def _evaluation(inputs: GateInputs, gate: Gate, value: float | None, threshold: float, samples: float,
                verdict: Verdict, detail: str) -> GateEvaluation:
    return GateEvaluation(
        deployment_id=inputs.deployment_id, step=inputs.step, gate=gate, value=value, threshold=threshold,
        window_start=inputs.candidate.since, window_end=inputs.candidate.until, samples=samples,
        verdict=verdict, critical=gate in inputs.params.critical_gates, detail=detail)


def _error_rate(inputs: GateInputs) -> GateEvaluation:
    c, limit, need = inputs.candidate, inputs.params.thresholds.error_rate, inputs.params.min_samples
    if c.requests < need:
        return _evaluation(inputs, Gate.ERROR_RATE, None, limit, c.requests, Verdict.WAIT,
                           f"{c.requests} of {need} requests")
    rate = c.error_rate
    failed = rate > limit
    detail = f"{rate:.3f} {'>' if failed else '<='} {limit:.3f} over {c.requests} requests"
    return _evaluation(inputs, Gate.ERROR_RATE, rate, limit, c.requests,
                       Verdict.FAIL if failed else Verdict.PASS, detail)


def _latency_p95(inputs: GateInputs) -> GateEvaluation:
    c, limit, need = inputs.candidate, inputs.params.thresholds.latency_p95_ms, inputs.params.min_samples
    if c.latency_samples < need or c.latency_p95_ms is None:
        return _evaluation(inputs, Gate.LATENCY_P95, None, limit, c.latency_samples, Verdict.WAIT,
                           f"{c.latency_samples:g} of {need} samples")
    p95 = c.latency_p95_ms
    failed = p95 > limit
    detail = f"{p95:.0f}ms {'>' if failed else '<='} {limit:.0f}ms over {c.latency_samples:g} samples"
    return _evaluation(inputs, Gate.LATENCY_P95, p95, limit, c.latency_samples,
                       Verdict.FAIL if failed else Verdict.PASS, detail)


def _drift_score(inputs: GateInputs) -> GateEvaluation | None:
    if inputs.drift is None:
        return None
    c, limit, need = inputs.candidate, inputs.params.thresholds.drift_score, inputs.params.min_samples
    # A drift score over a handful of requests is noise: it waits like the other gates.
    if c.requests < need:
        return _evaluation(inputs, Gate.DRIFT_SCORE, None, limit, c.requests, Verdict.WAIT,
                           f"{c.requests} of {need} requests")
    failed = inputs.drift > limit
    detail = f"{inputs.drift:.3f} {'>' if failed else '<='} {limit:.3f} over {c.requests} requests"
    return _evaluation(inputs, Gate.DRIFT_SCORE, inputs.drift, limit, c.requests,
                       Verdict.FAIL if failed else Verdict.PASS, detail)


def _relative_error_rate(inputs: GateInputs) -> GateEvaluation | None:
    margin = inputs.params.thresholds.max_error_rate_increase
    if margin is None or inputs.stable is None:
        return None
    c, s, need = inputs.candidate, inputs.stable, inputs.params.min_samples
    samples = min(c.requests, s.requests)
    if samples < need:
        return _evaluation(inputs, Gate.RELATIVE_ERROR_RATE, None, margin, samples, Verdict.WAIT,
                           f"{c.requests} new and {s.requests} stable of {need} requests each")
    alpha = inputs.params.thresholds.relative_alpha
    diff = c.error_rate - s.error_rate
    p_value = two_proportion_p_value(c.errors, c.requests, s.errors, s.requests, margin)
    failed = p_value < alpha
    detail = (f"new {c.error_rate:.3f} vs stable {s.error_rate:.3f}: {diff:+.3f} "
              f"{'>' if diff > margin else '<='} {margin:+.3f} allowed, "
              f"p={p_value:.3g} {'<' if failed else '>='} {alpha:g}")
    return _evaluation(inputs, Gate.RELATIVE_ERROR_RATE, diff, margin, samples,
                       Verdict.FAIL if failed else Verdict.PASS, detail)
