"""latency_p95_regression: the route's p95 latency (from the rollups' histogram buckets) against
its own baseline and against the budget its expectations set (`latency_p95_ms`), over the drift
window."""

from __future__ import annotations

from dataclasses import replace

from metrics.alerts import checks as expectation
from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.rules.latency import QUANTILE_BOUNDS
from metrics.stats import drift, shares


class LatencyP95Regression(RouteDetector):
    name = "latency_p95_regression"

    def checks(self, view: RouteView) -> Checks:
        t, subject = view.totals, f"{view.who}: latency p95"
        ratio = drift.latency_p95_regression(
            QUANTILE_BOUNDS,
            t.buckets,
            t.base_buckets,
            subject=subject,
            window=DRIFT_WINDOW,
            baseline_window=DRIFT_BASELINE,
        )
        if ratio.fired:
            # A p95 interpolated in a wide bucket jumps on noise: the tail above the baseline's
            # p95 bucket must have grown too.
            tail = shares.latency_tail_rise(
                QUANTILE_BOUNDS,
                t.buckets,
                t.base_buckets,
                detector=self.name,
                subject=subject,
                window=DRIFT_WINDOW,
                baseline_window=DRIFT_BASELINE,
            )
            if not tail.fired:
                numbers = {**ratio.evidence.numbers, "tail": dict(tail.evidence.numbers)}
                ratio = replace(
                    ratio,
                    status="ok",
                    severity="info",
                    summary=f"{ratio.summary}; but {tail.summary}, not a regression",
                    evidence=replace(ratio.evidence, numbers=numbers),
                )
        checks: Checks = [("against baseline", ratio)]
        budget = view.expect.get("latency_p95_ms")
        if budget is not None:
            checks.append(
                (
                    "against p95 budget",
                    expectation.latency_p95_over_budget(
                        QUANTILE_BOUNDS, t.buckets, budget_ms=float(budget), subject=subject, window=DRIFT_WINDOW
                    ),
                )
            )
        return checks


DETECTOR = LatencyP95Regression()
