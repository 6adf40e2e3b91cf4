"""Tests for comparing a split's arms that stay valid when someone looks every hour.

- `srm_test`: sample-ratio mismatch, the χ² goodness-of-fit of arm counts against the declared
  weights (as GrowthBook and Statsig flag it; p < 0.001 by default).
- `newcombe_interval`: the fixed-horizon interval of a difference of two proportions (Newcombe's
  hybrid score method 10, from two Wilson intervals), for display.
- `welch_interval`: the fixed-horizon interval of a difference of two means (Welch), for display.
- `mixture_sequence`: an always-valid confidence sequence for a difference of means from the
  normal-mixture SPRT (mSPRT; Robbins 1970, Johari et al. 2017, "Peeking at A/B tests"). With
  the estimate's variance V and a mixing variance τ², the set

      θ̂ ± sqrt( V (V + τ²) / τ² · (2 log(1/α) + log((V + τ²) / V)) )

  holds the true difference at every look simultaneously with probability ≥ 1 − α (for a normal
  estimate with known V; with V estimated, after a minimum sample). A verdict read from it at
  any number of looks keeps its error rate, which a fixed-horizon p-value read daily does not.
- `sample_needed`: the sample (as a multiple of the current one) at which the sequence's
  half-width would shrink to a given effect.

Standard library only, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from metrics.stats.proportions import wilson_interval, z_for_confidence

SRM_ALPHA = 1e-3


# -- χ² ----------------------------------------------------------------------------------------


def _upper_gamma_regularized(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a): a series below a + 1, a continued fraction above (Numerical
    Recipes, gser / gcf)."""
    if x <= 0.0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def chi2_survival(statistic: float, df: int) -> float:
    """P(χ²_df ≥ statistic)."""
    if df < 1:
        raise ValueError(f"df must be at least 1, got {df}")
    return _upper_gamma_regularized(df / 2.0, statistic / 2.0)


@dataclass(frozen=True, slots=True)
class SrmTest:
    """χ² of observed arm counts against the counts the declared weights expect."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float
    p_value: float
    alpha: float

    @property
    def mismatch(self) -> bool:
        """The split is broken: the counts are too unlikely under the declared weights."""
        return self.p_value < self.alpha


def srm_test(counts: Sequence[int], weights: Sequence[float], alpha: float = SRM_ALPHA) -> SrmTest:
    """Sample-ratio-mismatch test of `counts` (per arm) against `weights` (any positive scale).

    Arms of weight 0 are left out (they must have no traffic; any traffic there is a mismatch).
    With fewer than two weighted arms or no traffic, nothing is tested (p = 1).
    """
    if len(counts) != len(weights):
        raise ValueError("one count per weight")
    if any(c < 0 for c in counts) or any(w < 0 for w in weights):
        raise ValueError("counts and weights must be non-negative")
    total_w = float(sum(weights))
    n = sum(counts)
    if n == 0 or total_w <= 0:
        return SrmTest(tuple(counts), tuple(0.0 for _ in counts), 0.0, 1.0, alpha)
    expected = tuple(n * w / total_w for w in weights)
    if any(c > 0 and e == 0 for c, e in zip(counts, expected, strict=True)):
        return SrmTest(tuple(counts), expected, math.inf, 0.0, alpha)
    live = [(c, e) for c, e in zip(counts, expected, strict=True) if e > 0]
    if len(live) < 2:
        return SrmTest(tuple(counts), expected, 0.0, 1.0, alpha)
    statistic = sum((c - e) ** 2 / e for c, e in live)
    return SrmTest(tuple(counts), expected, statistic, chi2_survival(statistic, len(live) - 1), alpha)


# -- fixed-horizon intervals (display) ---------------------------------------------------------


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of p1 − p2 (Newcombe 1998, method 10: the hybrid score interval from the two
    Wilson intervals). Reuses `wilson_interval`."""
    w1 = wilson_interval(x1, n1, confidence)
    w2 = wilson_interval(x2, n2, confidence)
    d = w1.estimate - w2.estimate
    low = d - math.sqrt((w1.estimate - w1.low) ** 2 + (w2.high - w2.estimate) ** 2)
    high = d + math.sqrt((w1.high - w1.estimate) ** 2 + (w2.estimate - w2.low) ** 2)
    return (max(-1.0, low), min(1.0, high))


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and (sample) variance of a set of values."""

    n: int
    mean: float
    variance: float


def moments(values: Sequence[float]) -> Moments:
    n = len(values)
    if n == 0:
        return Moments(0, 0.0, 0.0)
    mean = math.fsum(values) / n
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return Moments(n, mean, variance)


def _t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df degrees of freedom (Hill 1970's expansion; exact
    enough for intervals from df ≥ 2, and the normal quantile as df grows)."""
    z = z_for_confidence(2.0 * p - 1.0) if p > 0.5 else -z_for_confidence(1.0 - 2.0 * p)
    if df > 1e6:
        return z
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def welch_interval(a: Moments, b: Moments, confidence: float = 0.95) -> tuple[float, float] | None:
    """Interval of mean(a) − mean(b) by Welch's t (None with fewer than two values on a side)."""
    if a.n < 2 or b.n < 2:
        return None
    va, vb = a.variance / a.n, b.variance / b.n
    se = math.sqrt(va + vb)
    d = a.mean - b.mean
    if se == 0.0:
        return (d, d)
    df = (va + vb) ** 2 / ((va**2) / (a.n - 1) + (vb**2) / (b.n - 1)) if va + vb > 0 else 1e9
    t = _t_quantile(0.5 + confidence / 2.0, max(df, 1.0))
    return (d - t * se, d + t * se)


# -- always-valid ------------------------------------------------------------------------------


def mixture_half_width(variance: float, tau: float, alpha: float) -> float:
    """Half-width of the normal-mixture confidence sequence at an estimate of variance V."""
    if variance <= 0.0:
        return 0.0
    t2 = tau * tau
    return math.sqrt(
        variance * (variance + t2) / t2 * (2.0 * math.log(1.0 / alpha) + math.log((variance + t2) / variance))
    )


def mixture_sequence(estimate: float, variance: float, tau: float, alpha: float) -> tuple[float, float]:
    """The always-valid interval (see the module docstring) around `estimate`."""
    if tau <= 0.0 or not 0.0 < alpha < 1.0:
        raise ValueError("tau must be positive and alpha in (0, 1)")
    w = mixture_half_width(variance, tau, alpha)
    return (estimate - w, estimate + w)


def sample_needed(variance: float, tau: float, alpha: float, effect: float, max_factor: float = 1e6) -> float | None:
    """The factor m ≥ 1 by which the sample must grow (the variance shrinking to V/m) for the
    sequence's half-width to reach `effect`; None past `max_factor` (or with no variance known)."""
    if variance <= 0.0 or effect <= 0.0:
        return None
    if mixture_half_width(variance, tau, alpha) <= effect:
        return 1.0
    lo, hi = 1.0, 2.0
    while mixture_half_width(variance / hi, tau, alpha) > effect:
        lo, hi = hi, hi * 2.0
        if hi > max_factor:
            return None
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if mixture_half_width(variance / mid, tau, alpha) > effect:
            lo = mid
        else:
            hi = mid
    return hi
