"""Changes of one proportion against its baseline, judged by significance *and* size: a tier's pass
rate or escalation rate, a route's or task type's share of its policy's traffic.

`proportion_change` is a pooled two-proportion z-test (one- or two-sided) that fires only when the
p-value is below ``alpha`` and the change is material: at least ``min_points`` (absolute) and at
least ``min_ratio`` (relative, current/baseline or its inverse). Significance alone fires on tiny
real changes at high volume; size alone fires on noise at low volume. The Jensen–Shannon divergence
of the two-category distributions (bits) is kept as the effect size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from metrics.stats.divergence import jensen_shannon_divergence, smoothed_distributions
from metrics.stats.findings import Evidence, Finding, Severity, pct
from metrics.stats.histogram import histogram_quantile
from metrics.stats.proportions import Alternative, two_proportion_z_test

CHANGE_ALPHA = 1e-5
CHANGE_MIN_SAMPLES = 200
CHANGE_MIN_BASELINE_SAMPLES = 500
SHARE_MIN_RATIO = 1.5
SHARE_MIN_POINTS = 0.01
TIER_MIN_POINTS = 0.04
TIER_MIN_RATIO = 1.0


def proportion_change(
    x: int,
    n: int,
    base_x: int,
    base_n: int,
    *,
    detector: str,
    subject: str,
    alternative: Alternative = "two-sided",
    alpha: float = CHANGE_ALPHA,
    min_points: float = TIER_MIN_POINTS,
    min_ratio: float = TIER_MIN_RATIO,
    min_samples: int = CHANGE_MIN_SAMPLES,
    min_baseline_samples: int = CHANGE_MIN_BASELINE_SAMPLES,
    window: str = "the current window",
    baseline_window: str = "the baseline",
    severity: Severity = "ticket",
) -> Finding:
    """Alert when x/n moved from base_x/base_n in the `alternative` direction ("greater": rose,
    "less": fell, "two-sided": either) with p < alpha, by ≥ min_points and by a factor ≥ min_ratio.

    Below `min_baseline_samples` in the baseline the detector is still learning what normal is and
    says so ("insufficient_data", summary "learning"); below `min_samples` in the window, too few.
    """
    test = f"{'two' if alternative == 'two-sided' else 'one'}-sided two-proportion z-test (pooled)"
    numbers: dict[str, object] = {
        "x": x,
        "n": n,
        "baseline_x": base_x,
        "baseline_n": base_n,
        "alpha": alpha,
        "min_points": min_points,
        "min_ratio": min_ratio,
    }
    evidence = Evidence(test=test, window=window, baseline=baseline_window, numbers=numbers)
    if base_n < min_baseline_samples:
        summary = f"{subject}: learning, baseline n={base_n} of the {min_baseline_samples} needed"
        return Finding(detector, "insufficient_data", "info", summary, evidence)
    if n < min_samples:
        summary = f"{subject}: n={n} over {window} (need {min_samples})"
        return Finding(detector, "insufficient_data", "info", summary, evidence)
    if x > n or base_x > base_n or x < 0 or base_x < 0:
        summary = f"{subject}: inconsistent counts, {x} of {n}, baseline {base_x} of {base_n}"
        return Finding(detector, "insufficient_data", "info", summary, evidence)
    t = two_proportion_z_test(x, n, base_x, base_n, alternative)
    change = t.p1 - t.p2
    lo, hi = sorted((t.p1, t.p2))
    ratio = hi / lo if lo > 0 else float("inf")
    p, q = smoothed_distributions({"in": x, "out": n - x}, {"in": base_x, "out": base_n - base_x})
    jsd = jensen_shannon_divergence(p, q)
    numbers.update(rate=t.p1, baseline_rate=t.p2, change=change, ratio=ratio, z=t.z, p_value=t.p_value, jsd=jsd)
    direction_ok = alternative == "two-sided" or (change > 0) == (alternative == "greater")
    fired = direction_ok and t.p_value < alpha and abs(change) >= min_points and ratio >= min_ratio
    moved = "above" if change >= 0 else "below"
    summary = (
        f"{subject} {pct(t.p1, 1)} over {window} is {100 * abs(change):.1f} points {moved} the baseline "
        f"{pct(t.p2, 1)} over {baseline_window} (×{t.p1 / t.p2 if t.p2 else float('inf'):.2f}; z = {t.z:.2f}, "
        f"p = {t.p_value:.2g}; n={n} vs {base_n})"
    )
    return Finding(
        detector,
        "alert" if fired else "ok",
        severity if fired else "info",
        summary,
        Evidence(
            test=test,
            window=window,
            baseline=baseline_window,
            statistic=t.z,
            p_value=t.p_value,
            numbers=numbers,
        ),
    )


CONFIDENCE_MIN_DROP = 0.03
CONFIDENCE_SD = 0.2  # a generous per-attempt standard deviation of confidence scores in [0, 1]
CONFIDENCE_Z = 5.0


def mean_drop(
    total: float,
    n: int,
    base_total: float,
    base_n: int,
    *,
    detector: str,
    subject: str,
    min_drop: float = CONFIDENCE_MIN_DROP,
    sd: float = CONFIDENCE_SD,
    z: float = CONFIDENCE_Z,
    min_samples: int = CHANGE_MIN_SAMPLES,
    min_baseline_samples: int = CHANGE_MIN_BASELINE_SAMPLES,
    window: str = "the current window",
    baseline_window: str = "the baseline",
    severity: Severity = "ticket",
) -> Finding:
    """Alert when a mean (of confidence scores) fell by ≥ min_drop and by ≥ z standard errors.

    Rollups hold sums and counts, not squares, so the standard error assumes a per-value standard
    deviation `sd` (0.2 bounds the spread of scores in [0, 1] seen in practice; 0.5 is the maximum):
    limit = max(min_drop, z·sd·√(1/n + 1/n_baseline)).
    """
    numbers: dict[str, object] = {"sum": total, "n": n, "baseline_sum": base_total, "baseline_n": base_n}
    test = f"mean shift against {z:g} standard errors (sd {sd:g})"
    evidence = Evidence(test=test, window=window, baseline=baseline_window, numbers=numbers)
    if base_n < min_baseline_samples:
        summary = f"{subject}: learning, baseline n={base_n} of the {min_baseline_samples} needed"
        return Finding(detector, "insufficient_data", "info", summary, evidence)
    if n < min_samples:
        return Finding(detector, "insufficient_data", "info", f"{subject}: n={n} (need {min_samples})", evidence)
    mean, base_mean = total / n, base_total / base_n
    limit = max(min_drop, z * sd * (1 / n + 1 / base_n) ** 0.5)
    drop = base_mean - mean
    numbers.update(mean=mean, baseline_mean=base_mean, drop=drop, limit=limit)
    fired = drop >= limit
    summary = (
        f"{subject} {mean:.3f} over {window} vs {base_mean:.3f} over {baseline_window} "
        f"({'−' if drop >= 0 else '+'}{abs(drop):.3f}, limit {limit:.3f}; n={n} vs {base_n})"
    )
    return Finding(
        detector,
        "alert" if fired else "ok",
        severity if fired else "info",
        summary,
        Evidence(test=test, window=window, baseline=baseline_window, statistic=drop, numbers=numbers),
    )


def latency_tail_rise(
    bounds: Sequence[float],
    counts: Sequence[int],
    baseline_counts: Sequence[int],
    *,
    detector: str,
    subject: str,
    quantile: float = 0.95,
    edge_of: Literal["upper", "lower"] = "upper",
    alpha: float = CHANGE_ALPHA,
    window: str = "the current window",
    baseline_window: str = "the baseline",
) -> Finding:
    """Whether the share of attempts slower than the baseline's p95 bucket rose, significantly and
    by half at least: the tail test behind a p95 ratio read from buckets. A p95 interpolated inside
    a wide bucket moves by a third on sampling noise alone; the count above a fixed bucket bound
    does not. The bound is the upper edge of the bucket holding the baseline's p95 (the last
    finite bound when it sits in the open bucket), or with ``edge_of="lower"`` its lower edge (the
    first bound when the p95 sits in the first bucket): at least 5% of the baseline is slower than
    that one, so a slowdown of tens of percent moves its share by many points, while above the
    upper edge of a bucket 2.5× wide the baseline's share is a fraction of a percent and stays
    small (`latency_p95_regression`'s per-tier checks use the lower edge)."""
    base = histogram_quantile(bounds, baseline_counts, quantile)
    finite = [b for b in bounds if math.isfinite(b)]
    edge = next((i for i, b in enumerate(finite) if base is not None and b >= base), len(finite) - 1)
    if edge_of == "lower" and base is not None:
        edge = max(0, next((i - 1 for i, b in enumerate(finite) if b > base), len(finite) - 1))
    above, base_above = sum(counts[edge + 1 :]), sum(baseline_counts[edge + 1 :])
    return proportion_change(
        above,
        sum(counts),
        base_above,
        sum(baseline_counts),
        detector=detector,
        subject=f"{subject}: share slower than {finite[edge]:g} ms",
        alternative="greater",
        min_points=0.02,
        min_ratio=SHARE_MIN_RATIO,
        alpha=alpha,
        window=window,
        baseline_window=baseline_window,
    )
