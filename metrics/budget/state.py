"""Budget state fed back to clients: each live policy's spend as a fraction of its budgets.

For every live policy whose document sets a budget (policy-wide, on a route or on dimension
values), spend so far is summed from the hourly rollups, a dimension value's from the daily
dimension cells (daily: the current UTC day, monthly: the current UTC month; cost of unpriced
records is unknown and not counted) and divided by the budget amounts. The result is
published with `routing.live.budget_state_write`, whose key and format are part of the client
protocol (docs/protocol.md, `Signalbox-Budget`); routing never imports this module.

It runs after each rollup update, for the policies whose deltas that update folded, and from
beat every BUDGET_STATE_SECONDS for every live policy (a new day or month, a budget edited).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q, Sum

from metrics.budget.dimensions import dimension_budget_spend
from metrics.rollups.selectors import rollup_cells
from metrics.rules.budgets import DimensionBudget, dimension_budgets
from metrics.rules.periods import day_of, midnight, month_next, month_start
from routing import live

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Spend:
    """USD spent so far in the current UTC day and month."""

    daily: Decimal
    monthly: Decimal


@dataclass(frozen=True, slots=True)
class Periods:
    """The current UTC day and month as [start, end) bounds on the rollups' hour."""

    day_start: datetime
    day_end: datetime
    month_start: datetime
    month_end: datetime

    @classmethod
    def at(cls, now: datetime) -> Periods:
        day = day_of(now)
        day_start = midnight(day)
        return cls(day_start, day_start + timedelta(days=1), midnight(month_start(day)), midnight(month_next(day)))


def budget_spend(*, policy_id: int, periods: Periods, using: str = DEFAULT_DB_ALIAS) -> tuple[Spend, dict[str, Spend]]:
    """(policy-wide spend, spend per route) of one policy in `periods`: one aggregate query."""
    rows = (
        rollup_cells(policy_id=policy_id, start=periods.month_start, end=periods.month_end, using=using)
        .values("route")
        .annotate(
            monthly=Sum("cost_usd"),
            daily=Sum("cost_usd", filter=Q(hour__gte=periods.day_start, hour__lt=periods.day_end)),
        )
        .order_by()
    )
    zero = Decimal(0)
    routes: dict[str, Spend] = {}
    for row in rows:
        routes[row["route"]] = Spend(row["daily"] or zero, row["monthly"] or zero)
    total = Spend(sum((s.daily for s in routes.values()), zero), sum((s.monthly for s in routes.values()), zero))
    return total, routes


def _amount(budget: Mapping[str, Any], field: str) -> Decimal | None:
    value = budget.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None


def _fractions(budget: Any, spend: Spend) -> dict[str, float | None] | None:
    """{"daily": f, "monthly": f} for a document's budget object; None when it sets no amount."""
    if not isinstance(budget, Mapping):
        return None
    daily, monthly = _amount(budget, "daily_usd"), _amount(budget, "monthly_usd")
    if daily is None and monthly is None:
        return None
    return {
        "daily": float(spend.daily / daily) if daily is not None else None,
        "monthly": float(spend.monthly / monthly) if monthly is not None else None,
    }


def budget_dimension_spend(
    *, policy_id: int, budgets: Iterable[DimensionBudget], periods: Periods, using: str = DEFAULT_DB_ALIAS
) -> dict[tuple[str, str], Spend]:
    """Spend of each budgeted dimension value in `periods`, from the daily dimension cells (one
    query per dimension with budgets); a value without spend is absent."""
    zero = Decimal(0)
    cells = dimension_budget_spend(
        policy_id=policy_id, budgets=budgets, start=periods.month_start, end=periods.month_end, using=using
    )
    return {
        pair: Spend(
            sum((v for h, v in per_day.items() if periods.day_start <= h < periods.day_end), zero),
            sum(per_day.values(), zero),
        )
        for pair, per_day in cells.items()
    }


def budget_state_of(
    document: Mapping[str, Any],
    total: Spend,
    routes: Mapping[str, Spend],
    dimensions: Mapping[tuple[str, str], Spend] | None = None,
) -> dict[str, Any] | None:
    """The protocol's budget state for a document and its spend; None when it sets no budget.

    Only the policy budget, routes with a budget and budgeted dimension values appear; one with no
    spend yet is at 0. `dimensions` is present only when the document sets dimension budgets.
    """
    zero = Spend(Decimal(0), Decimal(0))
    policy = _fractions(document.get("budget"), total)
    out_routes: dict[str, Any] = {}
    doc_routes = document.get("routes")
    for name, route in doc_routes.items() if isinstance(doc_routes, Mapping) else ():
        if isinstance(route, Mapping):
            fractions = _fractions(route.get("budget"), routes.get(name, zero))
            if fractions is not None:
                out_routes[name] = fractions
    out_dimensions: dict[str, dict[str, Any]] = {}
    for b in dimension_budgets(document):
        fractions = _fractions(b.budget, (dimensions or {}).get((b.key, b.value), zero))
        if fractions is not None:
            out_dimensions.setdefault(b.key, {})[b.value] = fractions
    if policy is None and not out_routes and not out_dimensions:
        return None
    state: dict[str, Any] = {"policy": policy, "routes": out_routes}
    if out_dimensions:
        state["dimensions"] = out_dimensions
    return state


def _has_budget(document: Any) -> bool:
    if not isinstance(document, Mapping):
        return False
    routes = document.get("routes")
    return (
        document.get("budget") is not None
        or bool(document.get("dimension_budgets"))
        or any(
            isinstance(r, Mapping) and r.get("budget") is not None
            for r in (routes.values() if isinstance(routes, Mapping) else ())
        )
    )


def budget_state_refresh(
    *, policy_ids: Iterable[int] | None = None, now: datetime | None = None, using: str = DEFAULT_DB_ALIAS
) -> int:
    """Recompute and publish the budget state of live policies; return how many states were written.

    `policy_ids` None means every live policy. A policy whose live document sets no budget has
    its entry removed, so a removed budget stops downgrading clients at once.
    """
    from routing.models import Policy

    now = now or datetime.now(UTC)
    periods = Periods.at(now)
    policies = Policy.objects.using(using).filter(live_version__isnull=False)
    if policy_ids is not None:
        ids = set(policy_ids)
        if not ids:
            return 0
        policies = policies.filter(pk__in=ids)
    written = 0
    for policy_id, slug, document in policies.values_list("pk", "slug", "live_version__document").order_by("pk"):
        if not _has_budget(document):
            live.budget_state_write(slug=slug, state=None, as_of=now)
            continue
        total, routes = budget_spend(policy_id=policy_id, periods=periods, using=using)
        budgets = dimension_budgets(document)
        per_value = (
            budget_dimension_spend(policy_id=policy_id, budgets=budgets, periods=periods, using=using)
            if budgets
            else None
        )
        state = budget_state_of(document, total, routes, per_value)
        live.budget_state_write(slug=slug, state=state, as_of=now)
        written += state is not None
    return written
