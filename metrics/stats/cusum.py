"""Slow drift of a rate, hour by hour: a one-sided Bernoulli CUSUM against a baseline rate, with a
p-value, so a drift too slow for a 24 h window against 7 days (a ramp over several days) still
accumulates evidence.

Each hour contributes its log-likelihood ratio of the alternative rate p1 against the baseline p0,
LLR = x·ln(p1/p0) + (n − x)·ln((1 − p1)/(1 − p0)), and S_t = max(0, S_{t−1} + LLR_t) (Page's CUSUM;
S_0 = 0). S at the last hour is the evidence that the rate sits nearer p1 than p0 since the run
began (the hour after the last zero). Under H0 (rate p0) the likelihood ratio from a fixed start is
a non-negative martingale of mean 1, so P(LR ≥ e^s) ≤ e^(−s) at any time (Ville's inequality); the
CUSUM is the largest of the K likelihood ratios that start at each hour of the series, hence the
p-value bound p = min(1, K·e^(−S)) (a union bound over the start hours). The baseline rate is an
estimate, so the bound is approximate; the baseline must not overlap the series.

S is capped (`cap`): after a burst of hundreds of failures an uncapped S takes days of normal
traffic to fall back, and the alert would stay open that long; capped at twice the decision level
ln(K/alpha) it needs to lose only the margin above the level (after the evaluation's false
discovery control, which asks for a few nats more) once the change is over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from metrics.stats.findings import Evidence, Finding, Severity, pct
from metrics.stats.proportions import Alternative

DRIFT_ALPHA = 1e-5  # the same per-test level as `shares.CHANGE_ALPHA`, for the same reasons
DRIFT_MIN_SAMPLES = 200
DRIFT_MIN_BASELINE_SAMPLES = 500
DRIFT_CAP_LEVELS = 2.0  # S is capped at this many times the decision level ln(K/alpha)


@dataclass(frozen=True, slots=True)
class Cusum:
    """A Bernoulli CUSUM at the last hour of its series.

    ``statistic`` is S (nats); ``run_start`` the index of the first hour of the current run (the
    hours since S was last 0; ``len(series)`` when S is 0); ``run_x``/``run_n`` the counts since
    then; ``peak`` the largest S over the series; ``p_value`` = min(1, K·e^(−S)), K the hours.
    """

    statistic: float
    peak: float
    run_start: int
    run_x: int
    run_n: int
    p_value: float


def bernoulli_cusum(series: Sequence[tuple[int, int]], p0: float, p1: float, *, cap: float = math.inf) -> Cusum:
    """Page's CUSUM of hourly (successes, trials) for a shift of the rate from `p0` to `p1`
    (p1 > p0 watches a rise, p1 < p0 a fall); both must lie strictly inside (0, 1). S never
    exceeds `cap`."""
    if not (0.0 < p0 < 1.0 and 0.0 < p1 < 1.0) or p0 == p1:
        raise ValueError(f"need distinct rates in (0, 1), got p0={p0!r}, p1={p1!r}")
    hit, miss = math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))
    s = peak = 0.0
    start, run_x, run_n = 0, 0, 0
    for i, (x, n) in enumerate(series):
        if x < 0 or n < x:
            raise ValueError(f"hour {i}: need 0 <= x <= n, got {x}/{n}")
        s = min(cap, s + x * hit + (n - x) * miss)
        if s <= 0.0:
            s, start, run_x, run_n = 0.0, i + 1, 0, 0
        else:
            run_x, run_n = run_x + x, run_n + n
        peak = max(peak, s)
    k = max(1, len(series))
    return Cusum(s, peak, start, run_x, run_n, min(1.0, k * math.exp(-s)))


def _clamp(p: float) -> float:
    return min(1.0 - 1e-6, max(1e-6, p))


def rate_drift(
    series: Sequence[tuple[int, int]],
    base_x: int,
    base_n: int,
    *,
    detector: str,
    subject: str,
    alternative: Alternative,
    min_points: float,
    target: float | None = None,
    alpha: float = DRIFT_ALPHA,
    min_samples: int = DRIFT_MIN_SAMPLES,
    min_baseline_samples: int = DRIFT_MIN_BASELINE_SAMPLES,
    window: str = "the series",
    baseline_window: str = "the baseline",
    severity: Severity = "ticket",
) -> Finding:
    """Alert when the hourly rate x/n of `series` drifted away from base_x/base_n in the
    `alternative` direction ("greater" or "less"): the CUSUM for a shift of `min_points`
    (or to the rate `target`, when given) has p < `alpha`, and the rate since its run began moved
    by at least half of that shift (the CUSUM's own decision boundary, so a long run of tiny
    changes at huge volume does not fire on its significance alone).

    The baseline rate is Jeffreys-smoothed, (x + ½)/(n + 1), so a baseline without a single event
    (no failures in a week) still gives a finite ratio. Below `min_baseline_samples` the detector
    is learning ("insufficient_data", summary "learning"); below `min_samples` over the series,
    too few.
    """
    if alternative == "two-sided":
        raise ValueError("rate_drift is one-sided: alternative 'greater' or 'less'")
    n = sum(h[1] for h in series)
    x = sum(h[0] for h in series)
    numbers: dict[str, object] = {
        "x": x,
        "n": n,
        "hours": len(series),
        "baseline_x": base_x,
        "baseline_n": base_n,
        "alpha": alpha,
        "min_points": min_points,
    }
    test = f"one-sided Bernoulli CUSUM, hour by hour (p ≤ K·e^−S over K = {len(series)} start hours)"
    evidence = Evidence(test=test, window=window, baseline=baseline_window, numbers=numbers)
    if base_n < min_baseline_samples:
        summary = f"{subject}: learning, baseline n={base_n} of the {min_baseline_samples} needed"
        return Finding(detector, "insufficient_data", "info", summary, evidence)
    if n < min_samples:
        summary = f"{subject}: n={n} over {window} (need {min_samples})"
        return Finding(detector, "insufficient_data", "info", summary, evidence)
    if base_x < 0 or base_x > base_n or any(h[0] < 0 or h[0] > h[1] for h in series):
        summary = f"{subject}: inconsistent counts, {x} of {n}, baseline {base_x} of {base_n}"
        return Finding(detector, "insufficient_data", "info", summary, evidence)
    p0 = _clamp((base_x + 0.5) / (base_n + 1))
    sign = 1.0 if alternative == "greater" else -1.0
    p1 = _clamp(target if target is not None else p0 + sign * min_points)
    if (p1 - p0) * sign <= 0:
        summary = f"{subject}: no room for a {'rise' if sign > 0 else 'fall'} from the baseline {pct(p0, 1)}"
        return Finding(detector, "ok", "info", summary, evidence)
    cap = DRIFT_CAP_LEVELS * math.log(max(1, len(series)) / alpha)
    c = bernoulli_cusum(series, p0, p1, cap=cap)
    run_rate = c.run_x / c.run_n if c.run_n else p0
    moved = (run_rate - p0) * sign
    since = len(series) - c.run_start
    numbers.update(
        baseline_rate=p0,
        alternative_rate=p1,
        cap=cap,
        statistic=c.statistic,
        peak=c.peak,
        run_hours=since,
        run_x=c.run_x,
        run_n=c.run_n,
        run_rate=run_rate,
        p_value=c.p_value,
    )
    fired = c.p_value < alpha and moved >= abs(p1 - p0) / 2
    direction = "above" if sign > 0 else "below"
    if since:
        summary = (
            f"{subject} {pct(run_rate, 1)} over the last {since} h is {100 * abs(run_rate - p0):.1f} points "
            f"{direction if run_rate != p0 else 'off'} the baseline {pct(p0, 1)} over {baseline_window} "
            f"(CUSUM S = {c.statistic:.1f} toward {pct(p1, 1)}, p ≤ {c.p_value:.2g}; n={c.run_n} vs {base_n})"
        )
    else:
        summary = (
            f"{subject} shows no drift {direction} the baseline {pct(p0, 1)} over {window} "
            f"(CUSUM S = 0; n={n} vs {base_n})"
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
            statistic=c.statistic,
            p_value=c.p_value,
            numbers=numbers,
        ),
    )
