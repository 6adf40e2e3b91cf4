"""Every read the monthly review report needs: one policy's calendar month against the month before.

`monthly_report()` returns plain JSON-ready data; the page, its CSV tables, `report.json` and the
management API all render that one dict, so they always show the same numbers. It runs a fixed
number of queries whatever the volume (see `REPORT_QUERIES`):
1. the month and the previous month in one GROUP BY over the daily rollups (route × task type × model ×
   tier, with each measure summed per month): summary, per task type, per route, movers and the
   recommendations all come from it;
2. the month per day × task type × tier (the charts);
3. versions published in the month, each with its audit entry's author (policy changes, markers);
4. alerts open at some moment of the month (raised in it or still open from before);
5. the month's reviews;
6. the policy's draft, for the what-if of the recommendations (docs/whatif.md); only with a draft,
   the what-if's own reads follow (its rollup query and the catalog prices).

Definitions are the dashboards' (`metrics.dashboards.selectors`): requests are attempt-1 records,
pass rate = ok attempts / requests (capped at 100%), escalation rate = escalated attempts /
requests, tier t→t+1 rate = escalations into t+1 / requests that reached t, cost per request =
priced cost / requests; p95 comes from the rollups' latency histograms. How each recommendation's
savings are estimated is in docs/reports.md.

The sums and measures are `metrics.reports.sums`, the recommendations
`metrics.reports.recommendations`, the CSV tables `metrics.reports.tables`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import CharField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Cast, Concat, TruncDay
from django.utils import timezone

from controlplane.errors import InvalidInput, NotFound
from metrics.alerts import selectors as alert_selectors
from metrics.dashboards import selectors as sel
from metrics.models import BUCKET_FIELDS, Alert, ReportReview
from metrics.reports.recommendations import report_recommendations
from metrics.reports.sums import METRICS, MonthSums, compare, group
from metrics.rollups import selectors as rollup_selectors
from metrics.rules.numbers import num as _num
from metrics.rules.numbers import ratio
from metrics.rules.periods import day_of, midnight, month_end, month_next, month_previous, month_start
from metrics.schema import BUILTIN_DIMENSIONS
from routing import selectors as routing_selectors
from routing.models import AuditEntry, Policy, PolicyVersion

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

MONTH_FORMAT = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits, matched whole (no trailing newline)
TOP_MOVERS = 5
REPORT_QUERIES = 6  # without a draft
_OK = Q(outcome="ok")


class _AuditAnnotations(TypedDict):
    """What `_published_versions` annotates on each version from its audit entry."""

    audit_actor: str | None
    audit_diff: Any  # the entry's JSON diff: a list of changes, or whatever an older entry holds


# --------------------------------------------------------------------------------------------
# Months


def report_month_parse(value: str, *, today: date | None = None) -> date:
    """The first day of the month named `YYYY-MM`; a clear 400 for anything else, a 404 for a
    month that has not started yet."""
    match = MONTH_FORMAT.fullmatch(value or "")
    if match is None:
        shown = (value or "")[:20].replace("\x00", "")
        raise InvalidInput(f"'{shown}' is not a month: use YYYY-MM, e.g. 2025-03.", {"month": ["expected YYYY-MM"]})
    year, number = int(match[1]), int(match[2])
    if not 1 <= number <= 12:
        raise InvalidInput(
            f"'{value}' is not a month: the month number runs from 01 to 12.",
            {"month": ["month number must be 01 to 12"]},
        )
    if (year, number) < (sel.FIRST_DATE.year, sel.FIRST_DATE.month):  # before date(): year 0 does not exist
        raise InvalidInput(
            f"Reports start in {sel.FIRST_DATE:%B %Y}.", {"month": [f"must be {sel.FIRST_DATE:%Y-%m} or later"]}
        )
    first = date(year, number, 1)
    today = today or timezone.now().astimezone(UTC).date()
    if first > today:
        raise NotFound(
            f"{first:%B %Y} has not started yet: reports exist up to {today:%B %Y}.", {"month": ["in the future"]}
        )
    return first


def report_last_full_month(*, today: date | None = None) -> date:
    """The first day of the last month that is over."""
    today = today or timezone.now().astimezone(UTC).date()
    return month_previous(today)


# --------------------------------------------------------------------------------------------
# Queries


def _month_cells(policy: Policy, start: date, end: date) -> Any:
    """The cells of whole days [start, end]: the daily rollup, addressed as `hour` like the hourly one."""
    return rollup_selectors.rollup_range_cells(
        policy_id=policy.pk, start=midnight(start), end=midnight(end + timedelta(days=1))
    )


def _two_month_rows(policy: Policy, first: date) -> list[dict[str, Any]]:
    """Query 1: per route × task type × model × tier, every measure summed per month
    (prefix c_ for the month, p_ for the month before)."""
    previous = month_previous(first)
    split = midnight(first)
    periods = {"c_": Q(hour__gte=split), "p_": Q(hour__lt=split)}
    measures: dict[str, Sum] = {}
    for prefix, period in periods.items():
        measures.update(
            {
                f"{prefix}cost": Sum("cost_usd", filter=period),
                f"{prefix}requests": Sum("requests", filter=period),
                f"{prefix}attempts": Sum("count", filter=period),
                f"{prefix}ok": Sum("count", filter=period & _OK),
                f"{prefix}escalations": Sum("escalations", filter=period),
                f"{prefix}unpriced": Sum("unpriced", filter=period),
                **{f"{prefix}{name}": Sum(name, filter=period) for name in BUCKET_FIELDS},
            }
        )
    return list(
        _month_cells(policy, previous, month_end(first))
        .values("route", "task_type", "model", "provider", "tier")
        .order_by("route", "task_type", "model", "provider", "tier")
        .annotate(**measures)
    )


def _daily_rows(policy: Policy, first: date) -> list[dict[str, Any]]:
    """Query 2: the month per day × task type × tier."""
    return list(
        _month_cells(policy, first, month_end(first))
        .annotate(day=TruncDay("hour"))
        .values("day", "task_type", "tier")
        .order_by("day", "task_type", "tier")
        .annotate(cost=Sum("cost_usd"), reqs=Sum("requests"), ok=Sum("count", filter=_OK), escs=Sum("escalations"))
    )


def _published_versions(policy: Policy, first: date) -> list[WithAnnotations[PolicyVersion, _AuditAnnotations]]:
    """Query 3: versions published in the month, oldest first, each with the username its audit
    entry recorded (`audit_actor`) and the number of document paths it changed (`audit_diff`)."""
    entry = AuditEntry.objects.filter(
        policy_id=OuterRef("policy_id"),
        action__in=[AuditEntry.Action.PUBLISH, AuditEntry.Action.ROLLBACK],
        target=Concat(Value(f"{policy.slug}:v"), Cast(OuterRef("number"), output_field=CharField())),
    ).order_by("-created_at", "-id")
    return list(
        routing_selectors.policy_versions(policy)
        .filter(published_at__gte=midnight(first), published_at__lt=midnight(month_next(first)))
        .annotate(audit_actor=Subquery(entry.values("actor_label")[:1]), audit_diff=Subquery(entry.values("diff")[:1]))
        .order_by("published_at", "number")
    )


def _alerts(policy: Policy, first: date) -> list[Alert]:
    """Query 4: alerts open at some moment of the month (raised in it, or still open from
    before), newest first."""
    return list(alert_selectors.alert_list(policy=policy, since=midnight(first), until=midnight(month_next(first))))


def report_reviews(policy: Policy, first: date) -> list[ReportReview]:
    """Query 5: the month's reviews, newest first."""
    return list(ReportReview.objects.filter(policy_id=policy.pk, month=first).order_by("-reviewed_at", "-id"))


