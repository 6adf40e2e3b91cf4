"""burn_rate: how fast a budget is being spent over the trailing 1 h and 6 h, against the
multi-window burn-rate rules of `metrics.stats.budgets` for its period (a day, or this month)."""

from __future__ import annotations

from dataclasses import replace

from metrics.alerts.detectors.base import BudgetDetector, BudgetView, Checks
from metrics.stats import BurnRateRule, burn_rate_alert, burn_rate_rules_for_period


def hourly_burn_rules(period_hours: float) -> tuple[BurnRateRule, ...]:
    """The burn-rate rules with their short windows (5 and 30 min) widened to 60 min, the shortest
    window hourly rollups measure."""
    return tuple(replace(rule, short_minutes=60) for rule in burn_rate_rules_for_period(period_hours))


class BurnRate(BudgetDetector):
    name = "burn_rate"

    def checks(self, view: BudgetView) -> Checks:
        w, checks = view.windows, []
        windows = {60: w.trailing(view.spend, 1), 360: w.trailing(view.spend, 6)}
        if view.daily:
            checks.append(
                (
                    "daily",
                    burn_rate_alert(
                        windows,
                        budget=view.daily,
                        period_hours=24,
                        rules=hourly_burn_rules(24),
                        subject=f"{view.who} (daily)",
                    ),
                )
            )
        if view.monthly:
            period_hours = w.month_days * 24
            checks.append(
                (
                    "monthly",
                    burn_rate_alert(
                        windows,
                        budget=view.monthly,
                        period_hours=period_hours,
                        rules=hourly_burn_rules(period_hours),
                        subject=f"{view.who} (monthly)",
                    ),
                )
            )
        return checks


DETECTOR = BurnRate()
