"""The evaluator's reads of the rollups: every route's sums over the drift and spike windows, its
tiers' hourly counts over the slow-drift series, and spend per route and hour for the budgets.
Three GROUP BY queries per policy through `metrics.rollups.selectors` (the one query module over
the rollups): the window sums and the spend each a UNION ALL of the daily cells of the whole days
inside its range and the hourly cells of the rest, the series over hourly cells."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Q, Sum

from metrics.alerts.windows import Windows
from metrics.models import BUCKET_FIELDS
from metrics.rollups.selectors import rollup_cells, rollup_span_cells
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.stats import PROVIDER_FAILURE_OUTCOMES


@dataclass
class RouteTotals:
    """A route's sums over the drift and spike windows."""

    requests: int = 0
    base_requests: int = 0
    ok: int = 0
    base_ok: int = 0
    cost: float = 0.0
    base_cost: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_FIELDS))
    base_buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_FIELDS))
    # tier -> [requests starting there, escalations into it], current window only
    tiers: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # tier -> [requests starting there, escalations into it, attempts answered (no provider
    # failure), ok attempts] over the window, then the same four over the baseline; then
    # [provider failures, attempts] over the window and over the baseline
    tier_counts: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 12))
    # tier -> [latency buckets over the window, over the baseline]
    tier_buckets: dict[int, list[list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: [[0] * len(BUCKET_FIELDS), [0] * len(BUCKET_FIELDS)])
    )
    # tier -> hour -> SERIES counts (see `SERIES`), hourly cells of the slow-drift series
    series: dict[int, dict[datetime, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    # tier -> [confidence sum, confidence count] over the window, then over the baseline
    tier_confidence: dict[int, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0] * 4))
    # tier -> [cost over the window, over the baseline]
    tier_cost: dict[int, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))
    # (tier, model) -> [attempts over the window, over the baseline]
    tier_models: dict[tuple[int, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    task_mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    base_task_mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    model_mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    base_model_mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    spike_attempts: int = 0
    spike_failures: int = 0
    spike_base_attempts: int = 0
    spike_base_failures: int = 0


# The counts of one tier and hour in `RouteTotals.series`, in this order.
SERIES = ("requests", "escalations", "answered", "ok", "failures", "attempts")
_REQ, _ESC, _ANS, _OK, _FAIL, _ATT = range(len(SERIES))


def tier_hours(t: RouteTotals, tier: int, hours: Sequence[datetime]) -> list[list[int]]:
    """The tier's `SERIES` counts for each of `hours` (zeros for an hour without traffic)."""
    per_hour = t.series.get(tier, {})
    return [per_hour.get(h) or [0] * len(SERIES) for h in hours]


def tier_series_baseline(t: RouteTotals, tier: int, overlap: Sequence[datetime]) -> list[int]:
    """The tier's `SERIES` counts over the drift baseline less its `overlap` hours with the
    series (the series' baseline: the hours before the series)."""
    c = t.tier_counts.get(tier, [0] * 12)
    base = [c[4], c[5], c[6], c[7], c[10], c[11]]
    for row in tier_hours(t, tier, overlap):
        base = [b - v for b, v in zip(base, row, strict=True)]
    return [max(0, b) for b in base]


def _rows(parts: list[Any]) -> list[dict[str, Any]]:
    """The rows of the UNION ALL of `parts` as plain dicts, the database's values unconverted
    (the ORM's per-value converters cost more than the query itself at a few hundred rows of 35
    sums; `metrics.rules.numbers` reads Decimal, int and NULL alike)."""
    qs = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    sql, params = qs.query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def route_totals(policy_id: int, w: Windows) -> dict[str, RouteTotals]:
    """Every route's sums over the drift and spike windows (one GROUP BY query)."""
    cur = Q(hour__gte=w.current_start)
    base = Q(hour__lt=w.current_start)
    spike = Q(hour__gte=w.spike_start)
    spike_base = Q(hour__gte=w.spike_baseline_start, hour__lt=w.spike_start)
    sums: dict[str, Any] = {
        "c_req": Sum("requests", filter=cur),
        "b_req": Sum("requests", filter=base),
        "c_cnt": Sum("count", filter=cur),
        "b_cnt": Sum("count", filter=base),
        "c_esc": Sum("escalations", filter=cur),
        "b_esc": Sum("escalations", filter=base),
        "c_conf": Sum("confidence_sum", filter=cur),
        "b_conf": Sum("confidence_sum", filter=base),
        "c_confn": Sum("confidence_count", filter=cur),
        "b_confn": Sum("confidence_count", filter=base),
        "c_cost": Sum("cost_usd", filter=cur),
        "b_cost": Sum("cost_usd", filter=base),
        "s_cnt": Sum("count", filter=spike),
        "sb_cnt": Sum("count", filter=spike_base),
    }
    for name in BUCKET_FIELDS:
        sums[f"c_{name}"] = Sum(name, filter=cur)
        sums[f"b_{name}"] = Sum(name, filter=base)
    # The baseline's whole days come from the daily cells; every spike hour stays hourly.
    parts: list[Any] = [
        qs.values("route", "task_type", "model", "tier", "outcome").order_by().annotate(**sums)
        for qs in rollup_span_cells(
            policy_id=policy_id, start=w.baseline_start, end=w.end, hourly_from=w.spike_baseline_start
        )
    ]
    rows = _rows(parts)
    out: dict[str, RouteTotals] = defaultdict(RouteTotals)
    for r in rows:
        t = out[r["route"]]
        c_req, b_req, c_cnt, b_cnt = _int(r["c_req"]), _int(r["b_req"]), _int(r["c_cnt"]), _int(r["b_cnt"])
        t.requests += c_req
        t.base_requests += b_req
        if r["outcome"] == "ok":
            t.ok += c_cnt
            t.base_ok += b_cnt
        t.cost += _num(r["c_cost"])
        t.base_cost += _num(r["b_cost"])
        c_esc, b_esc = _int(r["c_esc"]), _int(r["b_esc"])
        tier = t.tiers[r["tier"]]
        tier[0] += c_req
        tier[1] += c_esc
        failed = r["outcome"] in PROVIDER_FAILURE_OUTCOMES
        ok = r["outcome"] == "ok"
        tc = t.tier_counts[r["tier"]]
        tc[0] += c_req
        tc[1] += c_esc
        tc[2] += 0 if failed else c_cnt
        tc[3] += c_cnt if ok else 0
        tc[4] += b_req
        tc[5] += b_esc
        tc[6] += 0 if failed else b_cnt
        tc[7] += b_cnt if ok else 0
        tc[8] += c_cnt if failed else 0
        tc[9] += c_cnt
        tc[10] += b_cnt if failed else 0
        tc[11] += b_cnt
        tb = t.tier_buckets[r["tier"]]
        for i, name in enumerate(BUCKET_FIELDS):
            cb, bb = _int(r[f"c_{name}"]), _int(r[f"b_{name}"])
            t.buckets[i] += cb
            t.base_buckets[i] += bb
            tb[0][i] += cb
            tb[1][i] += bb
        tm = t.tier_models[(r["tier"], r["model"])]
        tm[0] += c_cnt
        tm[1] += b_cnt
        cost = t.tier_cost[r["tier"]]
        cost[0] += _num(r["c_cost"])
        cost[1] += _num(r["b_cost"])
        conf = t.tier_confidence[r["tier"]]
        conf[0] += _num(r["c_conf"])
        conf[1] += _int(r["c_confn"])
        conf[2] += _num(r["b_conf"])
        conf[3] += _int(r["b_confn"])
        t.task_mix[r["task_type"]] += c_req
        t.base_task_mix[r["task_type"]] += b_req
        t.model_mix[r["model"]] += c_cnt
        t.base_model_mix[r["model"]] += b_cnt
        s_cnt, sb_cnt = _int(r["s_cnt"]), _int(r["sb_cnt"])
        t.spike_attempts += s_cnt
        t.spike_base_attempts += sb_cnt
        if r["outcome"] in PROVIDER_FAILURE_OUTCOMES:
            t.spike_failures += s_cnt
            t.spike_base_failures += sb_cnt
    return out


def route_series(policy_id: int, w: Windows, totals: dict[str, RouteTotals]) -> None:
    """Each route's tiers' hourly `SERIES` counts over the slow-drift series, into `totals` (one
    GROUP BY query over the hourly cells)."""
    failed = Q(outcome__in=sorted(PROVIDER_FAILURE_OUTCOMES))
    qs = (
        rollup_cells(policy_id=policy_id, start=w.series_start, end=w.end)
        .values("route", "tier", "hour")
        .order_by()
        .annotate(
            req=Sum("requests"),
            esc=Sum("escalations"),
            cnt=Sum("count"),
            ok=Sum("count", filter=Q(outcome="ok")),
            fail=Sum("count", filter=failed),
        )
    )
    for r in _rows([qs]):
        cnt, fail = _int(r["cnt"]), _int(r["fail"])
        row = [_int(r["req"]), _int(r["esc"]), cnt - fail, _int(r["ok"]), fail, cnt]
        per_hour = totals[r["route"]].series[r["tier"]]
        hour = r["hour"].astimezone(UTC)
        old = per_hour.get(hour)
        per_hour[hour] = row if old is None else [a + b for a, b in zip(old, row, strict=True)]


def hourly_spend(policy_id: int, w: Windows) -> dict[str, dict[datetime, float]]:
    """Spend per route and hour from the month's (or the 6 h burn window's) start to `at` (one
    query); a whole day before the burn-rate window is one entry at its midnight."""
    out: dict[str, dict[datetime, float]] = defaultdict(dict)
    # Whole days before the burn-rate window come from the daily cells, keyed by their midnight.
    parts: list[Any] = [
        qs.values("route", "hour").order_by().annotate(cost=Sum("cost_usd"))
        for qs in rollup_span_cells(
            policy_id=policy_id, start=w.spend_start, end=w.end, hourly_from=w.hour - timedelta(hours=6)
        )
    ]
    for r in _rows(parts):
        per_hour = out[r["route"]]
        hour = r["hour"].astimezone(UTC)
        per_hour[hour] = per_hour.get(hour, 0.0) + _num(r["cost"])
    return out
