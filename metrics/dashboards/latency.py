"""The Latency page: p50/p95/p99 per route and model from the rollups' histogram buckets
(`metrics.rules.latency`) against the route's p95 budget, and the daily p95 per route."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncDay

from metrics.dashboards.definitions import (
    bucket_counts,
    bucket_sums,
    day_key,
    range_cells,
    range_days,
    route_expectations,
    route_settings,
)
from metrics.dashboards.filters import DashboardFilters
from metrics.models import LATENCY_BOUNDS_MS
from metrics.rules.latency import latency_quantiles
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.rules.numbers import ratio


def dashboard_latency(f: DashboardFilters) -> dict[str, Any]:
    """p50/p95/p99 per route and model from the histogram buckets, against the route's p95
    budget, and the daily p95 per route (2 queries)."""
    rows = []
    for r in (
        range_cells(f)
        .values("route", "model")
        .order_by("route", "model")
        .annotate(attempts=Sum("count"), latency_sum=Sum("latency_sum_ms"), **bucket_sums())
    ):
        buckets = bucket_counts(r)
        q = latency_quantiles(buckets)
        budget = route_expectations(f, r["route"]).get("latency_p95_ms")
        rows.append(
            {
                "route": r["route"],
                "model": r["model"],
                "attempts": _int(r["attempts"]),
                "mean_ms": ratio(_num(r["latency_sum"]), _int(r["attempts"])),
                **q,
                "p95_budget_ms": float(budget) if budget is not None else None,
                "latency_budget_ms": route_settings(f, r["route"]).get("latency_budget_ms"),
                "over_budget": bool(budget is not None and q["p95"] is not None and q["p95"] > budget),
            }
        )
    days = range_days(f)
    per_day: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for cell in (
        range_cells(f)
        .annotate(day=TruncDay("hour"))
        .values("day", "route")
        .order_by("day", "route")
        .annotate(**bucket_sums())
    ):
        per_day[cell["route"]][day_key(cell["day"])] = bucket_counts(cell)
    daily = [
        {
            "route": route,
            "p95": [latency_quantiles(values[d])["p95"] if d in values else None for d in days],
            "p95_budget_ms": route_expectations(f, route).get("latency_p95_ms"),
        }
        for route, values in sorted(per_day.items())
    ]
    return {"filters": f.as_dict(), "rows": rows, "days": days, "daily": daily, "bounds_ms": list(LATENCY_BOUNDS_MS)}
