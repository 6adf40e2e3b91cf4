"""The Canary page: every split of the live policy, arm against control (`metrics.canary`): per arm
its numbers, the sample-ratio check, and per metric the difference, its intervals and the verdict."""

from __future__ import annotations

from typing import Any

from metrics.canary.selectors import SplitVerdict, canary_splits
from metrics.dashboards.filters import DashboardFilters
from metrics.stats.canary import ALPHA, METRIC_ALPHA, MIN_HOURS, MIN_REQUESTS
from metrics.stats.sequential import SRM_ALPHA


def _pair(value: tuple[float, float] | None) -> list[float] | None:
    return None if value is None else [value[0], value[1]]


def split_data(s: SplitVerdict) -> dict[str, Any]:
    """One split's verdict as JSON-ready data (the page, the API and the report use it)."""
    v = s.verdict
    total = sum(a.requests for a in v.arms)
    arms = []
    for declared, arm in zip(s.split.arms, v.arms, strict=True):
        q = s.arm_quantiles(arm.name)
        arms.append(
            {
                "name": arm.name,
                "kind": declared.kind,
                "target": declared.target,
                "weight": declared.weight,
                "share": arm.requests / total if total else None,
                "requests": arm.requests,
                "cost_usd": arm.cost_usd,
                "cost_per_request_usd": arm.cost_per_request,
                "pass_rate": arm.pass_rate,
                "escalation_rate": arm.escalation_rate,
                "error_rate": arm.error_rate,
                "latency_mean_ms": arm.latency_mean_ms,
                "latency_p50_ms": q["p50"],
                "latency_p95_ms": q["p95"],
                "hours": arm.hours,
                "is_control": arm.name == v.control,
            }
        )
    return {
        "route": s.split.route,
        "key": s.split.key,
        "control": v.control,
        "versions": s.versions,
        "guardrails": dict(s.split.guardrails),
        "arms": arms,
        "srm": {
            "mismatch": v.srm.mismatch,
            "statistic": v.srm.statistic if v.srm.statistic != float("inf") else None,
            "p_value": v.srm.p_value,
            "alpha": v.srm.alpha,
            "observed": list(v.srm.observed),
            "expected": list(v.srm.expected),
        },
        "comparisons": [
            {
                "arm": av.arm,
                "metrics": [
                    {
                        "metric": c.metric,
                        "label": c.label,
                        "control": c.control,
                        "arm": c.arm,
                        "difference": c.difference,
                        "relative": c.relative,
                        "interval": _pair(c.interval),
                        "sequence": _pair(c.sequence),
                        "verdict": c.verdict,
                        "sample_needed": c.sample_needed,
                        "method": c.method,
                    }
                    for c in av.comparisons
                ],
            }
            for av in v.verdicts
        ],
        "hourly": s.hours,
    }


def dashboard_canary(f: DashboardFilters) -> dict[str, Any]:
    """Every split of the live version over the range (or the filtered route's), judged (2 queries
    per split: the versions that ran it, its arms' hourly cells)."""
    splits = canary_splits(f.policy, f.start_dt, f.end_dt, route=f.route)
    return {
        "filters": f.as_dict(),
        "splits": [split_data(s) for s in splits],
        "method": {
            "alpha": ALPHA,
            "metric_alpha": METRIC_ALPHA,
            "srm_alpha": SRM_ALPHA,
            "min_requests": MIN_REQUESTS,
            "min_hours": MIN_HOURS,
        },
    }
