"""Every read the dashboards and their JSON endpoints need, computed from `RollupHourly`.

Each `dashboard_<page>` function runs one to three GROUP BY queries over the hourly rollups (never
one query per row) and returns plain JSON-ready data: the pages render it, the JSON endpoints
return it as is, so both always show the same numbers.

Definitions used on every page (also shown in the pages' footnotes):
- requests: decision records with attempt = 1 (one per user request).
- pass rate: ok attempts / requests, i.e. the share of requests that ended with an `ok` answer
  (capped at 100%: an `ok` answer below min_confidence still escalates, and logs a second ok).
- per-tier pass rate (Quality): ok attempts at that tier / attempts at that tier.
- escalation rate: escalated attempts / requests.
- tier t→t+1 rate: escalations into tier t+1 / requests that reached tier t, where "reached t" is
  requests that started at t plus escalations into t.
- cost per request: priced cost / requests (unpriced decisions add nothing and are counted apart).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from metrics.budget.thresholds import spend_thresholds
from metrics.models import BUCKET_FIELDS, LATENCY_BOUNDS_MS, Alert, ReportReview, RollupHourly
from metrics.rollups.selectors import rollup_range_cells
from metrics.rules import bands as band_rules
from metrics.rules.latency import buckets_of, latency_quantiles
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.rules.numbers import ratio
from metrics.rules.periods import midnight, month_end, month_start
from metrics.stats.budgets import forecast_linear
from routing.models import Policy, PolicyVersion

DEFAULT_DAYS = 30
MAX_DAYS = 366
# "Fallback rate above 40%: route this task type directly to the stronger tier."
DIRECT_ROUTE_ADVISORY_RATE = 0.40
PASS_RATE_GOOD = 0.95
PASS_RATE_POOR = 0.75
_OK = Q(outcome="ok")


# --------------------------------------------------------------------------------------------
# Filters


@dataclass(frozen=True)
class DashboardFilters:
    """What a dashboard shows: one policy, optional route/task type/model, dates [start, end]."""

    policy: Policy | None
    start: date
    end: date  # inclusive
    route: str = ""
    task_type: str = ""
    model: str = ""

    @property
    def start_dt(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_dt(self) -> datetime:
        """Exclusive end: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def document(self) -> dict[str, Any]:
        """The live policy document ({} when the policy has none yet)."""
        if self.policy is None or self.policy.live_version is None:
            return {}
        return self.policy.live_version.document or {}

    def previous(self) -> DashboardFilters:
        """The same number of days immediately before this range."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    def params(self, **changes: Any) -> dict[str, str]:
        """The query parameters that reproduce these filters (empty values left out)."""
        values = {
            "policy": self.policy.slug if self.policy else "",
            "route": self.route,
            "task_type": self.task_type,
            "model": self.model,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }
        values.update({k: (v.isoformat() if isinstance(v, date) else str(v)) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}

    def querystring(self, **changes: Any) -> str:
        return urlencode(self.params(**changes))

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.slug if self.policy else None,
            "route": self.route or None,
            "task_type": self.task_type or None,
            "model": self.model or None,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


def policy_choices() -> list[Policy]:
    """Every policy with its live version (one query)."""
    return list(Policy.objects.select_related("live_version").order_by("slug"))


# Filter dates outside these bounds are refused: the previous period, the budget month and the
# day after `end` must all stay inside what `datetime.date` can hold.
FIRST_DATE = date(2000, 1, 1)
LAST_DATE = date(2999, 12, 31)


def filter_date_parse(value: str | None) -> date | None:
    """A YYYY-MM-DD filter date between FIRST_DATE and LAST_DATE, else None."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day is not None and FIRST_DATE <= day <= LAST_DATE else None


TEXT_FILTERS = ("route", "task_type", "model")
MAX_TEXT_FILTER = 200


def filter_text_parse(value: str | None) -> str | None:
    """A route, task type or model filter, stripped ("" for none); None when it can't name one
    (NUL bytes, which PostgreSQL text refuses, or longer than any stored name)."""
    text = (value or "").strip()
    return None if "\x00" in text or len(text) > MAX_TEXT_FILTER else text


