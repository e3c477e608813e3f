"""The experiment statistics against known truth, checked with formulas and scipy computed here.

Includes the property the sequential test exists for: an A/A experiment watched
after every batch stays under alpha, where the naive repeated z-test does not.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from modelctl_server.experiments import ArmTotals, Experiment, ExperimentState, Metric, analyse, stats

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _z_test(x_c: int, n_c: int, x_t: int, n_t: int) -> float:
    """The textbook pooled two-proportion z-test, written out independently of the module."""
    p_c, p_t = x_c / n_c, x_t / n_t
    pooled = (x_c + x_t) / (n_c + n_t)
    z = (p_t - p_c) / math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    return math.erfc(abs(z) / math.sqrt(2))


def _experiment(metric: Metric = Metric.CONVERSION, *, percent: float = 50.0, min_effect: float = 0.02,
                previous_p: float = 1.0) -> Experiment:
    return Experiment(id="e1", model="shop", control_version="1", treatment_version="2", treatment_percent=percent,
                      metric=metric, state=ExperimentState.RUNNING, min_effect=min_effect, alpha=0.05, power=0.8,
                      sequential_p_value=previous_p, created_at=START)


def _values(values: np.ndarray) -> ArmTotals:
    return ArmTotals(value_count=len(values), value_sum=float(values.sum()),
                     value_sum_squares=float((values ** 2).sum()))


# --- rates ------------------------------------------------------------------------------------------------


def test_ten_versus_fifteen_percent_over_5000_trials_is_significant_and_the_treatment_wins() -> None:
    result = analyse(_experiment(), ArmTotals(successes=500, trials=5000), ArmTotals(successes=750, trials=5000))
    assert result.fixed_horizon_p_value == pytest.approx(_z_test(500, 5000, 750, 5000), rel=1e-9)
    assert result.fixed_horizon_p_value < 1e-12
    assert result.significant and result.p_value < 0.05 and result.winner == "2"
    assert result.test == "two-proportion z-test"
    assert (result.control.samples, result.treatment.samples) == (5000, 5000)
    assert (result.control.value, result.treatment.value) == (pytest.approx(0.10), pytest.approx(0.15))
    assert result.lift == pytest.approx(0.5)
    # delta method by hand: Var(L) = Var(t)/c^2 + t^2 Var(c)/c^4
    half = 1.959963984540054 * math.sqrt(0.15 * 0.85 / 5000 / 0.01 + 0.0225 * 0.09 / 5000 / 0.0001)
    assert (result.lift_ci_low, result.lift_ci_high) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert result.summary.startswith("treatment 2 wins: conversion 15.00% (2) vs 10.00% (1), lift +50.0%")
    assert not result.sample_ratio_mismatch


def test_equal_arms_are_not_significant_and_have_no_winner() -> None:
    result = analyse(_experiment(), ArmTotals(successes=500, trials=5000), ArmTotals(successes=500, trials=5000))
    assert result.fixed_horizon_p_value == pytest.approx(1.0)
    assert result.p_value == 1.0 and not result.significant and result.winner is None
    assert result.lift == 0.0 and result.summary.startswith("not significant yet")


def test_error_rate_lower_wins_even_when_the_treatment_is_worse() -> None:
    worse = analyse(_experiment(Metric.ERROR_RATE), ArmTotals(requests=5000, errors=100),
                    ArmTotals(requests=5000, errors=250))
    assert worse.significant and worse.winner == "1"
    assert worse.fixed_horizon_p_value == pytest.approx(_z_test(100, 5000, 250, 5000), rel=1e-9)
    better = analyse(_experiment(Metric.ERROR_RATE), ArmTotals(requests=5000, errors=250),
                     ArmTotals(requests=5000, errors=100))
    assert better.winner == "2" and better.summary.startswith("treatment 2 wins: error-rate 2.00% (2) vs 5.00% (1)")


def test_too_few_samples_wait_instead_of_judging() -> None:
    result = analyse(_experiment(), ArmTotals(successes=0, trials=29), ArmTotals(successes=29, trials=29))
    assert result.p_value == 1.0 and result.fixed_horizon_p_value == 1.0 and result.winner is None
    assert result.summary == "waiting for samples: each arm needs at least 30 (control 29, treatment 29)"


# --- means ------------------------------------------------------------------------------------------------


def test_welch_from_running_sums_matches_scipy_on_the_raw_values() -> None:
    rng = np.random.default_rng(11)
    control, treatment = rng.normal(10.0, 2.0, 400), rng.normal(10.6, 3.5, 250)
    result = analyse(_experiment(Metric.VALUE, percent=40), _values(control), _values(treatment))
    expected = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    assert result.fixed_horizon_p_value == pytest.approx(float(expected.pvalue), rel=1e-6)
    assert result.test == "Welch's t-test"
    assert result.control.value == pytest.approx(control.mean()) and result.control.samples == 400
    assert result.control.std_dev == pytest.approx(control.std(ddof=1), rel=1e-9)
    assert result.treatment.std_dev == pytest.approx(treatment.std(ddof=1), rel=1e-9)


def test_latency_lower_wins() -> None:
    rng = np.random.default_rng(3)
    slow, fast = rng.normal(120, 10, 500), rng.normal(100, 10, 500)
    totals = [ArmTotals(latency_count=len(v), latency_sum=float(v.sum()), latency_sum_squares=float((v ** 2).sum()))
              for v in (slow, fast)]
    result = analyse(_experiment(Metric.LATENCY), *totals)
    assert result.significant and result.winner == "2" and result.lift == pytest.approx(fast.mean() / slow.mean() - 1)


# --- planning and the split -------------------------------------------------------------------------------


def test_samples_needed_follow_the_power_formula() -> None:
    control = stats.rate_summary(1000, 10_000)
    # 10 % -> 12 % (a relative 20 %) at alpha 0.05, power 0.8: (1.96 + 0.8416)^2 (0.09 + 0.1056) / 0.02^2
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    expected = math.ceil(z ** 2 * (0.1 * 0.9 + 0.12 * 0.88) / 0.02 ** 2)
    assert stats.required_per_arm(control, control, rate=True, min_effect=0.2, alpha=0.05, power=0.8,
                                  treatment_share=0.5) == (expected, expected)
    assert expected == 3839
    fewer = stats.rate_summary(100, 1000)
    assert stats.samples_needed(fewer, fewer, rate=True, min_effect=0.2, alpha=0.05, power=0.8,
                                treatment_share=0.5) == expected - 1000
    assert stats.samples_needed(control, control, rate=True, min_effect=0.2, alpha=0.05, power=0.8,
                                treatment_share=0.5) == 0
    # a smaller effect needs quadratically more; more power needs more; no baseline, no answer
    small = stats.required_per_arm(control, control, rate=True, min_effect=0.1, alpha=0.05, power=0.8,
                                   treatment_share=0.5)
    assert small is not None and small[0] > 3.8 * expected
    strong = stats.required_per_arm(control, control, rate=True, min_effect=0.2, alpha=0.05, power=0.9,
                                    treatment_share=0.5)
    assert strong is not None and strong[0] > expected
    assert stats.samples_needed(stats.rate_summary(0, 0), control, rate=True, min_effect=0.2, alpha=0.05,
                                power=0.8, treatment_share=0.5) is None


def test_an_uneven_split_asks_more_of_the_smaller_arm() -> None:
    control = stats.rate_summary(1000, 10_000)
    n_c, n_t = stats.required_per_arm(control, control, rate=True, min_effect=0.2, alpha=0.05, power=0.8,
                                      treatment_share=0.2) or (0, 0)
    assert n_c == pytest.approx(4 * n_t, rel=1e-3)
    assert n_t > 3839 / 2  # the same variance of the difference needs more in total than an even split


def test_sample_ratio_mismatch_flags_a_broken_split_and_not_a_healthy_one() -> None:
    broken = analyse(_experiment(), ArmTotals(successes=100, trials=1000), ArmTotals(successes=20, trials=200))
    expected = scipy_stats.chisquare([1000, 200], f_exp=[600, 600]).pvalue
    assert broken.srm_p_value == pytest.approx(expected) and broken.sample_ratio_mismatch
    assert "SAMPLE RATIO MISMATCH: 1,000 vs 200 samples for a 50/50 split" in broken.summary
    healthy = analyse(_experiment(percent=20), ArmTotals(successes=100, trials=4020),
                      ArmTotals(successes=20, trials=980))
    assert healthy.srm_p_value > 0.3 and not healthy.sample_ratio_mismatch


# --- the sequential test ----------------------------------------------------------------------------------


def test_the_always_valid_p_value_never_rises() -> None:
    control = stats.rate_summary(500, 5000)
    first = stats.always_valid_p_value(1.0, control, stats.rate_summary(560, 5000), 0.1)
    later = stats.always_valid_p_value(first, control, stats.rate_summary(500, 5000), 0.1)
    assert first < 1.0 and later == first
    stopped = analyse(_experiment(previous_p=0.01), ArmTotals(successes=500, trials=5000),
                      ArmTotals(successes=500, trials=5000))
    assert stopped.p_value == 0.01 and stopped.significant is True and stopped.winner is None


def test_the_mixture_likelihood_ratio_matches_its_closed_form() -> None:
    control, treatment = stats.rate_summary(500, 5000), stats.rate_summary(560, 5000)
    v = 0.1 * 0.9 / 5000 + 0.112 * 0.888 / 5000
    theta = 0.012
    taus = [0.1 * 0.1 * k for k in (1, 4, 16)]
    expected = sum(math.sqrt(v / (v + t * t)) * math.exp(theta ** 2 * t * t / (2 * v * (v + t * t))) for t in taus) / 3
    assert stats.mixture_likelihood_ratio(control, treatment, tuple(taus)) == pytest.approx(expected, rel=1e-9)


def _aa_false_positive_rates(seed: int, runs: int = 300, looks: int = 50,
                             batch: int = 100) -> tuple[float, float]:
    """(sequential, naive) share of A/A experiments ever called significant while watched after every batch."""
    rng = np.random.default_rng(seed)
    sequential = naive = 0
    for _ in range(runs):
        control = rng.binomial(batch, 0.1, size=looks).cumsum()
        treatment = rng.binomial(batch, 0.1, size=looks).cumsum()
        p, fooled = 1.0, False
        for look in range(looks):
            n = batch * (look + 1)
            c, t = stats.rate_summary(int(control[look]), n), stats.rate_summary(int(treatment[look]), n)
            p = stats.always_valid_p_value(p, c, t, 0.1)
            fooled = fooled or stats.two_proportion_p_value(c, t) < 0.05
        sequential += p < 0.05
        naive += fooled
    return sequential / runs, naive / runs


def test_an_aa_experiment_watched_fifty_times_stays_within_alpha_unlike_the_naive_z_test() -> None:
    sequential, naive = _aa_false_positive_rates(seed=20260101)
    # 300 runs: the standard error of a 5 % rate is 1.26 points; allow alpha plus two of them.
    allowed = 0.05 + 2 * math.sqrt(0.05 * 0.95 / 300)
    assert sequential <= allowed, sequential
    assert naive > 0.15, naive  # peeking at a fixed-horizon test fails several times as often as it claims
    # the seeded run itself, so a change to the test's statistics shows up here: 7 of 300 against 104 of 300
    assert (round(sequential * 300), round(naive * 300)) == (7, 104)


def test_an_error_rate_experiment_against_a_control_without_errors_can_conclude() -> None:
    # A healthy control often has no errors at all: the mixture's width must not collapse to 0 with it.
    clean, broken = ArmTotals(requests=5000, errors=0), ArmTotals(requests=5000, errors=500)
    result = analyse(_experiment(metric=Metric.ERROR_RATE), clean, broken)
    assert result.significant and result.winner == "1" and result.p_value < 1e-6
    # while two error-free arms stay undecided
    assert not analyse(_experiment(metric=Metric.ERROR_RATE), clean, clean).significant


def _aa_from_zero_rates(seed: int, runs: int = 300, looks: int = 50, batch: int = 100) -> float:
    """A/A with a rate so low that the control often has no event yet: the pooled-mean width stays valid."""
    rng = np.random.default_rng(seed)
    fooled = 0
    for _ in range(runs):
        control = rng.binomial(batch, 0.002, size=looks).cumsum()
        treatment = rng.binomial(batch, 0.002, size=looks).cumsum()
        p = 1.0
        for look in range(looks):
            n = batch * (look + 1)
            p = stats.always_valid_p_value(p, stats.rate_summary(int(control[look]), n),
                                           stats.rate_summary(int(treatment[look]), n), 0.1)
        fooled += p < 0.05
    return fooled / runs


def test_an_aa_experiment_of_a_rare_event_stays_within_alpha() -> None:
    assert _aa_from_zero_rates(seed=7) <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 300)
