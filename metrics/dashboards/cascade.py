"""What the tier cascade did: Escalation (each transition's rate per route against its band
from `metrics.rules.bands`, the funnel, the direct-route advisory, the daily rates) and Quality
(pass rate per task type and tier, the daily request pass rate)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncDay

from metrics.dashboards.definitions import (
    DIRECT_ROUTE_ADVISORY_RATE,
    OK,
    PASS_RATE_GOOD,
    PASS_RATE_POOR,
    day_key,
    escalation_bands,
    pass_rate,
    range_cells,
    range_days,
)
from metrics.dashboards.filters import DashboardFilters
from metrics.rules import bands as band_rules
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import ratio

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
        range_cells(f)
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

    routes: list[dict[str, Any]] = []
    for route, tiers in sorted(per_route.items()):
        bands = escalation_bands(f, route, observed_tiers=max(tiers, default=1))
        steps = _cascade(tiers, len(bands))
        for step, band in zip(steps, bands, strict=True):
            step["band"] = band.as_dict() if band else None
            step["status"] = band_rules.status(band, step["rate"]) if step["reached"] else band_rules.NO_DATA
        routes.append({"route": route, "requests": sum(t["requests"] for t in tiers.values()), "steps": steps})
    # Every route answers for every transition shown, at least tier 1→2 and 2→3 (a shorter route: "no tier").
    depth = max([2, *(len(r["steps"]) for r in routes)])
    for route_row in routes:
        for t in range(len(route_row["steps"]) + 1, depth + 1):
            route_row["steps"].append(
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

    days = range_days(f)
    daily: dict[str, dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for cell in (
        range_cells(f)
        .annotate(day=TruncDay("hour"))
        .values("day", "tier")
        .order_by("day", "tier")
        .annotate(reqs=Sum("requests"), escs=Sum("escalations"))
    ):
        daily[day_key(cell["day"])][cell["tier"]]["requests"] += _int(cell["reqs"])
        daily[day_key(cell["day"])][cell["tier"]]["escalations"] += _int(cell["escs"])
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
        range_cells(f)
        .values("task_type", "tier")
        .order_by("task_type", "tier")
        .annotate(attempts=Sum("count"), ok=Sum("count", filter=OK))
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
    days = range_days(f)
    daily = {
        day_key(r["day"]): r
        for r in (
            range_cells(f)
            .annotate(day=TruncDay("hour"))
            .values("day")
            .order_by("day")
            .annotate(reqs=Sum("requests"), ok=Sum("count", filter=OK))
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
