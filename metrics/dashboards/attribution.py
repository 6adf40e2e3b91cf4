"""The Attribution page: cost, requests, cost per request, escalation and pass rate by a value of one
dimension (the split arm, the client app, or an attribute key the policy declares), narrowed by the
route, task type and model filters (route × team, tenant × model), from the dimension rollups."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, Sum

from metrics.dashboards.definitions import pass_rate
from metrics.dashboards.filters import DashboardFilters
from metrics.rollups.selectors import dimension_cells
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.rules.numbers import ratio
from metrics.schema import BUILTIN_DIMENSIONS, DIMENSION_NONE, DIMENSION_OTHER, DIMENSION_VALUES_PER_DAY

SORTS = ("cost_usd", "requests", "cost_per_request_usd", "escalation_rate", "pass_rate", "value")
# What the page's sort menu says of each (the API takes the keys).
SORT_LABELS = {
    "cost_usd": "cost",
    "requests": "requests",
    "cost_per_request_usd": "cost per request",
    "escalation_rate": "escalation rate",
    "pass_rate": "pass rate",
    "value": "name",
}
DEFAULT_SORT = "cost_usd"


def dimension_choices(f: DashboardFilters) -> list[str]:
    """The dimensions of the filtered policy: the built-in ones, then those its live version declares."""
    declared = [k for k in (f.document.get("dimensions") or []) if isinstance(k, str)]
    return [*BUILTIN_DIMENSIONS, *declared]


def dashboard_attribution(f: DashboardFilters, dimension: str, sort: str = DEFAULT_SORT) -> dict[str, Any]:
    """One row per value of `dimension` over the range and filters (1 query), sorted by `sort`
    (descending; "value" ascending), with the totals and whether values were folded into (other)."""
    filters: dict[str, Any] = {}
    if f.route:
        filters["route"] = f.route
    if f.task_type:
        filters["task_type"] = f.task_type
    if f.model:
        filters["model"] = f.model
    rows = []
    if f.policy is not None:
        cells = dimension_cells(
            policy_id=f.policy.pk, dim_key=dimension, start=f.start_dt, end=f.end_dt, filters=filters
        )
        for r in (
            cells.values("dim_value")
            .order_by("dim_value")
            .annotate(
                cost=Sum("cost_usd"),
                n_requests=Sum("requests"),
                n_escalations=Sum("escalations"),
                n_ok=Sum("count", filter=Q(outcome="ok")),
                n_unpriced=Sum("unpriced"),
            )
        ):
            requests = _int(r["n_requests"])
            rows.append(
                {
                    "value": r["dim_value"],
                    "cost_usd": _num(r["cost"]),
                    "requests": requests,
                    "cost_per_request_usd": ratio(_num(r["cost"]), requests),
                    "escalation_rate": ratio(_int(r["n_escalations"]), requests),
                    "pass_rate": pass_rate(_int(r["n_ok"]), requests),
                    "unpriced": _int(r["n_unpriced"]),
                }
            )
    sort = sort if sort in SORTS else DEFAULT_SORT
    if sort == "value":
        rows.sort(key=lambda row: row["value"])
    else:
        rows.sort(key=lambda row: (row[sort] is None, -(row[sort] or 0.0), row["value"]))
    total_cost = sum(r["cost_usd"] for r in rows)
    for r in rows:
        r["cost_share"] = ratio(r["cost_usd"], total_cost)
    return {
        "filters": f.as_dict(),
        "dimension": dimension,
        "dimensions": dimension_choices(f),
        "sort": sort,
        "rows": rows,
        "total_cost_usd": total_cost,
        "total_requests": sum(r["requests"] for r in rows),
        "folded": any(r["value"] == DIMENSION_OTHER for r in rows),
        "cap_per_day": DIMENSION_VALUES_PER_DAY,
        "none_label": DIMENSION_NONE,
    }
