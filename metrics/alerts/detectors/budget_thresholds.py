"""budget_thresholds: a budget's spend today (UTC) and this month against the thresholds of
`metrics.budget.thresholds.spend_thresholds()` (the same the budget page shows)."""

from __future__ import annotations

from metrics.alerts.detectors.base import BudgetDetector, BudgetView, Checks
from metrics.stats import budget_thresholds


class BudgetThresholds(BudgetDetector):
    name = "budget_thresholds"

    def checks(self, view: BudgetView) -> Checks:
        w, checks = view.windows, []
        if view.daily:
            today = view.since(w.day_start)
            checks.append(
                (
                    "daily",
                    budget_thresholds(
                        today,
                        view.daily,
                        thresholds=view.thresholds,
                        subject=f"{view.who} (daily)",
                        window="today (UTC)",
                    ),
                )
            )
        if view.monthly:
            month = view.since(w.month_start)
            checks.append(
                (
                    "monthly",
                    budget_thresholds(
                        month,
                        view.monthly,
                        thresholds=view.thresholds,
                        subject=f"{view.who} (monthly)",
                        window="this month",
                    ),
                )
            )
        return checks


DETECTOR = BudgetThresholds()