def dashboard_filters_parse(
    params: Mapping[str, str], policies: list[Policy], *, today: date | None = None
) -> tuple[DashboardFilters, list[str]]:
    """Filters from URL query parameters, plus messages about values that were ignored.

    Defaults: the first policy, the last 30 days ending today (UTC). A bad date, an unknown
    policy or a range longer than a year falls back to the default and says so.
    """
    today = today or timezone.now().astimezone(UTC).date()
    problems: list[str] = []
    by_slug = {p.slug: p for p in policies}
    slug = (params.get("policy") or "").strip()
    policy = by_slug.get(slug) if slug else None
    if slug and policy is None:
        problems.append(f"Unknown policy '{slug}': showing {policies[0].slug if policies else 'nothing'}.")
    if policy is None and policies:
        policy = policies[0]
    end = filter_date_parse(params.get("end")) or today
    start = filter_date_parse(params.get("start")) or end - timedelta(days=DEFAULT_DAYS - 1)
    if any(params.get(name) and filter_date_parse(params.get(name)) is None for name in ("start", "end")):
        problems.append(
            f"Dates must look like 2025-01-31, between {FIRST_DATE.year} and {LAST_DATE.year}: using the default range."
        )
    if start > end:
        problems.append("The start date is after the end date: swapped them.")
        start, end = end, start
    if (end - start).days + 1 > MAX_DAYS:
        problems.append(f"Ranges are limited to {MAX_DAYS} days: showing the last {MAX_DAYS}.")
        start = end - timedelta(days=MAX_DAYS - 1)
    texts: dict[str, str] = {}
    for name in TEXT_FILTERS:
        text = filter_text_parse(params.get(name))
        if text is None:
            problems.append(f"That {name.replace('_', ' ')} can't exist: showing every one.")
        texts[name] = text or ""
    return DashboardFilters(policy=policy, start=start, end=end, **texts), problems


def filter_options(f: DashboardFilters) -> dict[str, list[str]]:
    """Routes, task types and models named by the live document (plus any value already chosen)."""
    doc = f.document
    routes = set((doc.get("routes") or {}).keys())
    task_types = set((doc.get("task_types") or {}).keys())
    models: set[str] = set()
    for route in (doc.get("routes") or {}).values():
        for tier in route.get("tiers") or []:
            models.add(tier.get("model", ""))
            models.update(tier.get("fallbacks") or [])
        for arm in (route.get("split") or {}).get("arms") or []:
            if arm.get("model"):
                models.add(arm["model"])
    for value, bucket in ((f.route, routes), (f.task_type, task_types), (f.model, models)):
        if value:
            bucket.add(value)
    return {"routes": sorted(routes - {""}), "task_types": sorted(task_types - {""}), "models": sorted(models - {""})}


# --------------------------------------------------------------------------------------------
# Helpers


