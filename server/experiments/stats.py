"""The statistics of an A/B experiment, from running sums only. Pure functions over scipy.

Each arm reduces to an `ArmSummary` (n, mean, per-sample variance):

- rates (conversion = successes / trials, error rate = errors / requests):
  mean p = x / n, variance p (1 - p);
- means (value = outcome.values, latency = latency_ms), from count n, sum S and
  sum of squares Q: mean m = S / n, sample variance s² = (Q - n m²) / (n - 1).

Fixed-horizon tests (valid when read once, at a sample size fixed in advance):

- **two-proportion z-test** (rates): pooled p̂ = (x_c + x_t) / (n_c + n_t),
  z = (p_t - p_c) / sqrt(p̂ (1 - p̂) (1/n_c + 1/n_t)), two-sided p = 2 Φ(-|z|);
- **Welch's t-test** (means): `scipy.stats.ttest_ind_from_stats(..., equal_var=False)`,
  t = (m_t - m_c) / sqrt(s_t²/n_t + s_c²/n_c) with the Welch-Satterthwaite degrees of freedom.

**Always-valid p-value** (it decides `significant`): a mixture sequential
probability ratio test (mSPRT; Robbins 1970, Johari et al. 2017, "Always Valid
Inference"). With θ̂ = mean_t - mean_c and its variance V = σ_c²/n_c + σ_t²/n_t,
a normal mixture N(0, τ²) over the true difference θ gives the likelihood ratio
of "some difference" against "none":

    Λ(τ) = sqrt(V / (V + τ²)) · exp(θ̂² τ² / (2 V (V + τ²)))

Under H0 (no difference) Λ is a nonnegative martingale with mean 1, so by
Ville's inequality P(Λ ever ≥ 1/α) ≤ α: the p-value p_n = min over looks of
min(1, 1/Λ) may be watched after every report and acted on the moment it drops
below α without inflating false positives. τ is tied to the effect the
experiment is meant to find: τ_k = min_effect · |control mean| · 4^k for
k = 0, 1, 2 (the pooled mean when the control's is 0), averaged with equal weights (a mixture of martingales is a
martingale, so validity is unchanged). The k = 0 term is most powerful for
effects of about min_effect; the wider ones confirm a much larger effect early
instead of waiting for the evidence a single narrow τ would need.

**Lift** L = (t - c) / c with a delta-method interval: Var(L) ≈ Var(t̄)/c² +
t² Var(c̄)/c⁴ with Var(x̄) = σ²/n; the interval is L ± z_{1-α/2} sqrt(Var(L))
(fixed-horizon, like the z/Welch p-value).

**Samples needed** to detect the relative effect δ = min_effect with power
1 - β at level α (two-sided), when a share s of the traffic goes to the
treatment: Δ = δ |c|, N = (z_{1-α/2} + z_{1-β})² (σ_c²/(1-s) + σ_t²/s) / Δ²,
n_c = (1-s) N and n_t = s N (for s = ½: n = (z_{1-α/2} + z_{1-β})² (σ_c² + σ_t²) / Δ²
per arm). For rates σ_c² = c(1-c) and σ_t² = c'(1-c') with c' = c(1+δ); for
means both use the pooled sample variance. `samples_needed` is what the arm
furthest from its target still lacks (0 once both have reached it).

**Sample ratio mismatch**: `scipy.stats.chisquare` of the arms' sample counts
against the configured split; p < 0.001 flags a broken split (bucketing or
logging lost one arm's data), and then no verdict should be trusted.

Below `MIN_SAMPLES` per arm every test answers p = 1: the normal approximations
behind them need some data first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _scipy():  # noqa: ANN202 - scipy.stats
    """scipy.stats, imported on first use: 64 MB and 1-3 s of start-up a server without experiments never needs."""
    from scipy import stats

    return stats

#: Samples each arm needs before any test is computed.
MIN_SAMPLES = 30
#: The sample-ratio-mismatch p-value below which the split is called broken.
SRM_ALPHA = 0.001
#: samples_needed never says more than this (2**53: exact in a double, fits the wire's uint64).
MAX_SAMPLES_NEEDED = 2 ** 53
#: Mixture widths, in units of min_effect x |control mean|.
TAU_SCALES = (1.0, 4.0, 16.0)


@dataclass(frozen=True)
class ArmSummary:
    """One arm as the tests see it: sample count, mean and per-sample variance."""

    n: int
    mean: float
    variance: float

    @property
    def std_dev(self) -> float:
        return math.sqrt(self.variance)

    @property
    def variance_of_mean(self) -> float:
        return self.variance / self.n if self.n > 0 else math.inf


@dataclass(frozen=True)
class Lift:
    """(t - c) / c and its confidence interval."""

    value: float
    low: float
    high: float


def rate_summary(successes: int, trials: int) -> ArmSummary:
    if trials <= 0:
        return ArmSummary(0, 0.0, 0.0)
    p = successes / trials
    return ArmSummary(trials, p, p * (1.0 - p))


def mean_summary(count: int, total: float, total_squares: float) -> ArmSummary:
    if count <= 0:
        return ArmSummary(0, 0.0, 0.0)
    mean = total / count
    if count == 1:
        return ArmSummary(1, mean, 0.0)
    # Rounding may make a constant series' variance a hair negative.
    variance = max(0.0, (total_squares - count * mean * mean) / (count - 1))
    return ArmSummary(count, mean, variance)


def enough(control: ArmSummary, treatment: ArmSummary) -> bool:
    return control.n >= MIN_SAMPLES and treatment.n >= MIN_SAMPLES


def two_proportion_p_value(control: ArmSummary, treatment: ArmSummary) -> float:
    """Two-sided pooled z-test of p_t = p_c."""
    if not enough(control, treatment):
        return 1.0
    pooled = (control.mean * control.n + treatment.mean * treatment.n) / (control.n + treatment.n)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control.n + 1.0 / treatment.n))
    if se == 0.0:
        return 1.0  # both arms all 0 or all 1: no evidence of a difference
    z = (treatment.mean - control.mean) / se
    return float(2.0 * _scipy().norm.sf(abs(z)))


def welch_p_value(control: ArmSummary, treatment: ArmSummary) -> float:
    """Two-sided Welch's t-test of equal means."""
    if not enough(control, treatment):
        return 1.0
    if control.variance == 0.0 and treatment.variance == 0.0:
        return 1.0 if control.mean == treatment.mean else 0.0
    result = _scipy().ttest_ind_from_stats(treatment.mean, treatment.std_dev, treatment.n,
                                         control.mean, control.std_dev, control.n, equal_var=False)
    return float(result.pvalue)


