"""What every dashboard page shares: the cells of a filtered range, the day keys, the route's
settings in the live document, the version markers, and the definitions of the numbers.

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

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from django.db.models import Q, QuerySet, Sum

from metrics.dashboards.filters import DashboardFilters
from metrics.models import BUCKET_FIELDS, RollupHourly
from metrics.rollups.selectors import rollup_range_cells
from metrics.rules import bands as band_rules
from metrics.rules.latency import buckets_of
from metrics.rules.numbers import ratio
from routing.models import PolicyVersion

# "Fallback rate above 40%: route this task type directly to the stronger tier."
DIRECT_ROUTE_ADVISORY_RATE = 0.40
PASS_RATE_GOOD = 0.95
PASS_RATE_POOR = 0.75
OK = Q(outcome="ok")


def range_cells(
    f: DashboardFilters, *, start: datetime | None = None, end: datetime | None = None
) -> QuerySet[RollupHourly]:
    """The rollup cells of the filtered policy, route, task type and model over the range (or
    over [start, end) when given), through `metrics.rollups.selectors`."""
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


def bucket_counts(row: Mapping[str, Any]) -> list[int]:
    """The latency bucket counts of a row annotated with `bucket_sums()`."""
    return buckets_of(row, "s_")


def bucket_sums() -> dict[str, Sum]:
    """One SUM per latency bucket, aliased `s_<bucket>`."""
    # Aliases must not shadow the model's fields.
    return {f"s_{name}": Sum(name) for name in BUCKET_FIELDS}


def day_key(value: datetime | date) -> str:
    """The ISO date a day's figures are keyed by."""
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def range_days(f: DashboardFilters) -> list[str]:
    """Every day of the range as its ISO date, oldest first."""
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
            # published_at__gte above excludes the NULLs of drafts.
            "at": cast(datetime, row["published_at"]).astimezone(UTC).isoformat(),
            "rollback_of": row["rollback_of"],
            "label": f"v{row['number']}" + (f" ↺ v{row['rollback_of']}" if row["rollback_of"] else ""),
            "comment": row["comment"],
        }
        for row in rows
    ]


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


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """None as an empty cell; text that a spreadsheet would run as a formula, quoted (every CSV
    export: the report's tables, the attribution table)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