def _cells(
    f: DashboardFilters, *, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[RollupHourly]:
    # Whole days (every range here) read the daily cells, still addressed as `hour`.
    qs = rollup_range_cells(policy_id=f.policy.pk if f.policy else -1, start=start or f.start_dt, end=end or f.end_dt)
    if f.route:
        qs = qs.filter(route=f.route)
    if f.task_type:
        qs = qs.filter(task_type=f.task_type)
    if f.model:
        qs = qs.filter(model=f.model)
    return qs


def pass_rate(ok: int, requests: int) -> float | None:
    """ok attempts / requests, capped at 1: an `ok` answer below the route's min_confidence still
    escalates, so one request can log two ok attempts."""
    rate = ratio(ok, requests)
    return None if rate is None else min(1.0, rate)


def _buckets(row: Mapping[str, Any]) -> list[int]:
    return buckets_of(row, "s_")


def _bucket_sums() -> dict[str, Sum]:
    # Aliases must not shadow the model's fields.
    return {f"s_{name}": Sum(name) for name in BUCKET_FIELDS}


def _day(value: datetime | date) -> str:
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _days(f: DashboardFilters) -> list[str]:
    return [(f.start + timedelta(days=i)).isoformat() for i in range(f.days)]


def route_settings(f: DashboardFilters, route: str) -> dict[str, Any]:
    return ((f.document.get("routes") or {}).get(route)) or {}


def route_expectations(f: DashboardFilters, route: str) -> dict[str, Any]:
    return route_settings(f, route).get("expectations") or {}


def escalation_bands(f: DashboardFilters, route: str, observed_tiers: int = 0) -> list[band_rules.Band | None]:
    """The route's band for each transition tier 1→2, 2→3, …, None where it has none
    (`metrics.rules.bands`)."""
    return band_rules.escalation_bands(route_settings(f, route), observed_tiers)


def version_markers(f: DashboardFilters) -> list[dict[str, Any]]:
    """Publishes and rollbacks of the policy inside the date range, oldest first (one query)."""
    if f.policy is None:
        return []
    rows = (
        PolicyVersion.objects.filter(
            policy_id=f.policy.pk,
            status=PolicyVersion.Status.PUBLISHED,
            published_at__gte=f.start_dt,
            published_at__lt=f.end_dt,
        )
        .order_by("published_at")
        .values("number", "published_at", "rollback_of", "comment")
    )
    return [
        {
            "version": row["number"],
            "at": row["published_at"].astimezone(UTC).isoformat(),
            "rollback_of": row["rollback_of"],
            "label": f"v{row['number']}" + (f" ↺ v{row['rollback_of']}" if row["rollback_of"] else ""),
            "comment": row["comment"],
        }
        for row in rows
    ]


# --------------------------------------------------------------------------------------------
# Overview


def budget_for(f: DashboardFilters) -> dict[str, Any]:
    """The budget that applies: the filtered route's when it has one, else the policy's."""
    if f.route and route_settings(f, f.route).get("budget"):
        budget = route_settings(f, f.route)["budget"]
        scope = f"route {f.route}"
    else:
        budget = f.document.get("budget") or {}
        scope = "policy"
    return {
        "scope": scope,
        "monthly_usd": budget.get("monthly_usd"),
        "daily_usd": budget.get("daily_usd"),
        "downgrade_at": budget.get("downgrade_at"),
    }


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
    rows = list(
        _cells(f, start=prev.start_dt, end=f.end_dt)
        .values("task_type")
        .order_by("task_type")
        .annotate(
            cost=Sum("cost_usd", filter=cur),
            reqs=Sum("requests", filter=cur),
            ok=Sum("count", filter=cur & _OK),
            escs=Sum("escalations", filter=cur),
            unpr=Sum("unpriced", filter=cur),
            prev_cost=Sum("cost_usd", filter=before),
            prev_reqs=Sum("requests", filter=before),
            prev_ok=Sum("count", filter=before & _OK),
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

    movers = []
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
    month_spend = _num(_cells(f, start=midnight(month_first), end=f.end_dt).aggregate(c=Sum("cost_usd"))["c"])
    budget = budget_for(f)
    monthly = budget["monthly_usd"]

    daily = {
        (_day(r["day"])): r
        for r in _cells(f)
        .annotate(day=TruncDay("hour"))
        .values("day")
        .order_by("day")
        .annotate(cost=Sum("cost_usd"), reqs=Sum("requests"))
    }
    days = _days(f)
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
    days = _days(f)
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for r in (
        _cells(f)
        .annotate(day=TruncDay("hour"))
        .values("day", "task_type")
        .order_by("day", "task_type")
        .annotate(cost=Sum("cost_usd"))
    ):
        series[r["task_type"]][_day(r["day"])] = _num(r["cost"])
    over_time = [
        {"task_type": tt, "cost_usd": [values.get(d, 0.0) for d in days]}
        for tt, values in sorted(series.items(), key=lambda kv: -sum(kv[1].values()))
    ]

    per_request = []
    for r in (
        _cells(f)
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
        cost, requests = _num(r["cost"]), _int(r["reqs"])
        cpr = ratio(cost, requests)
        limit = route_expectations(f, r["route"]).get("max_cost_per_request_usd")
        failure = bool(cpr is not None and limit is not None and cpr > float(limit))
        per_request.append(
            {
                "route": r["route"],
                "task_type": r["task_type"],
                "cost_usd": cost,
                "requests": requests,
                "decisions": _int(r["decisions"]),
                "unpriced": _int(r["unpr"]),
                "cost_per_request_usd": cpr,
                "max_cost_per_request_usd": float(limit) if limit is not None else None,
                "upper_tier_cost_share": ratio(_num(r["upper_tier_cost"]), cost),
                "routing_failure": failure,
            }
        )
    per_request.sort(key=lambda row: -(row["cost_per_request_usd"] or 0))

    by_model = [
        {
            "provider": r["provider"],
            "model": r["model"],
            "tier": r["tier"],
            "cost_usd": _num(r["cost"]),
            "decisions": _int(r["decisions"]),
            "unpriced": _int(r["unpr"]),
        }
        for r in (
            _cells(f)
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
# Escalation


def _cascade(tiers: Mapping[int, Mapping[str, int]], depth: int) -> list[dict[str, Any]]:
    """Rates tier t→t+1 from per-tier sums of requests (started there) and escalations (into it)."""
    steps = []
    for t in range(1, depth + 1):
        into = tiers.get(t, {}).get("escalations", 0)
        reached = tiers.get(t, {}).get("requests", 0) + into
        up = tiers.get(t + 1, {}).get("escalations", 0)
        steps.append(
            {"from_tier": t, "to_tier": t + 1, "reached": reached, "escalated": up, "rate": ratio(up, reached)}
        )
    return steps


def dashboard_escalation(f: DashboardFilters) -> dict[str, Any]:
    """Each tier transition's rate per route against its band, a cascade funnel, the direct-route
    advisory per task type, and the daily tier 1→2 rate (2 queries)."""
    per_route: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    per_task: dict[tuple[str, str], dict[int, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    overall: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in (
        _cells(f)
        .values("route", "task_type", "tier")
        .order_by("route", "task_type", "tier")
        .annotate(reqs=Sum("requests"), escs=Sum("escalations"))
    ):
        for bucket in (
            per_route[r["route"]][r["tier"]],
            per_task[(r["route"], r["task_type"])][r["tier"]],
            overall[r["tier"]],
        ):
            bucket["requests"] += _int(r["reqs"])
            bucket["escalations"] += _int(r["escs"])

    routes = []
    for route, tiers in sorted(per_route.items()):
        bands = escalation_bands(f, route, observed_tiers=max(tiers, default=1))
        steps = _cascade(tiers, len(bands))
        for step, band in zip(steps, bands, strict=True):
            step["band"] = band.as_dict() if band else None
            step["status"] = band_rules.status(band, step["rate"]) if step["reached"] else band_rules.NO_DATA
        routes.append({"route": route, "requests": sum(t["requests"] for t in tiers.values()), "steps": steps})
    # Every route answers for every transition shown, at least tier 1→2 and 2→3 (a shorter route: "no tier").
    depth = max([2, *(len(r["steps"]) for r in routes)])
    for r in routes:
        for t in range(len(r["steps"]) + 1, depth + 1):
            r["steps"].append(
                {"from_tier": t, "to_tier": t + 1, "reached": 0, "escalated": 0, "rate": None, "band": None}
                | {"status": f"no tier {t + 1}"}
            )

    advisories = []
    task_rows = []
    for (route, task_type), tiers in sorted(per_task.items()):
        step = _cascade(tiers, 1)[0]
        row = {
            "route": route,
            "task_type": task_type,
            "requests_at_tier_1": step["reached"],
            "escalated_to_tier_2": step["escalated"],
            "rate": step["rate"],
        }
        task_rows.append(row)
        if step["rate"] is not None and step["rate"] > DIRECT_ROUTE_ADVISORY_RATE:
            advisories.append(
                {
                    **row,
                    "message": (
                        f"{task_type}: {step['rate']:.1%} of tier-1 requests fall back to tier 2 (above 40%): "
                        "route this task type directly to the stronger tier."
                    ),
                }
            )

    max_tier = max(overall, default=1)
    funnel = [{"stage": "Started at tier 1", "tier": 1, "count": overall.get(1, {}).get("requests", 0)}]
    funnel.extend(
        {"stage": f"Escalated to tier {t}", "tier": t, "count": overall.get(t, {}).get("escalations", 0)}
        for t in range(2, max(max_tier, 3) + 1)
    )

    days = _days(f)
    daily: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for r in (
        _cells(f)
        .annotate(day=TruncDay("hour"))
        .values("day", "tier")
        .order_by("day", "tier")
        .annotate(reqs=Sum("requests"), escs=Sum("escalations"))
    ):
        daily[_day(r["day"])][r["tier"]]["requests"] += _int(r["reqs"])
        daily[_day(r["day"])][r["tier"]]["escalations"] += _int(r["escs"])
    daily_rates = {"days": days, "tier_1_to_2": [], "tier_2_to_3": []}
    for d in days:
        steps = _cascade(daily.get(d, {}), 2)
        daily_rates["tier_1_to_2"].append(steps[0]["rate"])
        daily_rates["tier_2_to_3"].append(steps[1]["rate"])

    totals = _cascade(overall, 2)
    return {
        "filters": f.as_dict(),
        "overall": totals,
        "routes": routes,
        "task_types": task_rows,
        "advisories": advisories,
        "funnel": funnel,
        "daily": daily_rates,
        "advisory_rate": DIRECT_ROUTE_ADVISORY_RATE,
        "transitions": [{"from_tier": t, "to_tier": t + 1} for t in range(1, depth + 1)],
        "default_bands": [
            {"from_tier": i + 1, "to_tier": i + 2, "min": lo, "max": hi}
            for i, (lo, hi) in enumerate(band_rules.DEFAULT_ESCALATION_BANDS)
        ],
    }


# --------------------------------------------------------------------------------------------
# Quality


def dashboard_quality(f: DashboardFilters) -> dict[str, Any]:
    """Pass rate per task type × tier (attempts) and the daily request pass rate (2 queries)."""
    cells = []
    for r in (
        _cells(f)
        .values("task_type", "tier")
        .order_by("task_type", "tier")
        .annotate(attempts=Sum("count"), ok=Sum("count", filter=_OK))
    ):
        attempts, ok = _int(r["attempts"]), _int(r["ok"])
        rate = ratio(ok, attempts)
        cells.append(
            {
                "task_type": r["task_type"],
                "tier": r["tier"],
                "attempts": attempts,
                "ok": ok,
                "pass_rate": rate,
                "band": None
                if rate is None
                else ("good" if rate >= PASS_RATE_GOOD else "watch" if rate >= PASS_RATE_POOR else "poor"),
            }
        )
    days = _days(f)
    daily = {
        _day(r["day"]): r
        for r in (
            _cells(f)
            .annotate(day=TruncDay("hour"))
            .values("day")
            .order_by("day")
            .annotate(reqs=Sum("requests"), ok=Sum("count", filter=_OK))
        )
    }
    requests = sum(_int(r["reqs"]) for r in daily.values())
    ok = sum(_int(r["ok"]) for r in daily.values())
    return {
        "filters": f.as_dict(),
        "cells": cells,
        "task_types": sorted({c["task_type"] for c in cells}),
        "tiers": sorted({c["tier"] for c in cells}),
        "marks": {"good": PASS_RATE_GOOD, "poor": PASS_RATE_POOR},
        "requests": requests,
        "ok": ok,
        "pass_rate": pass_rate(ok, requests),
        "cells_good": sum(1 for c in cells if c["band"] == "good"),
        "cells_poor": sum(1 for c in cells if c["band"] == "poor"),
        "daily": {
            "days": days,
            "pass_rate": [
                pass_rate(_int(daily[d]["ok"]), _int(daily[d]["reqs"])) if d in daily else None for d in days
            ],
        },
    }


# --------------------------------------------------------------------------------------------
# Latency


def dashboard_latency(f: DashboardFilters) -> dict[str, Any]:
    """p50/p95/p99 per route and model from the histogram buckets, against the route's p95
    budget, and the daily p95 per route (2 queries)."""
    rows = []
    for r in (
        _cells(f)
        .values("route", "model")
        .order_by("route", "model")
        .annotate(attempts=Sum("count"), latency_sum=Sum("latency_sum_ms"), **_bucket_sums())
    ):
        buckets = _buckets(r)
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
    days = _days(f)
    per_day: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for r in (
        _cells(f)
        .annotate(day=TruncDay("hour"))
        .values("day", "route")
        .order_by("day", "route")
        .annotate(**_bucket_sums())
    ):
        per_day[r["route"]][_day(r["day"])] = _buckets(r)
    daily = [
        {
            "route": route,
            "p95": [latency_quantiles(values[d])["p95"] if d in values else None for d in days],
            "p95_budget_ms": route_expectations(f, route).get("latency_p95_ms"),
        }
        for route, values in sorted(per_day.items())
    ]
    return {"filters": f.as_dict(), "rows": rows, "days": days, "daily": daily, "bounds_ms": list(LATENCY_BOUNDS_MS)}


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
        _cells(f, start=start_dt, end=end_dt)
        .annotate(day=TruncDay("hour"))
        .values("day", "route")
        .order_by("day", "route")
        .annotate(cost=Sum("cost_usd"))
    ):
        per_day[_day(r["day"])] += _num(r["cost"])
        per_route[r["route"]] += _num(r["cost"])
    n_days = math.ceil(elapsed_days - 1e-9)
    days = [(month_first + timedelta(days=i)).isoformat() for i in range(int(period_days))]
    daily_spend = [per_day.get(d, 0.0) for d in days[:n_days]]
    cumulative, running = [], 0.0
    for spend in daily_spend:
        running += spend
        cumulative.append(running)
    forecast = forecast_linear(daily_spend, period_days, elapsed_days) if elapsed_days > 0 else None
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
        },
        "runway_days": None if runway is None or math.isinf(runway) else runway,
        "days_left": max(0.0, period_days - elapsed_days),
        "thresholds": thresholds,
        "routes": routes,
    }


# --------------------------------------------------------------------------------------------
# Routing worksheet


def _tier_models(route: Mapping[str, Any]) -> tuple[str | None, str | None]:
    tiers = route.get("tiers") or []
    primary = tiers[0].get("model") if tiers else None
    fallback = None
    if len(tiers) > 1:
        fallback = tiers[1].get("model")
    elif tiers and tiers[0].get("fallbacks"):
        fallback = tiers[0]["fallbacks"][0]
    return primary, fallback


def dashboard_worksheet(f: DashboardFilters) -> dict[str, Any]:
    """One row per task type: observed traffic, quality, latency and cost next to what the live
    policy says, and the date the policy's monthly report was last marked reviewed (2 queries)."""
    doc = f.document
    mapping: dict[str, str] = dict(doc.get("task_types") or {})
    observed: dict[str, dict[str, Any]] = {}
    route_requests: dict[str, dict[str, int]] = defaultdict(dict)
    for r in (
        _cells(f)
        .values("task_type", "route")
        .order_by("task_type", "route")
        .annotate(
            reqs=Sum("requests"),
            attempts=Sum("count"),
            ok=Sum("count", filter=_OK),
            tin=Sum("tokens_in"),
            tout=Sum("tokens_out"),
            cost=Sum("cost_usd"),
            **_bucket_sums(),
        )
    ):
        row = observed.setdefault(
            r["task_type"],
            {
                "requests": 0,
                "attempts": 0,
                "ok": 0,
                "tokens_in": 0,
                "tokens_out": 0,
                "cost": 0.0,
                "buckets": [0] * len(BUCKET_FIELDS),
            },
        )
        for key, alias in (
            ("requests", "reqs"),
            ("attempts", "attempts"),
            ("ok", "ok"),
            ("tokens_in", "tin"),
            ("tokens_out", "tout"),
        ):
            row[key] += _int(r[alias])
        row["cost"] += _num(r["cost"])
        row["buckets"] = [a + b for a, b in zip(row["buckets"], _buckets(r), strict=True)]
        route_requests[r["task_type"]][r["route"]] = _int(r["reqs"])
    total_requests = sum(row["requests"] for row in observed.values())
    reviewed = (
        (
            ReportReview.objects.filter(policy_id=f.policy.pk)
            .order_by("-reviewed_at", "-id")
            .values_list("reviewed_at", flat=True)
            .first()
        )
        if f.policy
        else None
    )
    last_review = reviewed.astimezone(UTC).date().isoformat() if reviewed else None
    task_types: Iterable[str] = sorted(set(observed) | ({f.task_type} if f.task_type else set(mapping)))
    rows = []
    for tt in task_types:
        obs = observed.get(tt)
        if tt in mapping:
            route = mapping[tt]
        elif route_requests.get(tt):
            route = max(route_requests[tt].items(), key=lambda kv: kv[1])[0]
        else:
            route = doc.get("default_route") or ""
        settings = route_settings(f, route)
        primary, fallback = _tier_models(settings)
        escalate = settings.get("escalate")
        q = latency_quantiles(obs["buckets"]) if obs else {"p50": None, "p95": None, "p99": None}
        rows.append(
            {
                "task_type": tt,
                "route": route,
                "requests": obs["requests"] if obs else 0,
                "traffic_share": ratio(obs["requests"], total_requests) if obs else None,
                "quality_threshold": route_expectations(f, route).get("min_pass_rate"),
                "primary_model": primary,
                "fallback_model": fallback,
                "avg_tokens_in": ratio(obs["tokens_in"], obs["attempts"]) if obs else None,
                "avg_tokens_out": ratio(obs["tokens_out"], obs["attempts"]) if obs else None,
                "validation_rule": None if escalate is None else bool(escalate.get("on_validation_failure", False)),
                "pass_rate": pass_rate(obs["ok"], obs["requests"]) if obs else None,
                "p50_ms": q["p50"],
                "p95_ms": q["p95"],
                "cost_per_request_usd": ratio(obs["cost"], obs["requests"]) if obs else None,
                "last_review": last_review,
            }
        )
    rows.sort(key=lambda row: (-row["requests"], row["task_type"]))
    return {"filters": f.as_dict(), "rows": rows, "requests": total_requests}
