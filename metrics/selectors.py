"""Every read the dashboards, reports and tasks need from the decision rollups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import F, QuerySet, Sum
from django.db.models.functions import Trunc

from metrics.models import BUCKET_FIELDS, LATENCY_BOUNDS_MS, ROLLUP_MEASURES, RollupHourly

GRANULARITIES = ("hour", "day", "week", "month")


def rollup_cells(*, policy_id: int | None = None, start: datetime | None = None,
                 end: datetime | None = None) -> QuerySet[RollupHourly]:
    """Hourly cells, optionally of one policy and within [start, end)."""
    qs = RollupHourly.objects.all()
    if policy_id is not None:
        qs = qs.filter(policy_id=policy_id)
    if start is not None:
        qs = qs.filter(hour__gte=start)
    if end is not None:
        qs = qs.filter(hour__lt=end)
    return qs


def _policy_id(policy: Any) -> int:
    return policy if isinstance(policy, int) else policy.pk


def rollup_cost_by_task_type(policy: Any, start: datetime, end: datetime, *,
                             granularity: str = "day") -> list[dict[str, Any]]:
    """Cost, decisions, requests and unpriced decisions per task type and period, oldest first.

    `unpriced` counts decisions whose model had no price: their cost is missing, not zero.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}")
    period = F("hour") if granularity == "hour" else Trunc("hour", granularity)
    rows = (rollup_cells(policy_id=_policy_id(policy), start=start, end=end)
            .annotate(period=period)
            .values("period", "task_type")
            .annotate(cost_usd=Sum("cost_usd"), decisions=Sum("count"), requests=Sum("requests"),
                      unpriced=Sum("unpriced"))
            .order_by("period", "task_type"))
    return [dict(row) for row in rows]


def rollup_totals(*, policy_id: int | None = None, start: datetime | None = None,
                  end: datetime | None = None, group_by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Sums of every measure over the cells, grouped by the given dimensions."""
    measures = {name: Sum(name) for name in ROLLUP_MEASURES}
    qs = rollup_cells(policy_id=policy_id, start=start, end=end)
    if not group_by:
        return [qs.aggregate(**measures)]
    return list(qs.values(*group_by).order_by(*group_by).annotate(**measures))


def latency_percentile(buckets: Sequence[int], q: float) -> float | None:
    """The q-quantile (0..1) of a latency histogram, by linear interpolation inside its bucket.

    Bucket i spans [LATENCY_BOUNDS_MS[i-1], LATENCY_BOUNDS_MS[i]) with 0 below the first bound;
    the open last bucket reports its lower bound (what is known for sure).
    """
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            if i == len(LATENCY_BOUNDS_MS):
                return float(LATENCY_BOUNDS_MS[-1])
            lower = 0.0 if i == 0 else float(LATENCY_BOUNDS_MS[i - 1])
            upper = float(LATENCY_BOUNDS_MS[i])
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
    return float(LATENCY_BOUNDS_MS[-1])


def rollup_latency_percentiles(row: dict[str, Any]) -> dict[str, float | None]:
    """p50/p95/p99 of a `rollup_totals` row."""
    buckets = [int(row[name] or 0) for name in BUCKET_FIELDS]
    return {f"p{int(q * 100)}": latency_percentile(buckets, q) for q in (0.5, 0.95, 0.99)}


def as_float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)
