"""The report's recommendations: where the month's numbers say a route could cost less (tier 1
sufficient, escalation above its band from `metrics.rules.bands`, the direct-route advisory), each
with its savings estimate (docs/reports.md says how), and the what-if of the policy's draft."""

from __future__ import annotations

from typing import Any

from metrics.dashboards import selectors as sel
from metrics.reports.sums import MonthSums
from metrics.whatif.replay import whatif_for_report

# A route's tier 1 "is good enough" at this per-tier pass rate (the Quality page's 95% mark)…
TIER1_SUFFICIENT_PASS_RATE = sel.PASS_RATE_GOOD
# …measured over at least this many tier-1 attempts in the month.
MIN_TIER1_ATTEMPTS = 50
# The Escalation page's direct-route advisory, applied to the month.
DIRECT_ROUTE_ADVISORY_RATE = sel.DIRECT_ROUTE_ADVISORY_RATE


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


def report_recommendations(
    f: sel.DashboardFilters,
    by_route: dict[str, tuple[MonthSums, MonthSums]],
    by_route_task: dict[tuple[str, str], tuple[MonthSums, MonthSums]],
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
            savings: float | None = reached2 * (cpr2 - cpr1)
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
