"""Gates as pure functions: WAIT without samples, PASS/FAIL against thresholds, the z-tested relative gate."""

from __future__ import annotations

import datetime as dt

import pytest

from modelctl_server.deployments import Gate, ParamOverrides, Strategy, Verdict, resolve_params
from modelctl_server.deployments.gates import (
    GateInputs,
    describe_failure,
    describe_wait,
    evaluate_gates,
    two_proportion_p_value,
)
from modelctl_server.telemetry import WindowStats

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(seconds=30)


def stats(requests: int, errors: int = 0, p95: float | None = 100.0,
          samples: float | None = None) -> WindowStats:
    latency_samples = float(requests if samples is None else samples) if p95 is not None else 0.0
    return WindowStats(T0, T1, requests, errors, latency_samples, p95, p95, p95)


def inputs(candidate: WindowStats, stable: WindowStats | None = None, drift: float | None = None,
           **overrides: object) -> GateInputs:
    params = resolve_params(Strategy.CANARY, ParamOverrides(min_samples=50, **overrides))  # type: ignore[arg-type]
    return GateInputs("d1", 2, params, candidate, stable, drift)


def verdicts(evaluations: list) -> dict[Gate, Verdict]:  # type: ignore[type-arg]
    return {e.gate: e.verdict for e in evaluations}


def test_too_few_samples_wait_and_never_pass() -> None:
    for requests in (0, 1, 49):
        result = evaluate_gates(inputs(stats(requests, 0)))
        assert verdicts(result) == {Gate.ERROR_RATE: Verdict.WAIT, Gate.LATENCY_P95: Verdict.WAIT}
    assert describe_wait(evaluate_gates(inputs(stats(12)))) == (
        "error-rate has 12 of 50 requests, latency-p95 has 12 of 50 samples")


def test_healthy_window_passes() -> None:
    result = evaluate_gates(inputs(stats(50, 2, p95=900)))
    assert verdicts(result) == {Gate.ERROR_RATE: Verdict.PASS, Gate.LATENCY_P95: Verdict.PASS}
    error_rate = result[0]
    assert (error_rate.value, error_rate.threshold) == (0.04, 0.05)
    assert (error_rate.samples, error_rate.step) == (50, 2)
    assert (error_rate.window_start, error_rate.window_end, error_rate.critical) == (T0, T1, True)
    assert result[1].critical is False


def test_breaches_fail_with_a_readable_reason() -> None:
    result = evaluate_gates(inputs(stats(120, 60, p95=1500)))
    assert verdicts(result) == {Gate.ERROR_RATE: Verdict.FAIL, Gate.LATENCY_P95: Verdict.FAIL}
    assert describe_failure(result[0], 10) == (
        "error-rate gate failed: 0.500 > 0.050 over 120 requests at step 2 (10%)")
    assert describe_failure(result[1], 12.5) == (
        "latency-p95 gate failed: 1500ms > 1000ms over 120 samples at step 2 (12.5%)")


def test_the_threshold_itself_passes() -> None:
    assert verdicts(evaluate_gates(inputs(stats(100, 5, p95=1000))))[Gate.ERROR_RATE] is Verdict.PASS


def test_latency_waits_on_its_own_sample_count() -> None:
    result = evaluate_gates(inputs(stats(500, 0, p95=2000, samples=10)))
    assert verdicts(result) == {Gate.ERROR_RATE: Verdict.PASS, Gate.LATENCY_P95: Verdict.WAIT}


def test_only_critical_leaves_the_others_out() -> None:
    result = evaluate_gates(inputs(stats(100, 50, p95=5000)), only_critical=True)
    assert [e.gate for e in result] == [Gate.ERROR_RATE]
    latency_critical = evaluate_gates(inputs(stats(100, 0, p95=5000), critical_gates=("latency_p95",)),
                                      only_critical=True)
    assert verdicts(latency_critical) == {Gate.LATENCY_P95: Verdict.FAIL}


def test_drift_gate_only_with_a_score() -> None:
    assert Gate.DRIFT_SCORE not in verdicts(evaluate_gates(inputs(stats(100))))
    assert verdicts(evaluate_gates(inputs(stats(100), drift=0.05)))[Gate.DRIFT_SCORE] is Verdict.PASS
    failed = [e for e in evaluate_gates(inputs(stats(100), drift=0.3)) if e.gate is Gate.DRIFT_SCORE][0]
    assert failed.verdict is Verdict.FAIL
    assert failed.detail == "0.300 > 0.100 over 100 requests"
    assert verdicts(evaluate_gates(inputs(stats(10), drift=0.3)))[Gate.DRIFT_SCORE] is Verdict.WAIT


def test_relative_gate_only_when_configured_and_stable_has_traffic() -> None:
    assert Gate.RELATIVE_ERROR_RATE not in verdicts(evaluate_gates(inputs(stats(100), stats(100))))
    assert Gate.RELATIVE_ERROR_RATE not in verdicts(
        evaluate_gates(inputs(stats(100), None, max_error_rate_increase=0.01)))


def test_relative_gate_fails_a_real_difference() -> None:
    result = evaluate_gates(inputs(stats(1000, 40), stats(1000, 5), max_error_rate_increase=0.01,
                                   error_rate=0.5))
    relative = [e for e in result if e.gate is Gate.RELATIVE_ERROR_RATE][0]
    assert relative.verdict is Verdict.FAIL
    assert relative.value == pytest.approx(0.035)
    assert relative.samples == 1000
    assert relative.detail.startswith("new 0.040 vs stable 0.005: +0.035 > +0.010 allowed, p=")


def test_relative_gate_does_not_fail_on_noise() -> None:
    # 3 errors in 60 against 1 in 60: worse on paper, but nothing a z-test would call significant.
    result = evaluate_gates(inputs(stats(60, 3), stats(60, 1), max_error_rate_increase=0.0, error_rate=0.5))
    relative = [e for e in result if e.gate is Gate.RELATIVE_ERROR_RATE][0]
    assert relative.verdict is Verdict.PASS
    assert "p=" in relative.detail and ">= 0.05" in relative.detail


def test_relative_gate_waits_for_both_sides() -> None:
    result = evaluate_gates(inputs(stats(1000, 500), stats(10, 0), max_error_rate_increase=0.0,
                                   error_rate=1.0))
    relative = [e for e in result if e.gate is Gate.RELATIVE_ERROR_RATE][0]
    assert relative.verdict is Verdict.WAIT
    assert relative.detail == "1000 new and 10 stable of 50 requests each"


def test_two_proportion_test() -> None:
    assert two_proportion_p_value(50, 1000, 50, 1000, 0.0) == pytest.approx(0.5)
    assert two_proportion_p_value(100, 1000, 50, 1000, 0.0) < 0.001
    assert two_proportion_p_value(100, 1000, 50, 1000, 0.1) > 0.99
    # No errors anywhere: exactly no difference.
    assert two_proportion_p_value(0, 100, 0, 100, 0.0) == 1.0
