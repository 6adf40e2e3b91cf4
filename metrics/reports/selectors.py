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
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import CharField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Cast, Concat, TruncDay
from django.utils import timezone

from controlplane.errors import InvalidInput, NotFound
from metrics.alerts import selectors as alert_selectors
from metrics.dashboards import selectors as sel
from metrics.models import BUCKET_FIELDS, Alert, ReportReview
from metrics.rollups import selectors as rollup_selectors
from metrics.rules.latency import latency_quantiles
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.rules.numbers import ratio
from metrics.rules.periods import midnight, month_end, month_next, month_previous
from metrics.whatif.replay import whatif_for_report
from routing import selectors as routing_selectors
from routing.models import AuditEntry, Policy, PolicyVersion

MONTH_FORMAT = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits, matched whole (no trailing newline)
TOP_MOVERS = 5
# A route's tier 1 "is good enough" at this per-tier pass rate (the Quality page's 95% mark)…
TIER1_SUFFICIENT_PASS_RATE = sel.PASS_RATE_GOOD
# …measured over at least this many tier-1 attempts in the month.
MIN_TIER1_ATTEMPTS = 50
DIRECT_ROUTE_ADVISORY_RATE = sel.DIRECT_ROUTE_ADVISORY_RATE
REPORT_QUERIES = 6  # without a draft
_OK = Q(outcome="ok")

# (key, label, unit): the measures compared month against month, in display order. Units:
# usd, usd_per_request, count, rate (a fraction; changes in percentage points), ms.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "Spend", "usd"),
    ("requests", "Requests", "count"),
    ("cost_per_request_usd", "Cost per request", "usd_per_request"),
    ("escalation_rate", "Escalation rate", "rate"),
    ("tier_1_to_2_rate", "Tier 1 → 2 rate", "rate"),
    ("tier_2_to_3_rate", "Tier 2 → 3 rate", "rate"),
    ("pass_rate", "Pass rate", "rate"),
    ("p95_ms", "p95 latency", "ms"),
    ("unpriced", "Unpriced decisions", "count"),
)
METRIC_KEYS = tuple(key for key, _, _ in METRICS)

# The report's tables, as offered for CSV download (…/<table>.csv).
TABLES = ("summary", "task_types", "routes", "movers", "changes", "alerts", "recommendations")


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
# Sums and the metrics drawn from them


@dataclass
class _Sums:
    """Additive sums of one group of rollup cells in one month."""

    cost: float = 0.0
    requests: int = 0
    attempts: int = 0
    ok: int = 0
    escalations: int = 0
    unpriced: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_FIELDS))
    # tier -> [requests started at that tier, escalations into it, attempts, ok attempts, cost]
    tiers: dict[int, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0.0]))

    def add(self, row: Mapping[str, Any], prefix: str) -> None:
        cost, requests = _num(row[f"{prefix}cost"]), _int(row[f"{prefix}requests"])
        attempts, ok = _int(row[f"{prefix}attempts"]), _int(row[f"{prefix}ok"])
        escalations = _int(row[f"{prefix}escalations"])
        self.cost += cost
        self.requests += requests
        self.attempts += attempts
        self.ok += ok
        self.escalations += escalations
        self.unpriced += _int(row[f"{prefix}unpriced"])
        for i, name in enumerate(BUCKET_FIELDS):
            self.buckets[i] += _int(row[f"{prefix}{name}"])
        tier = self.tiers[row["tier"]]
        for i, value in enumerate((requests, escalations, attempts, ok, cost)):
            tier[i] += value

    def max_tier(self) -> int:
        return max(self.tiers, default=1)

    def reached(self, tier: int) -> int:
        """Requests that reached `tier`: started there or escalated into it."""
        t = self.tiers.get(tier)
        return int(t[0] + t[1]) if t else 0

    def escalated_into(self, tier: int) -> int:
        t = self.tiers.get(tier)
        return int(t[1]) if t else 0

    def step_rate(self, tier: int) -> float | None:
        """Tier `tier` → `tier + 1` rate."""
        return ratio(self.escalated_into(tier + 1), self.reached(tier))

    def tier_cost_per_request(self, tier: int) -> float | None:
        """Cost of the attempts at `tier` (fallbacks included) / requests that reached it."""
        t = self.tiers.get(tier)
        return ratio(float(t[4]), self.reached(tier)) if t else None

    def tier_pass_rate(self, tier: int) -> float | None:
        """ok attempts / attempts at `tier` (the Quality page's per-tier pass rate)."""
        t = self.tiers.get(tier)
        return ratio(int(t[3]), int(t[2])) if t else None

    def metrics(self) -> dict[str, Any]:
        return {
            "cost_usd": self.cost,
            "requests": self.requests,
            "cost_per_request_usd": ratio(self.cost, self.requests),
            "escalation_rate": ratio(self.escalations, self.requests),
            "tier_1_to_2_rate": self.step_rate(1),
            "tier_2_to_3_rate": self.step_rate(2),
            "pass_rate": sel.pass_rate(self.ok, self.requests),
            "p95_ms": latency_quantiles(self.buckets)["p95"],
            "unpriced": self.unpriced,
        }

    @property
    def empty(self) -> bool:
        return not (self.attempts or self.cost)


