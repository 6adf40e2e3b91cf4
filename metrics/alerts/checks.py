"""Checks of a route against the absolute limits in its `expectations` (no Django, like metrics.stats).

The drift detectors in `metrics.stats.drift` compare a window with its own past; these compare it
with what the policy author promised: a minimum pass rate, a maximum cost per request, a p95
latency budget. Each returns a `Finding` whose detector is the drift detector it belongs to, so
one alert per detector and route carries either reason. Defaults and reasons: docs/alerts.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from metrics.stats.findings import Evidence, Finding, pct, pct_range
from metrics.stats.histogram import histogram_quantile
from metrics.stats.proportions import wilson_interval

# A pass rate is "below the minimum" when the whole 99% Wilson interval is below it (the same
# rule and confidence as the escalation band, for the same reason: hourly re-evaluation).
MIN_PASS_CONFIDENCE = 0.99
MIN_PASS_SAMPLES = 50
# Rollups hold no per-request variance, so the mean's noise is bounded with the coefficient of
# variation of skewed LLM costs (CV ≈ 1.3, docs/alerts.md): the mean must exceed the maximum by
# 4 standard errors, 4·CV/√n (23% at n = 500, 7% at n = 5000).
MAX_COST_CV = 1.3
MAX_COST_SIGMAS = 4.0
MAX_COST_MIN_REQUESTS = 500
P95_BUDGET_MIN_SAMPLES = 200


def _insufficient(
    detector: str, subject: str, window: str, test: str, reason: str, numbers: dict[str, object]
) -> Finding:
    return Finding(
        detector,
        "insufficient_data",
        "info",
        f"{subject} not judged over {window}: {reason}",
        Evidence(test=test, window=window, numbers=numbers),
    )


def pass_rate_below_minimum(
    passes: int,
    requests: int,
    *,
    minimum: float,
    subject: str = "pass rate",
    window: str = "the current window",
    confidence: float = MIN_PASS_CONFIDENCE,
    min_samples: int = MIN_PASS_SAMPLES,
) -> Finding:
    """Ticket when the pass rate is credibly below the route's `min_pass_rate` (whole interval below)."""
    test = f"Wilson score interval, {confidence:.0%}, below the expected minimum"
    numbers: dict[str, object] = {
        "passes": passes,
        "requests": requests,
        "min_pass_rate": minimum,
        "confidence": confidence,
        "min_samples": min_samples,
    }
    if requests < min_samples:
        return _insufficient("pass_rate_drop", subject, window, test, f"n={requests} < {min_samples} requests", numbers)
    ci = wilson_interval(min(passes, requests), requests, confidence)
    numbers.update(rate=ci.estimate, ci_low=ci.low, ci_high=ci.high)
    fired = ci.high < minimum
    summary = (
        f"{subject} {pct(ci.estimate, 1)} ({confidence:.0%} CI {pct_range(ci.low, ci.high, 1)}) is "
        f"{'below' if fired else 'not credibly below'} the expected minimum {pct(minimum, 1)} over "
        f"{window}, n={requests}"
    )
    return Finding(
        "pass_rate_drop",
        "alert" if fired else "ok",
        "ticket" if fired else "info",
        summary,
        Evidence(
            test=test,
            window=window,
            baseline=f"expected minimum {pct(minimum, 1)}",
            statistic=ci.estimate,
            interval=(ci.low, ci.high),
            numbers=numbers,
        ),
    )


def cost_per_request_over_maximum(
    cost: float,
    requests: int,
    *,
    maximum: float,
    subject: str = "cost per request",
    window: str = "the current window",
    cv: float = MAX_COST_CV,
    sigmas: float = MAX_COST_SIGMAS,
    min_requests: int = MAX_COST_MIN_REQUESTS,
) -> Finding:
    """Ticket when the mean cost per request is above the route's `max_cost_per_request_usd` by more
    than `sigmas` standard errors of a mean with coefficient of variation `cv`."""
    test = f"mean cost per request above the maximum by {sigmas:g} standard errors (CV {cv:g})"
    numbers: dict[str, object] = {
        "cost": cost,
        "requests": requests,
        "max_cost_per_request": maximum,
        "cv": cv,
        "sigmas": sigmas,
    }
    if requests < min_requests:
        return _insufficient(
            "cost_per_request_regression", subject, window, test, f"n={requests} < {min_requests} requests", numbers
        )
    mean = cost / requests
    limit = maximum * (1 + sigmas * cv / math.sqrt(requests))
    numbers.update(cost_per_request=mean, limit=limit)
    fired = mean > limit
    summary = (
        f"{subject} ${mean:.6g} over {window} is {'above' if fired else 'within'} the expected maximum "
        f"${maximum:.6g} (limit with noise margin ${limit:.6g}; n={requests})"
    )
    return Finding(
        "cost_per_request_regression",
        "alert" if fired else "ok",
        "ticket" if fired else "info",
        summary,
        Evidence(
            test=test, window=window, baseline=f"expected maximum ${maximum:.6g}", statistic=mean, numbers=numbers
        ),
    )


def latency_p95_over_budget(
    bounds: Sequence[float],
    counts: Sequence[int],
    *,
    budget_ms: float,
    subject: str = "latency p95",
    window: str = "the current window",
    min_samples: int = P95_BUDGET_MIN_SAMPLES,
) -> Finding:
    """Ticket when the p95 latency (from the histogram) is above the route's `latency_p95_ms`."""
    test = "histogram p95 above the route's p95 budget"
    n = sum(counts)
    numbers: dict[str, object] = {"requests": n, "p95_budget_ms": budget_ms, "min_samples": min_samples}
    if n < min_samples:
        return _insufficient("latency_p95_regression", subject, window, test, f"n={n} < {min_samples}", numbers)
    p95 = histogram_quantile(bounds, counts, 0.95)
    assert p95 is not None  # a non-empty histogram
    numbers["p95_ms"] = p95
    fired = p95 > budget_ms
    summary = (
        f"{subject} {p95:.0f} ms over {window} is {'above' if fired else 'within'} the budget {budget_ms:g} ms (n={n})"
    )
    return Finding(
        "latency_p95_regression",
        "alert" if fired else "ok",
        "ticket" if fired else "info",
        summary,
        Evidence(test=test, window=window, baseline=f"p95 budget {budget_ms:g} ms", statistic=p95, numbers=numbers),
    )
