"""Drift detectors for one route: each takes window totals read from rollups, returns a Finding.

Every detector is a pure function of counts and sums (no clock, no database). The caller chooses
the windows and passes their labels (``window="the last 24 h"``, ``baseline_window="the previous
7 days"``) so the summary states them; the baseline must not overlap the current window. The
reasons behind each default, and the false-alarm rates measured with them, are in docs/alerts.md
(reproduce with ``python -m metrics.stats.false_alarms``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from metrics.stats.divergence import (
    DEFAULT_PSEUDOCOUNT,
    jensen_shannon_divergence,
    population_stability_index,
    smoothed_distributions,
)
from metrics.stats.findings import Evidence, Finding, Severity, Status, pct, pct_range
from metrics.stats.histogram import histogram_quantile
from metrics.stats.proportions import two_proportion_z_test, wilson_interval

# Outcomes that count towards a provider-failure spike; "fallback" is a decision that had to use a
# fallback step, the others are the engine's provider-error outcomes.
PROVIDER_FAILURE_OUTCOMES: frozenset[str] = frozenset({"fallback", "error", "timeout", "rate_limited"})

# Defaults. Each is explained where it is used and in docs/alerts.md.
ESCALATION_CONFIDENCE = 0.99
ESCALATION_MIN_SAMPLES = 50
PASS_RATE_ALPHA = 1e-4
PASS_RATE_MIN_DROP = 0.02
PASS_RATE_MIN_SAMPLES = 200
COST_RATIO = 1.25
COST_MIN_REQUESTS = 500
LATENCY_RATIO = 1.3
LATENCY_FLOOR_MS = 500.0
LATENCY_MIN_SAMPLES = 200
MIX_JSD_THRESHOLD = 0.05
MIX_PSI_MODERATE = 0.1
MIX_PSI_SIGNIFICANT = 0.25
MIX_MIN_SAMPLES = 500
ERROR_SPIKE_FACTOR = 3.0
ERROR_SPIKE_FLOOR = 0.05
ERROR_SPIKE_CONFIDENCE = 0.95
ERROR_SPIKE_MIN_SAMPLES = 50
ERROR_SPIKE_MIN_BASELINE = 200


def _insufficient(
    detector: str,
    subject: str,
    window: str,
    test: str,
    reason: str,
    numbers: Mapping[str, object],
    baseline_window: str | None = None,
) -> Finding:
    return Finding(
        detector=detector,
        status="insufficient_data",
        severity="info",
        summary=f"{subject} not judged over {window}: {reason}",
        evidence=Evidence(test=test, window=window, baseline=baseline_window, numbers=numbers),
    )


def _impossible(
    detector: str,
    subject: str,
    window: str,
    test: str,
    counts: str,
    numbers: Mapping[str, object],
    baseline_window: str | None = None,
) -> Finding:
    """No verdict on counts no sample can have (more successes than trials): the logs are
    incomplete, e.g. escalations into a tier whose attempt at the tier below never arrived, so the
    rate is unknown. Said as "insufficient data" rather than raised, so that one client's records
    cannot stop the evaluation of the others."""
    return _insufficient(detector, subject, window, test, f"inconsistent counts, {counts}", numbers, baseline_window)


def escalation_band(
    escalations: int,
    requests: int,
    *,
    band: tuple[float, float],
    min_samples: int = ESCALATION_MIN_SAMPLES,
    confidence: float = ESCALATION_CONFIDENCE,
    subject: str = "escalation",
    window: str = "the current window",
    severity: Severity = "ticket",
) -> Finding:
    """Alert when the escalation rate is credibly outside its expected band.

    Computes the Wilson interval of escalations/requests and fires only when the *whole* interval
    lies above ``band[1]`` ("above") or below ``band[0]`` ("below"). A point estimate outside the
    band is not enough: at n=40, 14 escalations (35%) has a 95% interval of 22–50%, which still
    overlaps a 20–30% band, so small windows do not alarm. Judged against a band (the route's
    expectation), not a baseline, because the band is what the policy author promised.

    Defaults: 99% confidence. The detector is re-evaluated every hour, and a route whose true
    rate sits exactly on a band edge is "in band": at 95% such a route fired in 2.4% of hourly
    evaluations and in 48% of clean weeks, at 99% in 0.8% and 19%, for about one more hour of
    detection delay (docs/alerts.md). Anywhere inside the band it does not fire at all in the
    measurements. ``min_samples=50`` because below that the interval is wider than any useful
    band and an hour of a quiet route should say "insufficient data", not "ok".
    """
    lo, hi = band
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"band must satisfy 0 <= lo <= hi <= 1, got {band!r}")
    test = f"Wilson score interval, {confidence:.0%}"
    numbers: dict[str, object] = {
        "escalations": escalations,
        "requests": requests,
        "band_low": lo,
        "band_high": hi,
        "confidence": confidence,
        "min_samples": min_samples,
    }
    if requests < min_samples:
        return _insufficient(
            "escalation_band", subject, window, test, f"n={requests} < {min_samples} requests", numbers
        )
    if escalations > requests:
        return _impossible(
            "escalation_band", subject, window, test, f"{escalations} escalations of {requests}", numbers
        )
    ci = wilson_interval(escalations, requests, confidence)
    direction = "above" if ci.low > hi else "below" if ci.high < lo else "within"
    numbers.update(rate=ci.estimate, ci_low=ci.low, ci_high=ci.high, direction=direction)
    stated = (
        f"{subject} {pct(ci.estimate)} ({confidence:.0%} CI {pct_range(ci.low, ci.high)}) is "
        f"{direction} the expected {pct_range(lo, hi)} over {window}, n={requests}"
    )
    fired = direction != "within"
    return Finding(
        detector="escalation_band",
        status="alert" if fired else "ok",
        severity=severity if fired else "info",
        summary=stated,
        evidence=Evidence(
            test=test,
            window=window,
            baseline=f"expected band {pct_range(lo, hi)}",
            statistic=ci.estimate,
            interval=(ci.low, ci.high),
            numbers=numbers,
        ),
    )


def pass_rate_drop(
    passes: int,
    requests: int,
    baseline_passes: int,
    baseline_requests: int,
    *,
    alpha: float = PASS_RATE_ALPHA,
    min_drop: float = PASS_RATE_MIN_DROP,
    min_samples: int = PASS_RATE_MIN_SAMPLES,
    min_baseline_samples: int = PASS_RATE_MIN_SAMPLES,
    subject: str = "pass rate",
    window: str = "the current window",
    baseline_window: str = "the baseline",
    severity: Severity = "ticket",
) -> Finding:
    """Alert when the pass rate dropped, significantly *and* materially, against a trailing baseline.

    One-sided pooled two-proportion z-test of H0: p_current >= p_baseline; fires when p < ``alpha``
    and the drop p_baseline − p_current >= ``min_drop`` (absolute, in rate units: 0.02 = 2 points).

    Why both: at 10k requests a day a 0.5-point drop is "significant" but not worth a ticket, so
    ``min_drop`` stops tiny real changes paging at huge n; at 200 requests a 3-point drop is well
    within noise, so ``alpha`` stops noise alarming at small n. ``alpha=1e-4`` rather than 0.05
    because the detector is re-evaluated every hour: a 5% family-wise rate over a week of 168
    hourly evaluations is 0.05/168 ≈ 3e-4 per evaluation (Bonferroni), and the normal tail is
    about 2× optimistic with ~25 failures per window (measured: 0.001 fired in 0.2% of clean
    evaluations at 20 req/h), hence 1e-4. ``min_samples=200`` each side: the
    normal approximation wants ≥ ~10 failures per side at a 95% pass rate.
    """
    test = "one-sided two-proportion z-test (pooled)"
    numbers: dict[str, object] = {
        "passes": passes,
        "requests": requests,
        "baseline_passes": baseline_passes,
        "baseline_requests": baseline_requests,
        "alpha": alpha,
        "min_drop": min_drop,
    }
    if requests < min_samples or baseline_requests < min_baseline_samples:
        return _insufficient(
            "pass_rate_drop",
            subject,
            window,
            test,
            f"n={requests} (need {min_samples}), baseline n={baseline_requests} (need {min_baseline_samples})",
            numbers,
            baseline_window,
        )
    if passes > requests or baseline_passes > baseline_requests:
        counts = f"{passes} passes of {requests}, baseline {baseline_passes} of {baseline_requests}"
        return _impossible("pass_rate_drop", subject, window, test, counts, numbers, baseline_window)
    t = two_proportion_z_test(passes, requests, baseline_passes, baseline_requests, "less")
    drop = t.p2 - t.p1
    numbers.update(rate=t.p1, baseline_rate=t.p2, drop=drop, z=t.z, p_value=t.p_value)
    fired = t.p_value < alpha and drop >= min_drop
    change = f"{100 * abs(drop):.1f} points {'below' if drop >= 0 else 'above'}"
    summary = (
        f"{subject} {pct(t.p1, 1)} over {window} is {change} the baseline {pct(t.p2, 1)} over "
        f"{baseline_window} (one-sided z = {t.z:.2f}, p = {t.p_value:.2g}; n={requests} vs "
        f"{baseline_requests})"
    )
    return Finding(
        detector="pass_rate_drop",
        status="alert" if fired else "ok",
        severity=severity if fired else "info",
        summary=summary,
        evidence=Evidence(
            test=test,
            window=window,
            baseline=baseline_window,
            statistic=t.z,
            p_value=t.p_value,
            numbers=numbers,
        ),
    )


def cost_per_request_regression(
    cost: float,
    requests: int,
    baseline_cost: float,
    baseline_requests: int,
    *,
    ratio: float = COST_RATIO,
    min_requests: int = COST_MIN_REQUESTS,
    min_baseline_requests: int = COST_MIN_REQUESTS,
    subject: str = "cost per request",
    window: str = "the current window",
    baseline_window: str = "the baseline",
    severity: Severity = "ticket",
) -> Finding:
    """Alert when mean cost per request rose beyond ``ratio`` × its baseline.

    r = (cost / requests) / (baseline_cost / baseline_requests); fires when r > ``ratio``.
    Rollups hold sums, not per-request variances, so this is a practical-significance rule with
    the sample size doing the statistics: the mean of n costs with coefficient of variation CV
    has relative standard error CV/√n, and a 25% rise is ≥ 4 standard errors when
    n >= (4·CV/0.25)² (4, not 3, because 168 hourly evaluations a week multiply the tail). LLM
    request costs are right-skewed (CV ≈ 1.3 for a lognormal σ = 1), which gives n ≈ 430: hence
    ``min_requests=500`` (at 250, a 20 req/h route alerted in 1 of 30 clean weeks). 1.25 because
    price changes and model swaps move cost in steps of tens of percent, while day-to-day mix
    noise stays within ~10%.
    A baseline with zero cost (free tier) gives r = inf when the current cost is positive.
    """
    test = f"ratio of mean cost per request > {ratio:g}"
    numbers: dict[str, object] = {
        "cost": cost,
        "requests": requests,
        "baseline_cost": baseline_cost,
        "baseline_requests": baseline_requests,
        "ratio_threshold": ratio,
    }
    if requests < min_requests or baseline_requests < min_baseline_requests:
        return _insufficient(
            "cost_per_request_regression",
            subject,
            window,
            test,
            f"n={requests} (need {min_requests}), baseline n={baseline_requests} (need {min_baseline_requests})",
            numbers,
            baseline_window,
        )
    current, base = cost / requests, baseline_cost / baseline_requests
    r = current / base if base > 0 else (math.inf if current > 0 else 1.0)
    numbers.update(cost_per_request=current, baseline_cost_per_request=base, ratio=r)
    fired = r > ratio
    summary = (
        f"{subject} ${current:.6g} over {window} is {r:.2f}× the baseline ${base:.6g} over "
        f"{baseline_window} (threshold {ratio:g}×; n={requests} vs {baseline_requests})"
    )
    return Finding(
        detector="cost_per_request_regression",
        status="alert" if fired else "ok",
        severity=severity if fired else "info",
        summary=summary,
        evidence=Evidence(test=test, window=window, baseline=baseline_window, statistic=r, numbers=numbers),
    )


def latency_p95_regression(
    bounds: Sequence[float],
    counts: Sequence[int],
    baseline_counts: Sequence[int],
    *,
    ratio: float = LATENCY_RATIO,
    floor_ms: float = LATENCY_FLOOR_MS,
    min_samples: int = LATENCY_MIN_SAMPLES,
    quantile: float = 0.95,
    subject: str = "latency p95",
    window: str = "the current window",
    baseline_window: str = "the baseline",
    severity: Severity = "ticket",
) -> Finding:
    """Alert when p95 latency (from histogram buckets) rose beyond ``ratio`` × its baseline.

    Both quantiles come from ``histogram_quantile`` (linear interpolation inside the bucket) on
    the same ``bounds``; fires when p95_current > ratio · p95_baseline and p95_current > floor_ms.
    1.3 because a provider slowdown users notice is tens of percent, while a p95 read from buckets
    moves by up to one bucket width (~25–33% with the usual 1–1.5–2–3–5 bucket ladder) only when it
    sits near a bound. The 500 ms floor keeps fast routes (cache hits, tiny models) from ticketing
    on changes no one feels. ``min_samples=200`` each side: 10 observations above the p95.
    """
    test = f"histogram p{round(quantile * 100)} ratio > {ratio:g} and > {floor_ms:g} ms"
    n, nb = sum(counts), sum(baseline_counts)
    numbers: dict[str, object] = {
        "requests": n,
        "baseline_requests": nb,
        "ratio_threshold": ratio,
        "floor_ms": floor_ms,
    }
    if n < min_samples or nb < min_samples:
        return _insufficient(
            "latency_p95_regression",
            subject,
            window,
            test,
            f"n={n}, baseline n={nb} (need {min_samples} each)",
            numbers,
            baseline_window,
        )
    cur = histogram_quantile(bounds, counts, quantile)
    base = histogram_quantile(bounds, baseline_counts, quantile)
    assert cur is not None
    assert base is not None
    r = cur / base if base > 0 else math.inf
    numbers.update(p95_ms=cur, baseline_p95_ms=base, ratio=r)
    fired = r > ratio and cur > floor_ms
    summary = (
        f"{subject} {cur:.0f} ms over {window} is {r:.2f}× the baseline {base:.0f} ms over "
        f"{baseline_window} (threshold {ratio:g}× and {floor_ms:g} ms; n={n} vs {nb})"
    )
    return Finding(
        detector="latency_p95_regression",
        status="alert" if fired else "ok",
        severity=severity if fired else "info",
        summary=summary,
        evidence=Evidence(test=test, window=window, baseline=baseline_window, statistic=r, numbers=numbers),
    )


def mix_shift(
    counts: Mapping[str, int],
    baseline_counts: Mapping[str, int],
    *,
    jsd_threshold: float = MIX_JSD_THRESHOLD,
    psi_moderate: float = MIX_PSI_MODERATE,
    psi_significant: float = MIX_PSI_SIGNIFICANT,
    min_samples: int = MIX_MIN_SAMPLES,
    min_baseline_samples: int = MIX_MIN_SAMPLES,
    pseudocount: float = DEFAULT_PSEUDOCOUNT,
    subject: str = "task-type mix",
    window: str = "the current window",
    baseline_window: str = "the baseline",
) -> Finding:
    """Alert when a categorical mix (task types, models) shifted against its baseline.

    Both windows are smoothed with ``pseudocount`` per category over the union of categories
    (so a category new in one window counts, finitely), then JSD (bits, [0, 1]) and PSI (nats)
    are computed. Severity "ticket" when PSI >= 0.25 or JSD >= ``jsd_threshold``; "info" when
    0.1 <= PSI < 0.25 (the conventional "moderate shift: look, don't act" band).

    PSI's 0.1 / 0.25 come from credit-scoring practice; JSD is offered because it is bounded and
    symmetric. The JSD default 0.05 sits just above PSI 0.25's equivalent (PSI ≈ 5.5·JSD, so 0.25
    ≈ JSD 0.045) and well above the largest JSD seen on clean streams at the minimum sample size
    (docs/alerts.md). ``min_samples=500`` per window: sampling noise alone gives
    E[PSI] ≈ (K−1)(1/n₁ + 1/n₂), 0.036 for 10 categories at 500 + 500, and its upper tail must stay
    under 0.1 for the info level to mean anything.
    """
    test = "Jensen–Shannon divergence (bits) and PSI, smoothed"
    n, nb = sum(counts.values()), sum(baseline_counts.values())
    numbers: dict[str, object] = {
        "requests": n,
        "baseline_requests": nb,
        "jsd_threshold": jsd_threshold,
        "psi_moderate": psi_moderate,
        "psi_significant": psi_significant,
        "pseudocount": pseudocount,
    }
    if n < min_samples or nb < min_baseline_samples:
        return _insufficient(
            "mix_shift",
            subject,
            window,
            test,
            f"n={n} (need {min_samples}), baseline n={nb} (need {min_baseline_samples})",
            numbers,
            baseline_window,
        )
    p, q = smoothed_distributions(counts, baseline_counts, pseudocount)
    jsd = jensen_shannon_divergence(p, q)
    psi = population_stability_index(p, q)
    movers = sorted(p, key=lambda k: abs(p[k] - q[k]), reverse=True)[:3]
    numbers.update(
        jsd=jsd,
        psi=psi,
        current_share=dict(p),
        baseline_share=dict(q),
        top_movers=[{"category": k, "share": p[k], "baseline_share": q[k]} for k in movers],
    )
    status: Status = "alert"
    severity: Severity = "info"
    if psi >= psi_significant or jsd >= jsd_threshold:
        severity, level = "ticket", "significant"
    elif psi >= psi_moderate:
        level = "moderate"
    else:
        status, level = "ok", "stable"
    moves = ", ".join(f"{k} {pct(q[k])}→{pct(p[k])}" for k in movers)
    summary = (
        f"{subject} over {window} vs {baseline_window}: {level} shift (JSD {jsd:.3f} bits, "
        f"PSI {psi:.3f}); largest moves {moves}; n={n} vs {nb}"
    )
    return Finding(
        detector="mix_shift",
        status=status,
        severity=severity,
        summary=summary,
        evidence=Evidence(test=test, window=window, baseline=baseline_window, statistic=jsd, numbers=numbers),
    )


def error_spike(
    failures: int,
    requests: int,
    baseline_failures: int,
    baseline_requests: int,
    *,
    factor: float = ERROR_SPIKE_FACTOR,
    floor: float = ERROR_SPIKE_FLOOR,
    confidence: float = ERROR_SPIKE_CONFIDENCE,
    min_samples: int = ERROR_SPIKE_MIN_SAMPLES,
    min_baseline_samples: int = ERROR_SPIKE_MIN_BASELINE,
    subject: str = "provider failures",
    window: str = "the current window",
    baseline_window: str = "the baseline",
    severity: Severity = "page",
) -> Finding:
    """Page when the failure rate (fallback/error/timeout/rate_limited) spikes: a provider outage.

    limit = max(``factor`` × baseline rate, ``floor``); fires when the Wilson lower bound of
    failures/requests in the short window exceeds the limit, i.e. the rate is credibly above it.
    With a baseline of fewer than ``min_baseline_samples`` requests (a new route) the limit is
    the floor alone, so an outage on a new route still pages.

    factor 3 because normal failure rates wander within ±50% hour to hour, an outage multiplies
    them by 10 or more; the 5% floor because a 0.5% baseline would otherwise page at 1.5%, which
    fallbacks absorb. Using the lower bound (not the point estimate) is what keeps a quiet hour
    with 4 failures in 30 requests from paging; 95% suffices because the floor already sits far
    above normal rates (measured false alarms in docs/alerts.md).
    """
    test = f"Wilson lower bound ({confidence:.0%}) above max({factor:g}× baseline, {pct(floor)})"
    numbers: dict[str, object] = {
        "failures": failures,
        "requests": requests,
        "baseline_failures": baseline_failures,
        "baseline_requests": baseline_requests,
        "factor": factor,
        "floor": floor,
        "confidence": confidence,
    }
    if requests < min_samples:
        return _insufficient(
            "error_spike",
            subject,
            window,
            test,
            f"n={requests} < {min_samples} requests",
            numbers,
            baseline_window,
        )
    if failures > requests or baseline_failures > baseline_requests:
        counts = f"{failures} failures of {requests}, baseline {baseline_failures} of {baseline_requests}"
        return _impossible("error_spike", subject, window, test, counts, numbers, baseline_window)
    baseline_rate = baseline_failures / baseline_requests if baseline_requests >= min_baseline_samples else None
    limit = max(factor * baseline_rate, floor) if baseline_rate is not None else floor
    ci = wilson_interval(failures, requests, confidence)
    numbers.update(rate=ci.estimate, ci_low=ci.low, ci_high=ci.high, baseline_rate=baseline_rate, limit=limit)
    fired = ci.low > limit
    base_txt = (
        f"baseline {pct(baseline_rate, 1)} over {baseline_window}"
        if baseline_rate is not None
        else f"no baseline (n={baseline_requests} < {min_baseline_samples})"
    )
    summary = (
        f"{subject} {pct(ci.estimate, 1)} ({confidence:.0%} CI {pct_range(ci.low, ci.high, 1)}) over "
        f"{window} vs limit {pct(limit, 1)}; {base_txt}; n={requests}"
    )
    return Finding(
        detector="error_spike",
        status="alert" if fired else "ok",
        severity=severity if fired else "info",
        summary=summary,
        evidence=Evidence(
            test=test,
            window=window,
            baseline=baseline_window,
            statistic=ci.estimate,
            interval=(ci.low, ci.high),
            numbers=numbers,
        ),
    )