def _delta(current: float | None, previous: float | None) -> dict[str, float | None]:
    """{current, previous, change (absolute; percentage points for rates), change_pct (relative)}."""
    change = None if current is None or previous is None else current - previous
    return {
        "current": current,
        "previous": previous,
        "change": change,
        "change_pct": ratio(change, previous) if change is not None and previous else None,
    }


def _compare(current: _Sums, previous: _Sums) -> dict[str, dict[str, float | None]]:
    cur, prev = current.metrics(), previous.metrics()
    return {key: _delta(cur[key], prev[key]) for key in METRIC_KEYS}


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


def _published_versions(policy: Policy, first: date) -> list[PolicyVersion]:
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


def _group(rows: list[dict[str, Any]], key: Any) -> dict[Any, tuple[_Sums, _Sums]]:
    groups: dict[Any, tuple[_Sums, _Sums]] = {}
    for row in rows:
        k = key(row)
        if k not in groups:
            groups[k] = (_Sums(), _Sums())
        groups[k][0].add(row, "c_")
        groups[k][1].add(row, "p_")
    return groups


def _table(groups: dict[Any, tuple[_Sums, _Sums]], name: str) -> list[dict[str, Any]]:
    rows = [{name: k, "metrics": _compare(cur, prev)} for k, (cur, prev) in groups.items()]
    rows.sort(
        key=lambda r: (
            -(r["metrics"]["cost_usd"]["current"] or 0),
            -(r["metrics"]["requests"]["current"] or 0),
            r[name],
        )
    )
    return rows


def _movers(groups: dict[str, dict[Any, tuple[_Sums, _Sums]]]) -> dict[str, list[dict[str, Any]]]:
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


def _recommendation(
    kind: str,
    route: str,
    message: str,
    *,
    task_type: str | None = None,
    transition: str | None = None,
    observed_rate: float | None = None,
    threshold: float | None = None,
    affected_requests: int | float | None = None,
    from_cost: float | None = None,
    to_cost: float | None = None,
    savings: float | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "route": route,
        "task_type": task_type,
        "transition": transition,
        "observed_rate": observed_rate,
        "threshold": threshold,
        "affected_requests": affected_requests,
        "cost_per_request_from_usd": from_cost,
        "cost_per_request_to_usd": to_cost,
        "estimated_monthly_savings_usd": savings,
        "message": message,
    }


def _recommendations(
    f: sel.DashboardFilters,
    by_route: dict[str, tuple[_Sums, _Sums]],
    by_route_task: dict[tuple[str, str], tuple[_Sums, _Sums]],
    label: str,
) -> dict[str, Any]:
    """Savings estimates from the month's numbers (docs/reports.md says how each is computed)."""
    items: list[dict[str, Any]] = []
    for route, (cur, _) in sorted(by_route.items()):
        # 1. Tier 1 passes ≥ 95% of its attempts, yet requests are served at tier 2.
        t1 = cur.tiers.get(1)
        pass1, reached2 = cur.tier_pass_rate(1), cur.reached(2)
        cpr1, cpr2 = cur.tier_cost_per_request(1), cur.tier_cost_per_request(2)
        if (
            t1
            and t1[2] >= MIN_TIER1_ATTEMPTS
            and pass1 is not None
            and pass1 >= TIER1_SUFFICIENT_PASS_RATE
            and reached2
            and cpr1 is not None
            and cpr2 is not None
            and cpr2 > cpr1
        ):
            savings = reached2 * (cpr2 - cpr1)
            items.append(
                _recommendation(
                    "tier1_sufficient",
                    route,
                    f"Route {route}: tier 1 passed {pass1:.1%} of its attempts in {label}, yet {reached2:,} requests "
                    f"were served at tier 2 (${cpr2:.4f} vs ${cpr1:.4f} per request): serve them at tier 1 "
                    "(raise the escalation threshold or route them to tier 1).",
                    transition="1→2",
                    observed_rate=pass1,
                    threshold=TIER1_SUFFICIENT_PASS_RATE,
                    affected_requests=reached2,
                    from_cost=cpr2,
                    to_cost=cpr1,
                    savings=savings,
                )
            )
        # 2. Escalation above the route's band: savings from bringing the rate back to its top.
        for i, band in enumerate(sel.escalation_bands(f, route, observed_tiers=cur.max_tier())):
            tier = i + 1
            reached, rate = cur.reached(tier), cur.step_rate(tier)
            if band is None or rate is None or rate <= band.hi:
                continue  # no band (a deep transition nothing declares) is not judged
            excess = cur.escalated_into(tier + 1) - band.hi * reached
            cpr_up = cur.tier_cost_per_request(tier + 1)
            savings = excess * cpr_up if cpr_up is not None else None
            items.append(
                _recommendation(
                    "over_band",
                    route,
                    f"Route {route}: tier {tier} → {tier + 1} escalation was {rate:.1%} in {label}, above its "
                    f"{band.text} band: {excess:,.0f} fewer escalations at the band's top "
                    f"would not pay tier {tier + 1}'s ${cpr_up or 0:.4f} per request.",
                    transition=f"{tier}→{tier + 1}",
                    observed_rate=rate,
                    threshold=band.hi,
                    affected_requests=excess,
                    from_cost=cpr_up,
                    to_cost=None,
                    savings=savings,
                )
            )
    # 3. The advisory: a task type whose tier-1 requests mostly fall back to tier 2.
    for (route, task_type), (cur, _) in sorted(by_route_task.items()):
        rate = cur.step_rate(1)
        if rate is not None and rate > DIRECT_ROUTE_ADVISORY_RATE:
            items.append(
                _recommendation(
                    "direct_route",
                    route,
                    f"{task_type}: {rate:.1%} of tier-1 requests fall back to tier 2 (above 40%): route this task "
                    "type directly to the stronger tier.",
                    task_type=task_type,
                    transition="1→2",
                    observed_rate=rate,
                    threshold=DIRECT_ROUTE_ADVISORY_RATE,
                    affected_requests=cur.reached(1),
                    from_cost=cur.tier_cost_per_request(1),
                    to_cost=cur.tier_cost_per_request(2),
                    savings=None,
                )
            )
    total = sum(item["estimated_monthly_savings_usd"] or 0.0 for item in items)
    return {"items": items, "total_savings_usd": total, "whatif": report_whatif_estimate(f)}


