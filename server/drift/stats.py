"""Drift statistics from bin counts: PSI, two-sample Kolmogorov-Smirnov, chi-square of homogeneity.

Every function takes the reference's counts and the window's counts in the
same bins, never raw values, so they work on the bounded state the engine keeps.

- PSI = sum over bins of (q - p) * ln(q / p), p the reference's share of a bin and
  q the window's. Empty bins would make it infinite, so each bin used by either
  side gets a pseudo-count of 0.5 (Jeffreys' prior) on both sides before the
  shares are taken; bins empty on both sides are left out. Rule of thumb:
  < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
- KS: D is the largest gap between the two empirical CDFs read at the bin edges
  (the exact D of the raw values is at most the mass of one fine bin away); the
  p-value is what `scipy.stats.ks_2samp(..., method="asymp")` gives for that D:
  the Kolmogorov distribution with round(n*m / (n+m)) samples.
- Chi-square: `scipy.stats.chi2_contingency` on the 2 x k table (reference row,
  window row), bins empty on both sides dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _stats():  # noqa: ANN202 - scipy.stats
    """scipy.stats, imported on first use: 64 MB and 1-3 s of start-up a server without drift never needs."""
    from scipy import stats

    return stats

#: Added to both sides of every bin in use before PSI takes shares.
PSI_PSEUDO_COUNT = 0.5


@dataclass(frozen=True)
class StatResult:
    statistic: float
    p_value: float


def psi(reference: np.ndarray, window: np.ndarray) -> float:
    """Population stability index of `window` against `reference` (same bins); 0 when either is empty."""
    ref, live = _used_bins(reference, window)
    if ref.sum() == 0 or live.sum() == 0:
        return 0.0
    p = (ref + PSI_PSEUDO_COUNT) / (ref.sum() + PSI_PSEUDO_COUNT * len(ref))
    q = (live + PSI_PSEUDO_COUNT) / (live.sum() + PSI_PSEUDO_COUNT * len(live))
    return float(np.sum((q - p) * np.log(q / p)))


def ks_test(reference: np.ndarray, window: np.ndarray) -> StatResult:
    """Two-sided two-sample KS from fine bin counts; requires values on both sides."""
    n, m = int(reference.sum()), int(window.sum())
    if n == 0 or m == 0:
        raise ValueError("KS needs values on both sides")
    # CDF at each edge: the mass of the bins up to and including it (the last bin reaches +inf).
    cdf_ref = np.cumsum(reference)[:-1] / n
    cdf_live = np.cumsum(window)[:-1] / m
    d = float(np.max(np.abs(cdf_ref - cdf_live))) if len(cdf_ref) else 0.0
    big, small = max(n, m), min(n, m)
    effective = max(1, round(big * small / (big + small)))  # n = m = 1 rounds to 0, where kstwo is NaN
    p_value = float(np.clip(_stats().kstwo.sf(d, effective), 0.0, 1.0))
    return StatResult(d, p_value)


def chi_square_test(reference: np.ndarray, window: np.ndarray) -> StatResult:
    """Chi-square test that both rows come from one distribution; (0, 1) when only one bin is in use."""
    ref, live = _used_bins(reference, window)
    if ref.sum() == 0 or live.sum() == 0:
        raise ValueError("chi-square needs values on both sides")
    if len(ref) < 2:
        return StatResult(0.0, 1.0)
    result = _stats().chi2_contingency(np.vstack([ref, live]))
    return StatResult(float(result.statistic), float(result.pvalue))


def _used_bins(reference: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if reference.shape != window.shape:
        raise ValueError("reference and window must be counted in the same bins")
    used = (reference + window) > 0
    return reference[used].astype(np.float64), window[used].astype(np.float64)
