"""cost_per_request_regression: the route's mean cost per request against its own baseline and
against the maximum its expectations promise (`max_cost_per_request_usd`), over the drift window."""

from __future__ import annotations

from metrics.alerts import checks as expectation
from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.stats import drift


class CostPerRequestRegression(RouteDetector):
    name = "cost_per_request_regression"

    def checks(self, view: RouteView) -> Checks:
        t, subject = view.totals, f"{view.who}: cost per request"
        checks: Checks = [
            (
                "against baseline",
                drift.cost_per_request_regression(
                    t.cost,
                    t.requests,
                    t.base_cost,
                    t.base_requests,
                    subject=subject,
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                ),
            )
        ]
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
