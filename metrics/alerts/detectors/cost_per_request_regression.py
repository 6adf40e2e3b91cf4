"""cost_per_request_regression: the route's mean cost per request against its own baseline and
against the maximum its expectations promise (`max_cost_per_request_usd`), over the drift window.

On a cascade route the cost of a request is dominated by the few that reach the dear tiers, so its
mean wanders far more than the CV the threshold assumes; a regression against the baseline counts
only when some tier's own cost per attempt rose too (more escalation alone is `escalation_band`'s).
The tier's test is a confirmation of a route that already passed at ≥ 500 requests, and a tier's
cost per attempt is one model's, not a mixture of cheap and dear tiers: it needs 200 attempts, not
500 (at 500 a quiet route's tier 1, ~480 attempts a day, could never confirm a real jump)."""

from __future__ import annotations

from dataclasses import replace

from metrics.alerts import checks as expectation
from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.stats import drift

CONFIRM_MIN_ATTEMPTS = 200  # a tier's attempts in the window for the per-tier confirmation


class CostPerRequestRegression(RouteDetector):
    name = "cost_per_request_regression"

    def checks(self, view: RouteView) -> Checks:
        t, subject = view.totals, f"{view.who}: cost per request"
        route = drift.cost_per_request_regression(
            t.cost,
            t.requests,
            t.base_cost,
            t.base_requests,
            subject=subject,
            window=DRIFT_WINDOW,
            baseline_window=DRIFT_BASELINE,
        )
        tiers = sorted(k for k, c in t.tier_counts.items() if c[2] or c[6])
        if route.fired and len(tiers) > 1:
            per_tier = [
                drift.cost_per_request_regression(
                    t.tier_cost[k][0],
                    t.tier_counts[k][2],
                    t.tier_cost[k][1],
                    t.tier_counts[k][6],
                    min_requests=CONFIRM_MIN_ATTEMPTS,
                    subject=f"{view.who}: tier {k} cost per attempt",
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                )
                for k in tiers
            ]
            rose = [f for f in per_tier if f.fired]
            if rose:
                route = replace(route, summary=f"{route.summary}; {rose[0].summary}")
            else:
                route = replace(
                    route,
                    status="ok",
                    severity="info",
                    summary=f"{route.summary}; no tier's cost per attempt rose (the tiers reached changed)",
                )
        checks: Checks = [("against baseline", route)]
        maximum = view.expect.get("max_cost_per_request_usd")
        if maximum is not None:
            checks.append(
                (
                    "against expected maximum",
                    expectation.cost_per_request_over_maximum(
                        t.cost, t.requests, maximum=float(maximum), subject=subject, window=DRIFT_WINDOW
                    ),
                )
            )
        return checks


DETECTOR = CostPerRequestRegression()
