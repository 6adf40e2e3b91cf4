"""Budgets per dimension value: what a document's `dimension_budgets` declare and what each value
spent, read from the dimension rollups. The budget state (the `Signalbox-Budget` header), the
budget alerts and the budget page all read them here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from metrics.rollups.selectors import dimension_value_spend


@dataclass(frozen=True, slots=True)
class DimensionBudget:
    """One value's budget: the spend of the records whose attribute `key` has the text `value`."""

    key: str
    value: str
    budget: Mapping[str, Any]  # {daily_usd?, monthly_usd?, downgrade_at?}

    @property
    def scope(self) -> str:
        """The budget's name where a route name would stand (an alert's route): `team=search`.
        Route names cannot hold `=`, so the two never collide."""
        return f"{self.key}={self.value}"


def dimension_budgets(document: Any) -> list[DimensionBudget]:
    """The dimension budgets of a (validated) document, in its order; [] when it sets none."""
    entries = document.get("dimension_budgets") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        return []
    out = []
    for entry in entries:
        if (
            isinstance(entry, Mapping)
            and isinstance(entry.get("dimension"), str)
            and isinstance(entry.get("value"), str)
        ):
            budget = {k: entry[k] for k in ("daily_usd", "monthly_usd", "downgrade_at") if k in entry}
            out.append(DimensionBudget(entry["dimension"], entry["value"], budget))
    return out


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
