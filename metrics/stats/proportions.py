"""Intervals and tests on proportions: the Wilson score interval and the two-proportion z-test."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

_STD_NORMAL = NormalDist()

Alternative = Literal["less", "greater", "two-sided"]


def z_for_confidence(confidence: float) -> float:
    """The two-sided standard-normal critical value: 1.959964 for 0.95, 2.575829 for 0.99."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return _STD_NORMAL.inv_cdf(0.5 + confidence / 2.0)


def normal_upper_tail(z: float) -> float:
    """P(Z >= z) for a standard normal Z, accurate far into the tail (uses erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class WilsonInterval:
    """A Wilson score interval: ``low <= estimate <= high`` around ``successes / n``."""

    successes: int
    n: int
    confidence: float
    estimate: float
    low: float
    high: float

    def as_tuple(self) -> tuple[float, float]:
        return (self.low, self.high)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> WilsonInterval:
    """Return the Wilson score interval for a binomial proportion.

    With p̂ = successes/n and z the two-sided critical value for ``confidence``::

        centre    = (p̂ + z²/2n) / (1 + z²/n)
        halfwidth = z / (1 + z²/n) · sqrt(p̂(1−p̂)/n + z²/4n²)

    Unlike the Wald interval p̂ ± z·sqrt(p̂(1−p̂)/n) it never leaves [0, 1], is not zero-width at
    0/n or n/n, and keeps close to nominal coverage for small n (Newcombe 1998, method 3), which is
    what lets a detector test small windows without alarming on them. The default 95% matches the
    interval people read in dashboards; detectors that page use their own level.

    With ``n == 0`` nothing is known: the interval is [0, 1] and the estimate is reported as 0.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return WilsonInterval(0, 0, confidence, 0.0, 0.0, 1.0)
    z = z_for_confidence(confidence)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    # Exact at the edges: rounding must not push 0/n above 0 or n/n below 1.
    low = 0.0 if successes == 0 else max(0.0, min(p, centre - half))
    high = 1.0 if successes == n else min(1.0, max(p, centre + half))
    return WilsonInterval(successes, n, confidence, p, low, high)


@dataclass(frozen=True, slots=True)
class TwoProportionZTest:
    """Result of a pooled two-proportion z-test of sample 1 against sample 2."""

    x1: int
    n1: int
    x2: int
    n2: int
    p1: float
    p2: float
    pooled: float
    z: float
    p_value: float
    alternative: Alternative

    @property
    def difference(self) -> float:
        """p1 − p2 (negative when sample 1 has the lower rate)."""
        return self.p1 - self.p2


def two_proportion_z_test(
    x1: int, n1: int, x2: int, n2: int, alternative: Alternative = "two-sided"
) -> TwoProportionZTest:
    """Test H0: p1 = p2 with the pooled two-proportion z statistic.

    p̂ = (x1 + x2)/(n1 + n2), z = (x1/n1 − x2/n2) / sqrt(p̂(1−p̂)(1/n1 + 1/n2)).
    ``alternative`` is about sample 1: "less" tests p1 < p2 (p = Φ(z)), "greater" p1 > p2
    (p = 1 − Φ(z)), "two-sided" p1 ≠ p2. The pooled standard error is the one valid under H0,
    which is what a p-value needs. When both samples are all successes or all failures there is
    no variance and no evidence: z = 0 and p = 1 (0.5 one-sided is wrong here; nothing differs).
    """
    for x, n in ((x1, n1), (x2, n2)):
        if n <= 0 or x < 0 or x > n:
            raise ValueError(f"need 0 <= x <= n and n > 0, got {x}/{n}")
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return TwoProportionZTest(x1, n1, x2, n2, p1, p2, pooled, 0.0, 1.0, alternative)
    z = (p1 - p2) / se
    if alternative == "less":
        p_value = normal_upper_tail(-z)
    elif alternative == "greater":
        p_value = normal_upper_tail(z)
    elif alternative == "two-sided":
        p_value = min(1.0, 2.0 * normal_upper_tail(abs(z)))
    else:
        raise ValueError(f"unknown alternative {alternative!r}")
    return TwoProportionZTest(x1, n1, x2, n2, p1, p2, pooled, z, p_value, alternative)