def report_whatif_estimate(f: sel.DashboardFilters) -> dict[str, Any] | None:
    """The what-if replay of the policy's draft against the month's traffic (docs/whatif.md), or
    None when the policy has no draft."""
    if f.policy is None:
        return None
    return whatif_for_report(f.policy, f.start, f.end)


def _changes(versions: list[PolicyVersion]) -> list[dict[str, Any]]:
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


def _markers(versions: list[PolicyVersion]) -> list[dict[str, Any]]:
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
    per_day: dict[str, _Sums] = defaultdict(_Sums)
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
    overall = _group(rows, lambda r: "all").get("all", (_Sums(), _Sums()))
    by_task = _group(rows, lambda r: r["task_type"])
    by_route = _group(rows, lambda r: r["route"])
    by_model = _group(rows, lambda r: r["model"])
    by_route_task = _group(rows, lambda r: (r["route"], r["task_type"]))
    compared = _compare(*overall)
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
        "recommendations": _recommendations(f, by_route, by_route_task, label),
        "reviews": reviews,
        "daily": daily,
        "markers": _markers(versions),
    }


# --------------------------------------------------------------------------------------------
# Tables (CSV)


def _metric_columns() -> list[str]:
    return [f"{key}_{part}" for key in METRIC_KEYS for part in ("current", "previous", "change", "change_pct")]


def _metric_values(metrics: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    return [metrics[key][part] for key in METRIC_KEYS for part in ("current", "previous", "change", "change_pct")]


def report_table_check(name: str) -> None:
    """NotFound naming the tables when `name` is not one of the report's TABLES."""
    if name not in TABLES:
        raise NotFound(
            f"The report has no table '{name[:40]}': the tables are {', '.join(TABLES)}.", {"table": ["not found"]}
        )


def report_table(report: Mapping[str, Any], name: str) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of one of the report's TABLES, the numbers exactly as in the report."""
    report_table_check(name)
    if name == "summary":
        return (
            ["metric", "label", "unit", "current", "previous", "change", "change_pct"],
            [
                [r["metric"], r["label"], r["unit"], r["current"], r["previous"], r["change"], r["change_pct"]]
                for r in report["summary"]
            ],
        )
    if name in ("task_types", "routes"):
        key = "task_type" if name == "task_types" else "route"
        return [key, *_metric_columns()], [[r[key], *_metric_values(r["metrics"])] for r in report[name]]
    if name == "movers":
        header = ["ranking", "dimension", "name", "cost_usd", "previous_cost_usd", "change_usd", "change_pct"]
        return header, [
            [ranking, *(r[h] for h in header[1:])]
            for ranking in ("absolute", "relative")
            for r in report["movers"][ranking]
        ]
    if name == "changes":
        header = ["version", "previous_version", "action", "rollback_of", "at", "by", "comment", "changed_count"]
        return header, [[r[h] for h in header] for r in report["changes"]]
    if name == "alerts":
        header = ["opened_at", "raised_in_month", "route", "detector", "severity", "status", "summary", "resolved_at"]
        return header, [[r[h] for h in header] for r in report["alerts"]]
    # recommendations
    header = [
        "kind",
        "route",
        "task_type",
        "transition",
        "observed_rate",
        "threshold",
        "affected_requests",
        "cost_per_request_from_usd",
        "cost_per_request_to_usd",
        "estimated_monthly_savings_usd",
        "message",
    ]
    return header, [[r[h] for h in header] for r in report["recommendations"]["items"]]


def report_latest_month_with_data(policy: Policy) -> date | None:
    """The month of the policy's newest rollup cell (for the empty state's pointer; one query)."""
    newest = rollup_selectors.rollup_newest_hour(policy.pk)
    return newest.astimezone(UTC).date().replace(day=1) if newest else None