# --------------------------------------------------------------------------------------------
# The report


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _table(groups: dict[Any, tuple[MonthSums, MonthSums]], name: str) -> list[dict[str, Any]]:
    rows = [{name: k, "metrics": compare(cur, prev)} for k, (cur, prev) in groups.items()]
    rows.sort(
        key=lambda r: (
            -(r["metrics"]["cost_usd"]["current"] or 0),
            -(r["metrics"]["requests"]["current"] or 0),
            r[name],
        )
    )
    return rows


def _movers(groups: dict[str, dict[Any, tuple[MonthSums, MonthSums]]]) -> dict[str, list[dict[str, Any]]]:
    rows = []
    for dimension, by_name in groups.items():
        for name, (cur, prev) in by_name.items():
            change = cur.cost - prev.cost
            rows.append(
                {
                    "dimension": dimension,
                    "name": name,
                    "cost_usd": cur.cost,
                    "previous_cost_usd": prev.cost,
                    "change_usd": change,
                    "change_pct": ratio(change, prev.cost) if prev.cost else None,
                }
            )
    moved = [r for r in rows if r["change_usd"]]
    absolute = sorted(moved, key=lambda r: (-abs(r["change_usd"]), r["dimension"], r["name"]))[:TOP_MOVERS]
    relative = sorted(
        (r for r in moved if r["change_pct"] is not None),
        key=lambda r: (-abs(r["change_pct"]), -abs(r["change_usd"]), r["dimension"], r["name"]),
    )
    return {"absolute": absolute, "relative": relative[:TOP_MOVERS]}


