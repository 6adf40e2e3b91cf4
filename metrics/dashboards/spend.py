"""The money pages: Overview (the range against the one before, the movers, the budget month
so far), Cost (over time, per request against the route's maximum, by model and provider) and
Budget burn (the month's cumulative spend against the budget, its forecast and thresholds)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from metrics.budget.dimensions import dimension_budget_spend
from metrics.budget.thresholds import spend_thresholds
from metrics.dashboards.definitions import (
    OK,
    budget_for,
    day_key,
    pass_rate,
    range_cells,
    range_days,
    route_expectations,
)
from metrics.dashboards.filters import DashboardFilters
from metrics.models import Alert
from metrics.rules.budgets import dimension_budgets
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.rules.numbers import ratio
from metrics.rules.periods import midnight, month_end, month_start
from metrics.stats.budgets import forecast_recent
from signalbox_client.engine.policy import DEFAULT_DOWNGRADE_AT

# --------------------------------------------------------------------------------------------
# Overview


def open_alerts_count(f: DashboardFilters) -> int:
    """Open and acknowledged alerts of the policy (of the route, when one is chosen), whatever the dates."""
    qs = Alert.objects.filter(policy_id=f.policy.pk if f.policy else -1, status__in=Alert.ACTIVE)
    return (qs.filter(route=f.route) if f.route else qs).count()


def dashboard_overview(f: DashboardFilters) -> dict[str, Any]:
    """Headline numbers for the range, the previous range, the biggest movers and the number of
    active alerts (4 queries)."""
    prev = f.previous()
    cur = Q(hour__gte=f.start_dt)
    before = Q(hour__lt=f.start_dt)
    # Mappings: `totals` reads the current and the previous columns by their prefixed names.
    rows: list[Mapping[str, Any]] = list(
        range_cells(f, start=prev.start_dt, end=f.end_dt)
        .values("task_type")
        .order_by("task_type")
        .annotate(
            cost=Sum("cost_usd", filter=cur),
            reqs=Sum("requests", filter=cur),
            ok=Sum("count", filter=cur & OK),
            escs=Sum("escalations", filter=cur),
            unpr=Sum("unpriced", filter=cur),
            prev_cost=Sum("cost_usd", filter=before),
            prev_reqs=Sum("requests", filter=before),
            prev_ok=Sum("count", filter=before & OK),
            prev_escs=Sum("escalations", filter=before),
        )
    )

    def totals(prefix: str) -> dict[str, Any]:
        cost = sum(_num(r[f"{prefix}cost"]) for r in rows)
        requests = sum(_int(r[f"{prefix}reqs"]) for r in rows)
        ok = sum(_int(r[f"{prefix}ok"]) for r in rows)
        esc = sum(_int(r[f"{prefix}escs"]) for r in rows)
        return {
            "cost_usd": cost,
            "requests": requests,
            "ok": ok,
            "escalations": esc,
            "pass_rate": pass_rate(ok, requests),
            "escalation_rate": ratio(esc, requests),
            "cost_per_request_usd": ratio(cost, requests),
        }

    current, previous = totals(""), totals("prev_")
    current["unpriced"] = sum(_int(r["unpr"]) for r in rows)

    movers: list[dict[str, Any]] = []
    for r in rows:
        cost, prev_cost = _num(r["cost"]), _num(r["prev_cost"])
        req, prev_req = _int(r["reqs"]), _int(r["prev_reqs"])
        pr, prev_pr = pass_rate(_int(r["ok"]), req), pass_rate(_int(r["prev_ok"]), prev_req)
        movers.append(
            {
                "task_type": r["task_type"],
                "cost_usd": cost,
                "previous_cost_usd": prev_cost,
                "cost_change_usd": cost - prev_cost,
                "cost_change_pct": ratio(cost - prev_cost, prev_cost),
                "requests": req,
                "previous_requests": prev_req,
                "requests_change": req - prev_req,
                "pass_rate": pr,
                "previous_pass_rate": prev_pr,
                "pass_rate_change": (pr - prev_pr) if pr is not None and prev_pr is not None else None,
            }
        )
    movers.sort(key=lambda m: (-abs(m["cost_change_usd"]), -abs(m["requests_change"]), m["task_type"]))

    # Spend of the calendar month holding the range's end, against the monthly budget.
    month_first, month_last = month_start(f.end), month_end(f.end)
    month_spend = _num(range_cells(f, start=midnight(month_first), end=f.end_dt).aggregate(c=Sum("cost_usd"))["c"])
    budget = budget_for(f)
    monthly = budget["monthly_usd"]

    daily = {
        (day_key(r["day"])): r
        for r in range_cells(f)
        .annotate(day=TruncDay("hour"))
        .values("day")
        .order_by("day")
        .annotate(cost=Sum("cost_usd"), reqs=Sum("requests"))
    }
    days = range_days(f)
    return {
        "filters": f.as_dict(),
        "period": {"start": f.start.isoformat(), "end": f.end.isoformat(), "days": f.days},
        "previous_period": {"start": prev.start.isoformat(), "end": prev.end.isoformat()},
        "current": current,
        "previous": previous,
        "budget": {
            **budget,
            "month": month_first.strftime("%Y-%m"),
            "month_label": month_first.strftime("%B %Y"),
            "month_to_date_usd": month_spend,
            "month_end": month_last.isoformat(),
            "fraction": ratio(month_spend, float(monthly)) if monthly else None,
        },
        "open_alerts": open_alerts_count(f),
        "movers": movers[:8],
        "daily": {
            "days": days,
            "cost_usd": [_num(daily[d]["cost"]) if d in daily else 0.0 for d in days],
            "requests": [_int(daily[d]["reqs"]) if d in daily else 0 for d in days],
        },
    }


# --------------------------------------------------------------------------------------------
# Cost


def dashboard_cost(f: DashboardFilters) -> dict[str, Any]:
    """Cost over time per task type, cost per request against the route's maximum, spend by
    model and provider, unpriced decisions (3 queries)."""
    days = range_days(f)
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for r in (
        range_cells(f)
        .annotate(day=TruncDay("hour"))
        .values("day", "task_type")
        .order_by("day", "task_type")
        .annotate(cost=Sum("cost_usd"))
    ):
        series[r["task_type"]][day_key(r["day"])] = _num(r["cost"])
    over_time = [
        {"task_type": tt, "cost_usd": [values.get(d, 0.0) for d in days]}
        for tt, values in sorted(series.items(), key=lambda kv: -sum(kv[1].values()))
    ]

    per_request: list[dict[str, Any]] = []
    for cell in (
        range_cells(f)
        .values("route", "task_type")
        .order_by("route", "task_type")
        .annotate(
            cost=Sum("cost_usd"),
            reqs=Sum("requests"),
            decisions=Sum("count"),
            unpr=Sum("unpriced"),
            upper_tier_cost=Sum("cost_usd", filter=Q(tier__gt=1)),
        )
    ):
        cost, requests = _num(cell["cost"]), _int(cell["reqs"])
        cpr = ratio(cost, requests)
        limit = route_expectations(f, cell["route"]).get("max_cost_per_request_usd")
        failure = bool(cpr is not None and limit is not None and cpr > float(limit))
        per_request.append(
            {
                "route": cell["route"],
                "task_type": cell["task_type"],
                "cost_usd": cost,
                "requests": requests,
                "decisions": _int(cell["decisions"]),
                "unpriced": _int(cell["unpr"]),
                "cost_per_request_usd": cpr,
                "max_cost_per_request_usd": float(limit) if limit is not None else None,
                "upper_tier_cost_share": ratio(_num(cell["upper_tier_cost"]), cost),
                "routing_failure": failure,
            }
        )
    per_request.sort(key=lambda row: -(row["cost_per_request_usd"] or 0))

    by_model: list[dict[str, Any]] = [
        {
            "provider": r["provider"],
            "model": r["model"],
            "tier": r["tier"],
            "cost_usd": _num(r["cost"]),
            "decisions": _int(r["decisions"]),
            "unpriced": _int(r["unpr"]),
        }
        for r in (
            range_cells(f)
            .values("provider", "model", "tier")
            .order_by("provider", "model", "tier")
            .annotate(cost=Sum("cost_usd"), decisions=Sum("count"), unpr=Sum("unpriced"))
        )
    ]
    by_model.sort(key=lambda row: (-row["cost_usd"], row["model"]))
    providers: dict[str, float] = defaultdict(float)
    for row in by_model:
        providers[row["provider"]] += row["cost_usd"]
    total = sum(providers.values())
    return {
        "filters": f.as_dict(),
        "total_cost_usd": total,
        "requests": sum(row["requests"] for row in per_request),
        "cost_per_request_usd": ratio(total, sum(row["requests"] for row in per_request)),
        "unpriced": sum(row["unpriced"] for row in by_model),
        "routing_failures": sum(1 for row in per_request if row["routing_failure"]),
        "days": days,
        "over_time": over_time,
        "per_request": per_request,
        "by_model": by_model,
        "by_provider": [
            {"provider": p, "cost_usd": c, "share": ratio(c, total)}
            for p, c in sorted(providers.items(), key=lambda kv: -kv[1])
        ],
    }


# --------------------------------------------------------------------------------------------
# Budget burn


def dashboard_budget(f: DashboardFilters, *, now: datetime | None = None) -> dict[str, Any]:
    """Cumulative spend of the calendar month holding the range's end against the budget, the
    linear forecast to month end, threshold crossings, runway, and per-route budgets (1 query)."""
    now = (now or timezone.now()).astimezone(UTC)
    month_first, month_last = month_start(f.end), month_end(f.end)
    start_dt = midnight(month_first)
    end_dt = midnight(month_last + timedelta(days=1))
    period_days = float(month_last.day)
    elapsed_days = min(period_days, max(0.0, (min(now, end_dt) - start_dt).total_seconds() / 86400))
    per_day: dict[str, float] = defaultdict(float)
    per_route: dict[str, float] = defaultdict(float)
    for r in (
        range_cells(f, start=start_dt, end=end_dt)
        .annotate(day=TruncDay("hour"))
        .values("day", "route")
        .order_by("day", "route")
        .annotate(cost=Sum("cost_usd"))
    ):
        per_day[day_key(r["day"])] += _num(r["cost"])
        per_route[r["route"]] += _num(r["cost"])
    n_days = math.ceil(elapsed_days - 1e-9)
    days = [(month_first + timedelta(days=i)).isoformat() for i in range(int(period_days))]
    daily_spend = [per_day.get(d, 0.0) for d in days[:n_days]]
    cumulative, running = [], 0.0
    for spend in daily_spend:
        running += spend
        cumulative.append(running)
    forecast = forecast_recent(daily_spend, period_days, elapsed_days) if elapsed_days > 0 else None
    budget = budget_for(f)
    monthly = float(budget["monthly_usd"]) if budget["monthly_usd"] is not None else None
    spent = running
    runway = forecast.runway_days(monthly) if forecast and monthly is not None else None
    thresholds = []
    for t in spend_thresholds():
        crossed_on = None
        if monthly:
            crossed_on = next((days[i] for i, c in enumerate(cumulative) if c >= t * monthly), None)
        thresholds.append({"fraction": t, "amount_usd": monthly * t if monthly else None, "crossed_on": crossed_on})
    routes = []
    for name, settings in sorted((f.document.get("routes") or {}).items()):
        rb = settings.get("budget") or {}
        if not rb and name not in per_route:
            continue
        r_monthly = rb.get("monthly_usd")
        routes.append(
            {
                "route": name,
                "spent_usd": per_route.get(name, 0.0),
                "monthly_usd": r_monthly,
                "fraction": ratio(per_route.get(name, 0.0), r_monthly) if r_monthly else None,
                "downgrade_at": rb.get("downgrade_at"),
            }
        )
    today_key = now.date().isoformat()
    return {
        "filters": f.as_dict(),
        "budget": budget,
        "month": month_first.strftime("%Y-%m"),
        "month_label": month_first.strftime("%B %Y"),
        "month_start": month_first.isoformat(),
        "month_end": month_last.isoformat(),
        "period_days": period_days,
        "elapsed_days": round(elapsed_days, 4),
        "days": days,
        "daily_spend_usd": daily_spend,
        "cumulative_usd": cumulative,
        "spent_usd": spent,
        "fraction": ratio(spent, monthly) if monthly else None,
        "today_usd": per_day.get(today_key, 0.0),
        "forecast": None
        if forecast is None
        else {
            "method": forecast.method,
            "projected_usd": forecast.projected,
            "daily_rate_usd": forecast.daily_rate,
            "fraction": ratio(forecast.projected, monthly) if monthly else None,
            "low_usd": forecast.low,
            "high_usd": forecast.high,
            "confidence": forecast.confidence,
        },
        "runway_days": None if runway is None or math.isinf(runway) else runway,
        "days_left": max(0.0, period_days - elapsed_days),
        "thresholds": thresholds,
        "routes": routes,
        "dimensions": _dimension_budget_rows(f, start_dt, end_dt, days[:n_days], period_days, elapsed_days, today_key),
    }


def _dimension_budget_rows(
    f: DashboardFilters,
    start_dt: datetime,
    end_dt: datetime,
    elapsed: list[str],
    period_days: float,
    elapsed_days: float,
    today_key: str,
) -> list[dict[str, Any]]:
    """Each dimension value budget of the document: the month's and today's spend of the value
    (policy-wide, whatever the route filter), its fractions and month-end forecast (one query per
    dimension with budgets)."""
    budgets = dimension_budgets(f.document)
    if not budgets or f.policy is None:
        return []
    cells = dimension_budget_spend(policy_id=f.policy.pk, budgets=budgets, start=start_dt, end=end_dt)
    rows = []
    for b in budgets:
        per_day = {day_key(h): float(v) for h, v in cells.get((b.key, b.value), {}).items()}
        daily_spend = [per_day.get(d, 0.0) for d in elapsed]
        spent, today = sum(daily_spend), per_day.get(today_key, 0.0)
        monthly, daily = b.budget.get("monthly_usd"), b.budget.get("daily_usd")
        forecast = forecast_recent(daily_spend, period_days, elapsed_days) if elapsed_days > 0 else None
        rows.append(
            {
                "dimension": b.key,
                "value": b.value,
                "spent_usd": spent,
                "monthly_usd": monthly,
                "fraction": ratio(spent, monthly) if monthly else None,
                "today_usd": today,
                "daily_usd": daily,
                "daily_fraction": ratio(today, daily) if daily else None,
                "downgrade_at": b.budget.get("downgrade_at", DEFAULT_DOWNGRADE_AT),
                "projected_usd": forecast.projected if forecast is not None else None,
                "forecast_fraction": ratio(forecast.projected, monthly) if forecast is not None and monthly else None,
            }
        )
    return rows
