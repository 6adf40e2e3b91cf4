"""The spend thresholds of every budget (the budget page's lines, the threshold alerts, the report)."""

from __future__ import annotations

from django.conf import settings


def spend_thresholds() -> tuple[float, ...]:
    """The configured fractions of a budget worth a line and an alert (`ALERTS_BUDGET_THRESHOLDS`),
    ascending, each once."""
    return tuple(sorted({float(t) for t in settings.ALERTS_BUDGET_THRESHOLDS}))