def _changes(versions: list[WithAnnotations[PolicyVersion, _AuditAnnotations]]) -> list[dict[str, Any]]:
    changes = []
    for v in versions:
        diff = v.audit_diff if isinstance(v.audit_diff, list) else []
        changes.append(
            {
                "version": v.number,
                "previous_version": v.number - 1 if v.number and v.number > 1 else None,
                "action": "rollback" if v.rollback_of else "publish",
                "rollback_of": v.rollback_of,
                "at": _iso(v.published_at),
                "by": v.audit_actor or (v.author.get_username() if v.author else "system"),
                "comment": v.comment,
                "changed_paths": [c.get("path", "") for c in diff if isinstance(c, dict)][:20],
                "changed_count": len(diff),
            }
        )
    return changes


def _markers(versions: Sequence[PolicyVersion]) -> list[dict[str, Any]]:
    return [
        {
            "version": v.number,
            "at": _iso(v.published_at),
            "rollback_of": v.rollback_of,
            "label": f"v{v.number}" + (f" ↺ v{v.rollback_of}" if v.rollback_of else ""),
            "comment": v.comment,
        }
        for v in versions
    ]


def _daily(rows: list[dict[str, Any]], first: date) -> dict[str, Any]:
    days = [(first + timedelta(days=i)).isoformat() for i in range((month_end(first) - first).days + 1)]
    cost: dict[str, dict[str, float]] = defaultdict(dict)
    per_day: dict[str, MonthSums] = defaultdict(MonthSums)
    for r in rows:
        day = (r["day"].date() if isinstance(r["day"], datetime) else r["day"]).isoformat()
        cost[r["task_type"]][day] = cost[r["task_type"]].get(day, 0.0) + _num(r["cost"])
        per_day[day].add(
            {
                "cost": r["cost"],
                "requests": r["reqs"],
                "attempts": 0,
                "ok": r["ok"],
                "escalations": r["escs"],
                "unpriced": 0,
                "tier": r["tier"],
                **dict.fromkeys(BUCKET_FIELDS, 0),
            },
            "",
        )
    series = [
        {"task_type": tt, "cost_usd": [values.get(d, 0.0) for d in days]}
        for tt, values in sorted(cost.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    ]
    return {
        "days": days,
        "cost_by_task_type": series,
        "cost_usd": [per_day[d].cost if d in per_day else 0.0 for d in days],
        "requests": [per_day[d].requests if d in per_day else 0 for d in days],
        "tier_1_to_2": [per_day[d].step_rate(1) if d in per_day else None for d in days],
        "tier_2_to_3": [per_day[d].step_rate(2) if d in per_day else None for d in days],
        "pass_rate": [sel.pass_rate(per_day[d].ok, per_day[d].requests) if d in per_day else None for d in days],
    }


def monthly_report(policy: Policy, first: date, *, now: datetime | None = None) -> dict[str, Any]:
    """The monthly review report of `policy` for the month starting on `first` (REPORT_QUERIES
    queries, plus the what-if's own when the policy has a draft)."""
    now = (now or timezone.now()).astimezone(UTC)
    previous, last = month_previous(first), month_end(first)
    label, previous_label = first.strftime("%B %Y"), previous.strftime("%B %Y")
    f = sel.DashboardFilters(policy=policy, start=first, end=last)

    rows = _two_month_rows(policy, first)
    overall = group(rows, lambda r: "all").get("all", (MonthSums(), MonthSums()))
    by_task = group(rows, lambda r: r["task_type"])
    by_route = group(rows, lambda r: r["route"])
    by_model = group(rows, lambda r: r["model"])
    by_route_task = group(rows, lambda r: (r["route"], r["task_type"]))
    compared = compare(*overall)
    summary = [{"metric": key, "label": name, "unit": unit, **compared[key]} for key, name, unit in METRICS]

    versions = _published_versions(policy, first)
    daily = _daily(_daily_rows(policy, first), first)
    alerts = [
        {
            "opened_at": _iso(a.opened_at),
            "raised_in_month": a.opened_at >= midnight(first),
            "route": a.route,
            "detector": a.detector,
            "severity": a.severity,
            "status": a.status,
            "summary": a.summary,
            "resolved_at": _iso(a.resolved_at),
        }
        for a in _alerts(policy, first)
    ]
    reviews = [
        {"reviewed_by": r.reviewed_by_label, "reviewed_at": _iso(r.reviewed_at), "note": r.note}
        for r in report_reviews(policy, first)
    ]
    return {
        "policy": {
            "slug": policy.slug,
            "name": policy.name,
            "live_version": policy.live_version.number if policy.live_version else None,
        },
        "month": first.strftime("%Y-%m"),
        "month_label": label,
        "start": first.isoformat(),
        "end": last.isoformat(),
        "previous_month": previous.strftime("%Y-%m"),
        "previous_month_label": previous_label,
        "previous_start": previous.isoformat(),
        "previous_end": month_end(previous).isoformat(),
        "complete": now >= midnight(last + timedelta(days=1)),
        "has_data": not overall[0].empty,
        "previous_has_data": not overall[1].empty,
        "summary": summary,
        "task_types": _table(by_task, "task_type"),
        "routes": _table(by_route, "route"),
        "movers": _movers({"task_type": by_task, "model": by_model}),
        "changes": _changes(versions),
        "alerts": alerts,
        "recommendations": report_recommendations(f, by_route, by_route_task, label),
        "canaries": _canaries(f),
        "by_dimension": _by_dimension(f),
        "reviews": reviews,
        "daily": daily,
        "markers": _markers(versions),
    }


def _canaries(f: sel.DashboardFilters) -> list[dict[str, Any]]:
    """The live version's splits judged over the month (the canary page's numbers, without the
    hourly series); no query when the live version has no split."""
    if not any(isinstance(r, dict) and r.get("split") for r in (f.document.get("routes") or {}).values()):
        return []
    return [{k: v for k, v in s.items() if k != "hourly"} for s in sel.dashboard_canary(f)["splits"]]


TOP_VALUES = 10  # rows per dimension in the report ("cost by team", top tenants); the rest summed


def _by_dimension(f: sel.DashboardFilters) -> list[dict[str, Any]]:
    """Per attribute key the live version declares: the month's TOP_VALUES costliest values and
    everything else summed, each against the previous month (the attribution table's numbers,
    `dashboard_attribution`: 2 queries per declared dimension, none without)."""
    declared = [k for k in sel.dimension_choices(f) if k not in BUILTIN_DIMENSIONS]
    out = []
    for key in declared:
        data = sel.dashboard_attribution(f, sel.AttributionQuery(dimension=key, top=TOP_VALUES))
        out.append(
            {
                "dimension": key,
                "rows": data["rows"],
                "values": data["values"],
                "total_cost_usd": data["total_cost_usd"],
                "total": data["total"],
                "previous_period": data["previous_period"],
                "folded": data["folded"],
            }
        )
    return out


def report_latest_month_with_data(policy: Policy) -> date | None:
    """The month of the policy's newest rollup cell (for the empty state's pointer; one query)."""
    newest = rollup_selectors.rollup_newest_hour(policy.pk)
    return month_start(day_of(newest)) if newest else None