def fixed_horizon_p_value(control: ArmSummary, treatment: ArmSummary, *, rate: bool) -> float:
    return two_proportion_p_value(control, treatment) if rate else welch_p_value(control, treatment)


def mixture_likelihood_ratio(control: ArmSummary, treatment: ArmSummary, taus: tuple[float, ...]) -> float:
    """Λ averaged over the normal mixtures N(0, τ²), τ in `taus`; 1 when there is no evidence yet."""
    variance = control.variance_of_mean + treatment.variance_of_mean
    if not enough(control, treatment) or not math.isfinite(variance) or variance <= 0.0:
        return 1.0
    diff = treatment.mean - control.mean
    ratios = []
    for tau in taus:
        if tau <= 0.0:
            ratios.append(1.0)
            continue
        t2 = tau * tau
        exponent = diff * diff * t2 / (2.0 * variance * (variance + t2))
        # exp overflows near 710; a ratio that large is p = 0 for every purpose.
        ratios.append(math.sqrt(variance / (variance + t2)) * math.exp(min(exponent, 700.0)))
    return sum(ratios) / len(ratios)


def mixture_taus(control: ArmSummary, min_effect: float, treatment: ArmSummary | None = None) -> tuple[float, ...]:
    """min_effect x |control mean| x TAU_SCALES; the pooled mean stands in for a control mean of 0.

    A control with no errors (or no conversions) yet is common: a width of 0 would
    make Λ = 1 for ever, however far the treatment is from it.
    """
    mean = control.mean
    if mean == 0.0 and treatment is not None and control.n + treatment.n > 0:
        mean = (control.mean * control.n + treatment.mean * treatment.n) / (control.n + treatment.n)
    baseline = abs(mean) * min_effect
    return tuple(baseline * scale for scale in TAU_SCALES)


