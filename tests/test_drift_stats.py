"""Drift statistics from bin counts, checked against scipy on the raw values (known truth)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modelctl_server.drift.bins import CategoricalBins, NumericBins
from modelctl_server.drift.profile import Reservoir
from modelctl_server.drift.stats import chi_square_test, ks_test, psi

N = 2000


def _numeric(reference: np.ndarray, live: np.ndarray) -> tuple[float, float, float]:
    bins = NumericBins.from_reference(reference)
    ref, win = bins.count(reference), bins.count(live)
    ks = ks_test(ref, win)
    return psi(bins.psi_counts(ref), bins.psi_counts(win)), ks.statistic, ks.p_value


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_shift_of_one_standard_deviation_is_large_and_significant(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference, live = rng.normal(0, 1, N), rng.normal(1, 1, N)
    value, d, p = _numeric(reference, live)
    assert value > 0.25
    assert p < 0.01
    raw = stats.ks_2samp(reference, live, method="asymp")
    assert d == pytest.approx(raw.statistic, abs=0.02)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_same_distribution_stays_stable_and_ks_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference, live = rng.normal(5, 2, N), rng.normal(5, 2, N)
    value, d, p = _numeric(reference, live)
    assert value < 0.1
    raw = stats.ks_2samp(reference, live, method="asymp")
    # The CDFs are read at the 99 percentile edges only: at most about one fine bin (1 %) off.
    assert d == pytest.approx(raw.statistic, abs=0.015)
    assert d <= raw.statistic + 1e-12  # a subset of the points scipy looks at
    # The p-value is scipy's asymptotic one for the statistic we have.
    assert p == pytest.approx(float(stats.kstwo.sf(d, round(N * N / (2 * N)))), rel=1e-9)
    assert p > 0.01


def test_psi_is_the_documented_formula_with_half_count_smoothing() -> None:
    ref = np.array([50, 30, 20, 0])
    live = np.array([20, 30, 40, 10])
    p = (ref + 0.5) / (100 + 0.5 * 4)
    q = (live + 0.5) / (100 + 0.5 * 4)
    assert psi(ref, live) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert psi(ref, ref) == 0.0
    # A bin empty on both sides changes nothing.
    assert psi(np.append(ref, 0), np.append(live, 0)) == pytest.approx(psi(ref, live))


def test_deciles_are_made_from_the_fine_counts() -> None:
    rng = np.random.default_rng(7)
    reference = rng.exponential(3, 5000)
    bins = NumericBins.from_reference(reference)
    assert 90 <= bins.size <= 100
    coarse = bins.psi_counts(bins.count(reference))
    assert len(coarse) == 10 and coarse.sum() == 5000
    assert np.all(np.abs(coarse - 500) <= 2)  # deciles of the reference hold a tenth of it each


def test_a_discrete_feature_gets_one_bin_per_value() -> None:
    reference = np.repeat([1.0, 2.0, 3.0], [600, 300, 100])
    bins = NumericBins.from_reference(reference)
    assert list(bins.edges) == [1.0, 2.0, 3.0]
    assert list(bins.count([1.0, 2.0, 2.5, 3.0, 9.0, -4.0])) == [2, 1, 2, 1]


def test_categorical_mix_change_is_caught_by_chi_square_like_scipy() -> None:
    rng = np.random.default_rng(11)
    names = ["fr", "de", "it", "es"]
    reference = list(rng.choice(names, N, p=[0.4, 0.3, 0.2, 0.1]))
    live = list(rng.choice(names, N, p=[0.25, 0.25, 0.25, 0.25]))
    bins = CategoricalBins.from_reference(reference)
    ref, win = bins.count(reference), bins.count(live)
    result = chi_square_test(ref, win)
    table = np.array([[reference.count(n) for n in names], [live.count(n) for n in names]])
    expected = stats.chi2_contingency(table)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.p_value < 0.01
    assert psi(ref, win) > 0.1

    same = list(rng.choice(names, N, p=[0.4, 0.3, 0.2, 0.1]))
    assert chi_square_test(ref, bins.count(same)).p_value > 0.01
    assert psi(ref, bins.count(same)) < 0.1


def test_unseen_categories_share_the_last_bin() -> None:
    bins = CategoricalBins.from_reference(["a", "a", "b"])
    assert bins.categories == ("a", "b")
    assert list(bins.count(["a", "z", "y", "b"])) == [1, 1, 2]
    result = chi_square_test(bins.count(["a", "a", "b"]), bins.count(["z"] * 30))
    assert result.p_value < 0.01


def test_the_reservoir_keeps_an_even_deterministic_spread_within_its_limit() -> None:
    r = Reservoir(1000)
    for start in range(0, 100_000, 777):  # batches of awkward sizes
        r.add(list(range(start, min(start + 777, 100_000))))
    assert 500 <= len(r.values) <= 1000
    assert r.seen == 100_000
    gaps = set(np.diff(r.values))
    assert gaps == {r.stride}  # every stride-th value, nothing else
    assert r.values[0] == 0
    again = Reservoir(1000)
    again.add(list(range(100_000)))
    assert again.values == r.values
    small = Reservoir(10)
    small.add([1.0, 2.0, 3.0])
    assert small.values == [1.0, 2.0, 3.0]


def test_ks_of_one_value_each_side_is_a_number() -> None:
    # n·m/(n+m) = 0.5 rounds to 0 samples, where the Kolmogorov distribution is NaN
    result = ks_test(np.array([1, 0]), np.array([0, 1]))
    assert result.statistic == 1.0 and 0.0 <= result.p_value <= 1.0


def test_numeric_counts_follow_the_bin_definition_on_ties_outside_values_and_nothing() -> None:
    """Bin i holds edges[i-1] < v <= edges[i]: counted by sorting, the same as a search per value."""
    rng = np.random.default_rng(4)
    bins = NumericBins.from_reference(rng.normal(size=5000))
    values = np.concatenate([rng.normal(size=3000), bins.edges, bins.edges[::7], [-1e300, 1e300, 0.0]])
    rng.shuffle(values)
    expected = np.bincount(np.searchsorted(bins.edges, values, side="left"), minlength=bins.size)
    counts = bins.count(values)
    assert counts.dtype == np.int64 and counts.tolist() == expected.tolist() and counts.sum() == len(values)
    assert bins.count([]).tolist() == [0] * bins.size
