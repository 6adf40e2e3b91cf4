"""The routing worksheet: one row per task type, what was observed (traffic, quality, latency,
cost) next to what the live policy says, and when the monthly report was last reviewed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any

from django.db.models import Sum

from metrics.dashboards.definitions import (
    OK,
    bucket_counts,
    bucket_sums,
    pass_rate,
    range_cells,
    route_expectations,
    route_settings,
)
from metrics.dashboards.filters import DashboardFilters
from metrics.models import BUCKET_FIELDS, ReportReview
from metrics.rules.latency import latency_quantiles
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.rules.numbers import ratio


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
        range_cells(f)
        .values("task_type", "route")
        .order_by("task_type", "route")
        .annotate(
            reqs=Sum("requests"),
            attempts=Sum("count"),
            ok=Sum("count", filter=OK),
            tin=Sum("tokens_in"),
            tout=Sum("tokens_out"),
            cost=Sum("cost_usd"),
            **bucket_sums(),
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
        row["requests"] += _int(r["reqs"])
        row["attempts"] += _int(r["attempts"])
        row["ok"] += _int(r["ok"])
        row["tokens_in"] += _int(r["tin"])
        row["tokens_out"] += _int(r["tout"])
        row["cost"] += _num(r["cost"])
        row["buckets"] = [a + b for a, b in zip(row["buckets"], bucket_counts(r), strict=True)]
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
    rows: list[dict[str, Any]] = []
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
