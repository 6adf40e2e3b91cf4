"""The one query module over the rollups: every read of rollup cells goes through these functions
(the seam a column store can take later). They return querysets to aggregate or plain rows."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Trunc

from metrics.models import (
    ROLLUP_MEASURES,
    DimensionRollupDaily,
    DimensionRollupHourly,
    RollupDaily,
    RollupHourly,
)
from metrics.rules.latency import buckets_of, latency_quantiles
from metrics.rules.periods import midnight
from metrics.schema import BUILTIN_DIMENSIONS

GRANULARITIES = ("hour", "day", "week", "month")


def rollup_cells(
    *,
    policy_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> QuerySet[RollupHourly]:
    """Hourly cells, optionally of one policy and within [start, end)."""
    qs = RollupHourly.objects.using(using).all()
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


def rollup_span_cells(
    *, policy_id: int, start: datetime, end: datetime, hourly_from: datetime | None = None
) -> list[QuerySet[Any]]:
    """The cells covering the hours [start, end) with few rows: the daily cells of the whole UTC
    days inside, the hourly cells of the hours at either edge (and of every hour from `hourly_from`
    on, for windows that need them). Each queryset has `hour` (a daily cell's is its day start) and
    the same measures; sum them all. A range of a week reads about 48 hourly rows per cell key
    instead of 168."""
    hourly_end = end if hourly_from is None else max(start, min(end, hourly_from))
    first = midnight_after(start)
    last = midnight(hourly_end.astimezone(UTC).date())
    if last <= first:
        return [rollup_cells(policy_id=policy_id, start=start, end=end)]
    days: QuerySet[Any] = RollupDaily.objects.annotate(hour=F("day_start")).filter(
        policy_id=policy_id, hour__gte=first, hour__lt=last
    )
    # Two index ranges, not the whole span filtered.
    edges = Q(hour__gte=start, hour__lt=first) | Q(hour__gte=last, hour__lt=end)
    hours = rollup_cells(policy_id=policy_id).filter(edges)
    return [days, hours]


def midnight_after(moment: datetime) -> datetime:
    """The first UTC midnight at or after `moment`."""
    day = midnight(moment.astimezone(UTC).date())
    return day if day == moment else day + timedelta(days=1)


def rollup_newest_hour(policy_id: int) -> datetime | None:
    """The hour of the policy's newest cell (None before any decision)."""
    return rollup_cells(policy_id=policy_id).order_by("-hour").values_list("hour", flat=True).first()


def policy_id_of(policy: Any) -> int:
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
    period: F | Trunc
    if granularity == "hour":
        cells, period = rollup_cells(policy_id=policy_id_of(policy), start=start, end=end), F("hour")
    else:
        cells = rollup_range_cells(policy_id=policy_id_of(policy), start=start, end=end)
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


# -- dimension cells (`metrics.rollups.dimensions`) ------------------------------------------------


def dimension_cells(
    *,
    policy_id: int,
    dim_key: str,
    start: datetime,
    end: datetime,
    filters: dict[str, Any] | None = None,
    hourly: bool = False,
) -> QuerySet[Any]:
    """One policy's cells of one dimension over [start, end): the daily ones when both bounds are
    UTC midnights (and `hourly` is not asked), else the hourly ones (either way the cell's start
    reads as `hour`), narrowed by `filters` (routing fields or `dim_value`, as ORM lookups:
    {"route": "x", "model__in": [...]})."""
    qs: QuerySet[Any]
    if _whole_days(start, end) and not hourly:
        qs = DimensionRollupDaily.objects.alias(hour=F("day_start"))
    else:
        qs = DimensionRollupHourly.objects.all()
    qs = qs.filter(policy_id=policy_id, dim_key=dim_key, hour__gte=start, hour__lt=end)
    return qs.filter(**filters) if filters else qs


def dimension_totals(
    *,
    policy_id: int,
    dim_key: str,
    start: datetime,
    end: datetime,
    group_by: Sequence[str] = ("dim_value",),
    filters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Sums of every measure of one dimension's cells, grouped (by its value, by default)."""
    measures = {name: Sum(name) for name in ROLLUP_MEASURES}
    qs = dimension_cells(policy_id=policy_id, dim_key=dim_key, start=start, end=end, filters=filters)
    return list(qs.values(*group_by).order_by(*group_by).annotate(**measures))


def dimension_hourly_totals(
    *,
    policy_id: int,
    dim_key: str,
    start: datetime,
    end: datetime,
    group_by: Sequence[str] = ("dim_value",),
    filters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`dimension_totals` per hour as well (hourly cells; the canary's per-hour samples)."""
    measures = {name: Sum(name) for name in ROLLUP_MEASURES}
    qs = dimension_cells(policy_id=policy_id, dim_key=dim_key, start=start, end=end, filters=filters, hourly=True)
    keys = ("hour", *group_by)
    return list(qs.values(*keys).order_by(*keys).annotate(**measures))


def dimension_value_spend(
    *,
    policy_id: int,
    values: Mapping[str, Collection[str]],
    start: datetime,
    end: datetime,
    hourly_from: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> dict[tuple[str, str], dict[datetime, Decimal]]:
    """Spend (USD) of chosen dimension values per cell over [start, end): {(key, value): {cell
    start: cost}}, one or two queries per key. The whole UTC days inside come from the daily cells (keyed by
    their midnight) up to `hourly_from`; the hours at the edges, and every hour from `hourly_from`
    on, from the hourly cells. Values folded into `(other)` that day are not counted under their
    own name."""
    out: dict[tuple[str, str], dict[datetime, Decimal]] = {}
    hourly_end = end if hourly_from is None else max(start, min(end, hourly_from))
    first = midnight_after(start)
    last = midnight(hourly_end.astimezone(UTC).date())
    for key, wanted in values.items():
        if not wanted:
            continue
        base: dict[str, Any] = {"policy_id": policy_id, "dim_key": key, "dim_value__in": sorted(wanted)}
        hours = DimensionRollupHourly.objects.using(using).filter(**base)
        parts: list[QuerySet[Any]]
        if last <= first:
            parts = [hours.filter(hour__gte=start, hour__lt=end)]
        else:
            days = DimensionRollupDaily.objects.using(using).annotate(hour=F("day_start")).filter(**base)
            parts = [days.filter(hour__gte=first, hour__lt=last)]
            edges = [Q(hour__gte=a, hour__lt=b) for a, b in ((start, first), (last, end)) if a < b]
            if edges:  # whole days (the budget state's month) need no hourly query
                parts.append(hours.filter(edges[0] | edges[-1]))
        for qs in parts:
            for row in qs.values("hour", "dim_value").order_by().annotate(cost=Sum("cost_usd")):
                cells = out.setdefault((key, row["dim_value"]), {})
                hour = row["hour"].astimezone(UTC)
                cells[hour] = cells.get(hour, Decimal(0)) + (row["cost"] or Decimal(0))
    return out


# Columns a raw read may be narrowed by (equality), as the decision rows name them.
RAW_FILTER_COLUMNS: tuple[str, ...] = ("policy_version", "route", "task_type", "model", "provider", "tier")
RAW_STATEMENT_TIMEOUT_MS = 5000


def dimension_raw_totals(
    *,
    policy_id: int,
    dim_key: str,
    where_key: str,
    where_value: str,
    start: datetime,
    end: datetime,
    filters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Sums of every measure of one policy's raw decisions in [start, end) whose dimension
    `where_key` has `where_value`, by the value of `dim_key` and outcome: two dimensions combined,
    which the dimension cells (one key per row) cannot hold. Values are those of the records,
    uncapped (no `(other)`); a missing key is `(none)`, as in the cells. `filters` are equalities
    on RAW_FILTER_COLUMNS. It scans the raw rows of the range, so callers bound the range; on
    PostgreSQL the statement stops after RAW_STATEMENT_TIMEOUT_MS (django.db.OperationalError)."""
    from django.db import connection, transaction

    from metrics.rollups import sql

    filters = filters or {}
    unknown = set(filters) - set(RAW_FILTER_COLUMNS)
    if unknown:
        raise ValueError(f"not a raw filter: {', '.join(sorted(unknown))}")
    if connection.vendor != "postgresql":
        return _sqlite_raw_totals(policy_id, dim_key, where_key, where_value, start, end, filters)
    params: list[Any] = []
    value = sql.pg_dimension_value("d", "%s")
    if dim_key not in BUILTIN_DIMENSIONS:
        params.append(dim_key)
    else:
        value = sql.pg_dimension_value("d", dim_key)
    where_expr = sql.pg_dimension_value("d", where_key if where_key in BUILTIN_DIMENSIONS else "%s")
    params += [policy_id, start, end]
    if where_key not in BUILTIN_DIMENSIONS:
        params.append(where_key)
    params.append(where_value)
    conditions = ["d.policy_id = %s", "d.ts >= %s", "d.ts < %s", f"{where_expr} = %s"]
    for column, wanted in filters.items():
        conditions.append(f"d.{column} = %s")
        params.append(wanted)
    source = f"(SELECT d.*, {value} AS dim_value FROM metrics_decision AS d WHERE {' AND '.join(conditions)}) AS picked"  # noqa: S608 - constant identifiers
    sums = ", ".join(f"sum({m}) AS {m}" for m in ROLLUP_MEASURES)
    query = (
        f"SELECT dim_value, outcome, {sums} FROM ({sql.aggregate_rows_sql('postgresql', source, '', ('dim_value',))}) "  # noqa: S608 - constant identifiers
        "AS cells GROUP BY dim_value, outcome ORDER BY dim_value, outcome"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        before = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(RAW_STATEMENT_TIMEOUT_MS)])
        try:
            cursor.execute(query, params)
            names = [c.name for c in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        finally:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [before])
    return rows


def _sqlite_raw_totals(
    policy_id: int,
    dim_key: str,
    where_key: str,
    where_value: str,
    start: datetime,
    end: datetime,
    filters: dict[str, Any],
) -> list[dict[str, Any]]:
    """`dimension_raw_totals` on SQLite (the demo): the rows read, their dimensions and measures
    computed by the functions the SQLite fold uses."""
    import json

    from django.db import connection

    from metrics.rollups.dimensions import record_dimension_values, record_measures
    from metrics.schema import sqlite_timestamp

    conditions = ["policy_id = %s", "ts >= %s", "ts < %s", *(f"{column} = %s" for column in filters)]
    keys = [k for k in (dim_key, where_key) if k not in BUILTIN_DIMENSIONS]
    sums: dict[tuple[str, str], list[Any]] = {}
    with connection.cursor() as cursor:
        query = (
            "SELECT outcome, attempt, escalated, cost_usd, tokens_in, tokens_out, confidence, latency_ms, "  # noqa: S608 - constant identifiers
            f"reason, client_app, attributes FROM metrics_decision WHERE {' AND '.join(conditions)}"
        )
        cursor.execute(
            query,
            [policy_id, sqlite_timestamp(start), sqlite_timestamp(end), *filters.values()],
        )
        for r in cursor.fetchall():
            values = dict(record_dimension_values(json.loads(r[8]), r[9], json.loads(r[10]), keys))
            if values[where_key] != where_value:
                continue
            cost = None if r[3] is None else Decimal(str(r[3]))
            measures = record_measures(r[1], bool(r[2]), cost, r[4], r[5], r[6], r[7])
            into = sums.setdefault((values[dim_key], r[0]), [0] * len(measures))
            for i, m in enumerate(measures):
                into[i] += m
    return [
        {"dim_value": value, "outcome": outcome, **dict(zip(ROLLUP_MEASURES, measures, strict=True))}
        for (value, outcome), measures in sorted(sums.items())
    ]


def rollup_inbox_state(*, using: str = DEFAULT_DB_ALIAS) -> tuple[int, float | None]:
    """(deltas pending in the inbox, counted up to INBOX_COUNT_LIMIT; when the last fold started,
    Unix time, or None when no fold has run since the shared cache was emptied). Cheap enough for
    every scrape: the count stops at the limit."""
    from django.core.cache import cache
    from django.db import connections

    from metrics.rollups.services import ROLLUPS_FOLD_STARTED_KEY

    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM metrics_rollup_inbox LIMIT %s) AS pending", [INBOX_COUNT_LIMIT]
        )
        pending = int(cursor.fetchone()[0])
    started = cache.get(ROLLUPS_FOLD_STARTED_KEY)
    return pending, float(started) if started is not None else None


INBOX_COUNT_LIMIT = 100_000
