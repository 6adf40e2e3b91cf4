"""Budgets per dimension value as a policy document declares them (`dimension_budgets`): each
value's budget and the name it goes by where a route name would stand. The budget state, the
budget alerts, the budget page and the dimension fold (which always keeps a budgeted value under
its own name) read them here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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


def budgeted_values(document: Any) -> dict[str, frozenset[str]]:
    """Dimension key -> the values the document sets a budget for."""
    out: dict[str, set[str]] = {}
    for b in dimension_budgets(document):
        out.setdefault(b.key, set()).add(b.value)
    return {key: frozenset(values) for key, values in out.items()}
