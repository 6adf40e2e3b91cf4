"""Reading aggregates: a SUM over no rows is NULL, which the metrics count as zero."""

from __future__ import annotations

from typing import Any


def num(value: Any) -> float:
    """A summed amount (Decimal, float, int or NULL) as a float; NULL is 0."""
    return float(value) if value is not None else 0.0


def count(value: Any) -> int:
    """A summed count as an int; NULL is 0."""
    return int(value) if value is not None else 0


def ratio(part: float, whole: float) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return part / whole if whole else None


def delta(current: float | None, previous: float | None) -> dict[str, float | None]:
    """{current, previous, change (absolute; percentage points for rates), change_pct (relative)}:
    how every surface compares a number with its previous period."""
    change = None if current is None or previous is None else current - previous
    return {
        "current": current,
        "previous": previous,
        "change": change,
        "change_pct": ratio(change, previous) if change is not None and previous else None,
    }