def always_valid_p_value(previous: float, control: ArmSummary, treatment: ArmSummary,
                         min_effect: float) -> float:
    """p_n = min(p_{n-1}, 1/Λ_n): the sequential p-value after one more look; it never rises."""
    ratio = mixture_likelihood_ratio(control, treatment, mixture_taus(control, min_effect, treatment))
    return min(previous, 1.0, 1.0 / ratio)


def lift(control: ArmSummary, treatment: ArmSummary, alpha: float) -> Lift | None:
    """Relative lift with its delta-method interval; None while the control mean is 0 or an arm is empty."""
    if control.n == 0 or treatment.n == 0 or control.mean == 0.0:
        return None
    c, t = control.mean, treatment.mean
    value = (t - c) / c
    variance = treatment.variance_of_mean / c ** 2 + t ** 2 * control.variance_of_mean / c ** 4
    half = float(_scipy().norm.ppf(1.0 - alpha / 2.0)) * math.sqrt(variance)
    return Lift(value, value - half, value + half)


def required_per_arm(control: ArmSummary, treatment: ArmSummary, *, rate: bool, min_effect: float,
                     alpha: float, power: float, treatment_share: float) -> tuple[int, int] | None:
    """(n_c, n_t) that detect a relative effect of `min_effect`; None while the baseline is unknown or 0."""
    if control.n == 0 or control.mean == 0.0:
        return None
    delta = min_effect * abs(control.mean)
    if rate:
        c = control.mean
        shifted = min(max(c * (1.0 + min_effect), 0.0), 1.0)
        var_c, var_t = c * (1.0 - c), shifted * (1.0 - shifted)
    else:
        dfs = max(control.n - 1, 0) + max(treatment.n - 1, 0)
        if dfs == 0:
            return None
        pooled = (max(control.n - 1, 0) * control.variance + max(treatment.n - 1, 0) * treatment.variance) / dfs
        var_c = var_t = pooled
    if var_c + var_t == 0.0:
        return None
    z = float(_scipy().norm.ppf(1.0 - alpha / 2.0) + _scipy().norm.ppf(power))
    # A tiny min_effect or share makes Δ² underflow or N overflow: "more than anyone will collect", not a crash.
    try:
        total = z * z * (var_c / (1.0 - treatment_share) + var_t / treatment_share) / (delta * delta)
    except (ZeroDivisionError, OverflowError):
        total = math.inf
    return _capped((1.0 - treatment_share) * total), _capped(treatment_share * total)


def _capped(n: float) -> int:
    """ceil(n), at most MAX_SAMPLES_NEEDED (also for inf and NaN)."""
    return math.ceil(n) if n < MAX_SAMPLES_NEEDED else MAX_SAMPLES_NEEDED


def samples_needed(control: ArmSummary, treatment: ArmSummary, *, rate: bool, min_effect: float, alpha: float,
                   power: float, treatment_share: float) -> int | None:
    """What the arm furthest from its target still lacks; 0 once both reached it, None if unknown."""
    required = required_per_arm(control, treatment, rate=rate, min_effect=min_effect, alpha=alpha, power=power,
                                treatment_share=treatment_share)
    if required is None:
        return None
    return max(0, required[0] - control.n, required[1] - treatment.n)


def srm_p_value(control_samples: int, treatment_samples: int, treatment_share: float) -> float:
    """Chi-square goodness of fit of the arms' sample counts to the configured split; 1 with no samples."""
    total = control_samples + treatment_samples
    if total == 0:
        return 1.0
    expected = [total * (1.0 - treatment_share), total * treatment_share]
    return float(_scipy().chisquare([control_samples, treatment_samples], f_exp=expected).pvalue)
