"""budget_forecast: a monthly budget against the month-end spend forecast from the recent daily
rate with its interval (`metrics.stats.budgets.forecast_recent`); it tickets when the interval's
upper bound crosses the budget (no opinion in the month's first day)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, timedelta

from metrics.alerts.detectors.base import BudgetDetector, BudgetView, Checks
from metrics.stats import Evidence, Finding, budget_forecast_overrun, forecast_recent


class BudgetForecast(BudgetDetector):
    name = "budget_forecast"

    def checks(self, view: BudgetView) -> Checks:
        if not view.monthly:
            return []
        w, subject = view.windows, f"{view.who} (monthly)"
        elapsed = (w.at.astimezone(UTC) - w.month_start).total_seconds() / 86400
        if elapsed < 1:  # a few hours of a new month say nothing about its end: no opinion (an open alert stays)
            return [
                (
                    "monthly",
                    Finding(
                        "budget_forecast",
                        "insufficient_data",
                        "info",
                        f"{subject}: no forecast in the first day of the month",
                        Evidence(test="month-end forecast", window="this month", numbers={"elapsed_days": elapsed}),
                    ),
                )
            ]
        per_day: dict[date, float] = defaultdict(float)
        for h, v in view.spend.items():
            if h >= w.month_start:
                per_day[h.date()] += v
        first = w.month_start.date()
        daily_spend = [per_day.get(first + timedelta(days=i), 0.0) for i in range(math.ceil(elapsed - 1e-9))]
        forecast = forecast_recent(daily_spend, float(w.month_days), elapsed)
        return [("monthly", budget_forecast_overrun(forecast, view.monthly, subject=subject, window="this month"))]


DETECTOR = BudgetForecast()
