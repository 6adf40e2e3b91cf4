"""Every read the dashboards, reports and tasks need from the decision rollups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Trunc

from metrics.models import ROLLUP_MEASURES, RollupDaily, RollupHourly
from metrics.rules.latency import buckets_of, latency_quantiles

GRANULARITIES = ("hour", "day", "week", "month")


def rollup_cells(
    *, policy_id: int | None = None, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[RollupHourly]:
    """Hourly cells, optionally of one policy and within [start, end)."""
    qs = RollupHourly.objects.all()
    if policy_id is not None:
        qs = qs.filter(policy_id=policy_id)
    if start is not None:
        qs = qs.filter(hour__gte=start)
    if end is not None:
        qs = qs.filter(hour__lt=end)
    return qs


def _whole_days(start: datetime | None, end: datetime | None) -> bool:
    return all(
        moment is not None
        and moment.tzinfo is not None
        and moment.utcoffset() is not None
        and moment.astimezone(UTC).time() == time.min
        for moment in (start, end)
    )


def rollup_range_cells(*, policy_id: int | None, start: datetime, end: datetime) -> QuerySet[Any]:
    """The cells that cover [start, end) with the fewest rows: the daily cells when both bounds are
    UTC midnights, else the hourly ones. Either way the cell's start is `hour` in filters and
    expressions (`TruncDay("hour")`, `Q(hour__gte=…)`), and the measures are the same fields."""
    if _whole_days(start, end):
        qs: QuerySet[Any] = RollupDaily.objects.alias(hour=F("day_start")).filter(hour__gte=start, hour__lt=end)
        return qs if policy_id is None else qs.filter(policy_id=policy_id)
    return rollup_cells(policy_id=policy_id, start=start, end=end)


def _policy_id(policy: Any) -> int:
    return policy if isinstance(policy, int) else policy.pk


def rollup_cost_by_task_type(
    policy: Any, start: datetime, end: datetime, *, granularity: str = "day"
) -> list[dict[str, Any]]:
    """Cost, decisions, requests and unpriced decisions per task type and period, oldest first.

    `unpriced` counts decisions whose model had no price: their cost is missing, not zero. A range
    of whole UTC days per day (or coarser) reads the daily cells.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}")
    if granularity == "hour":
        cells, period = rollup_cells(policy_id=_policy_id(policy), start=start, end=end), F("hour")
    else:
        cells = rollup_range_cells(policy_id=_policy_id(policy), start=start, end=end)
        whole_days = cells.model is RollupDaily
        period = F("hour") if granularity == "day" and whole_days else Trunc("hour", granularity)
    rows = (
        cells.annotate(period=period)
        .values("period", "task_type")
        .annotate(cost_usd=Sum("cost_usd"), decisions=Sum("count"), requests=Sum("requests"), unpriced=Sum("unpriced"))
        .order_by("period", "task_type")
    )
    return [dict(row) for row in rows]


def rollup_totals(
    *,
    policy_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    group_by: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Sums of every measure over the cells, grouped by the given dimensions."""
    measures = {name: Sum(name) for name in ROLLUP_MEASURES}
    qs = rollup_cells(policy_id=policy_id, start=start, end=end)
    if not group_by:
        return [qs.aggregate(**measures)]
    return list(qs.values(*group_by).order_by(*group_by).annotate(**measures))


def rollup_latency_percentiles(row: dict[str, Any]) -> dict[str, float | None]:
    """p50/p95/p99 of a `rollup_totals` row (`metrics.rules.latency`)."""
    return latency_quantiles(buckets_of(row))


def as_float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def alert_list(
    *,
    policy: Any = None,
    status: str | Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    detector: str | None = None,
    route: str | None = None,
    severity: str | None = None,
) -> QuerySet[Any]:
    """Alerts, newest first, with their policy; optionally of one policy (or id), status(es),
    detector, route ("" = policy-wide) and severity.

    `since`/`until` keep the alerts active at some moment of [since, until): opened before `until`
    and not resolved before `since` (a report of a month lists every alert that was open in it).
    """
    from metrics.models import Alert

    qs = Alert.objects.select_related("policy")
    if policy is not None:
        qs = qs.filter(policy_id=_policy_id(policy))
    if status:
        qs = qs.filter(status=status) if isinstance(status, str) else qs.filter(status__in=list(status))
    if detector:
        qs = qs.filter(detector=detector)
    if route is not None:
        qs = qs.filter(route=route)
    if severity:
        qs = qs.filter(severity=severity)
    if until is not None:
        qs = qs.filter(opened_at__lt=until)
    if since is not None:
        qs = qs.filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=since))
    return qs.order_by("-opened_at", "-id")


def alert_get(alert_id: int) -> Any:
    """One alert with its policy, its history and each event's deliveries (3 queries)."""
    from django.db.models import Prefetch

    from controlplane.errors import NotFound
    from metrics.models import Alert, AlertEvent

    alert = (
        Alert.objects.select_related("policy")
        .prefetch_related(
            Prefetch("events", queryset=AlertEvent.objects.prefetch_related("deliveries__channel").order_by("id"))
        )
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        raise NotFound(f"No alert {alert_id}.", {"alert": ["not found"]})
    return alert


def channel_list() -> QuerySet[Any]:
    """Notification channels with their policy scope, by name."""
    from metrics.models import NotificationChannel

    return NotificationChannel.objects.select_related("policy").order_by("name", "id")
