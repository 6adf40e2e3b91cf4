"""The report's arithmetic: additive sums of a group of rollup rows in one month (`MonthSums`),
the measures drawn from them (`METRICS`: spend, requests, cost per request, escalation and tier
rates, pass rate, p95, unpriced) and the month-against-month comparison of each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from metrics.dashboards import selectors as sel
from metrics.models import BUCKET_FIELDS
from metrics.rules.latency import latency_quantiles
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import delta, ratio
from metrics.rules.numbers import num as _num

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


@dataclass
class MonthSums:
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


def compare(current: MonthSums, previous: MonthSums) -> dict[str, dict[str, float | None]]:
    cur, prev = current.metrics(), previous.metrics()
    return {key: delta(cur[key], prev[key]) for key in METRIC_KEYS}


def group(
    rows: list[dict[str, Any]], key: Callable[[Mapping[str, Any]], Any]
) -> dict[Any, tuple[MonthSums, MonthSums]]:
    """Rows (prefixed c_ for the month, p_ for the month before) summed per `key(row)`."""
    groups: dict[Any, tuple[MonthSums, MonthSums]] = {}
    for row in rows:
        k = key(row)
        if k not in groups:
            groups[k] = (MonthSums(), MonthSums())
        groups[k][0].add(row, "c_")
        groups[k][1].add(row, "p_")
    return groups
