"""pass_rate_drop: the route's pass rate against its own baseline and against the minimum its
expectations promise (`min_pass_rate`), over the drift window; on a cascade route also its last
tier's pass rate (ok / attempts the provider answered) against its baseline: there a failure is
final, while a drop at a lower tier escalates and shows in `escalation_band`'s baseline check."""

from __future__ import annotations

from metrics.alerts import checks as expectation
from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.stats import drift, shares


class PassRateDrop(RouteDetector):
    name = "pass_rate_drop"

    def checks(self, view: RouteView) -> Checks:
        t, subject = view.totals, f"{view.who}: pass rate"
        # "ok" counts every attempt, requests only first attempts: a pass rate is at most 1.
        passes = min(t.ok, t.requests)
        checks: Checks = [
            (
                "against baseline",
                drift.pass_rate_drop(
                    passes,
                    t.requests,
                    min(t.base_ok, t.base_requests),
                    t.base_requests,
                    subject=subject,
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                ),
            )
        ]
        tiers = sorted(k for k, c in t.tier_counts.items() if c[2] or c[6])
        if len(tiers) > 1:
            c = t.tier_counts[tiers[-1]]
            checks.append(
                (
                    f"tier {tiers[-1]} pass rate",
                    shares.proportion_change(
                        c[3],
                        c[2],
                        c[7],
                        c[6],
                        detector=self.name,
                        alternative="less",
                        subject=f"{view.who}: tier {tiers[-1]} pass rate",
                        window=DRIFT_WINDOW,
                        baseline_window=DRIFT_BASELINE,
                    ),
                )
            )
        minimum = view.expect.get("min_pass_rate")
        if minimum is not None:
            checks.append(
                (
                    "against expected minimum",
                    expectation.pass_rate_below_minimum(
                        passes, t.requests, minimum=float(minimum), subject=subject, window=DRIFT_WINDOW
                    ),
                )
            )
        return checks


DETECTOR = PassRateDrop()
