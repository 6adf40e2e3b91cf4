"""Budgets per dimension value: what each budgeted value spent, read from the dimension rollups
(the budgets themselves: `metrics.rules.budgets`). The budget state (the `Signalbox-Budget`
header), the budget alerts and the budget page all read it here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS

from metrics.rollups.selectors import dimension_value_spend
from metrics.rules.budgets import DimensionBudget


def dimension_budget_spend(
    *,
    policy_id: int,
    budgets: Iterable[DimensionBudget],
    start: datetime,
    end: datetime,
    hourly_from: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> dict[tuple[str, str], dict[datetime, Decimal]]:
    """Spend per cell start of each budgeted value over [start, end) (`dimension_value_spend`):
    one query per dimension with budgets; a value without spend is absent."""
    values: dict[str, set[str]] = {}
    for b in budgets:
        values.setdefault(b.key, set()).add(b.value)
    if not values:
        return {}
    return dimension_value_spend(
        policy_id=policy_id, values=values, start=start, end=end, hourly_from=hourly_from, using=using
    )
