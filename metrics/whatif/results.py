"""What a what-if returns (no Django): the steps and paths a task type's representative request
takes through the draft, the measures of each side (what happened, the draft's estimate), their
comparison, the rows per task type and the whole estimate, each JSON-ready through `to_dict`, and
the one-sentence summary the monthly report quotes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Step:
    """One attempt a replayed path may make: its tier and model, the probability that a request
    on the path reaches it, its cost (None: the model has no price) and where the escalation
    rate that leads to the next step came from."""

    tier: int
    model: str
    reach: float
    cost_usd: float | None
    next_rate: float | None = None
    next_rate_source: str | None = None  # "observed", "policy band", "default band", "assumed band"


@dataclass(frozen=True, slots=True)
class Path:
    """Where the draft sends a task type's representative request (one per split arm)."""

    route: str
    arm: str | None
    probability: float
    steps: tuple[Step, ...]
    reason: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Measures:
    """One side of the comparison (what happened, or the draft's estimate) for a task type or
    the total. `cost_usd` sums the priced attempts; `unpriced_attempts` counts the rest."""

    requests: int
    attempts: float
    cost_usd: float
    unpriced_attempts: float
    escalations: float
    p50_ms: float | None
    p95_ms: float | None

    @property
    def complete(self) -> bool:
        return self.unpriced_attempts == 0

    @property
    def cost_per_request_usd(self) -> float | None:
        return self.cost_usd / self.requests if self.requests and self.complete else None

    @property
    def escalation_rate(self) -> float | None:
        return self.escalations / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "attempts": self.attempts,
            "cost_usd": self.cost_usd,
            "complete": self.complete,
            "unpriced_attempts": self.unpriced_attempts,
            "cost_per_request_usd": self.cost_per_request_usd,
            "escalations": self.escalations,
            "escalation_rate": self.escalation_rate,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
        }


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


@dataclass(frozen=True, slots=True)
class Comparison:
    """What happened against the draft's estimate, with the deltas (draft − actual).

    A cost delta is None when either side has unpriced attempts: a missing price is not $0.
    `live_modelled_cost_usd` is the same model applied to the live document: its gap to the
    actual cost is the model's own error, to read the draft's delta against.
    """

    actual: Measures
    draft: Measures
    live_modelled_cost_usd: float | None

    @property
    def delta_cost_usd(self) -> float | None:
        if not (self.actual.complete and self.draft.complete):
            return None
        return self.draft.cost_usd - self.actual.cost_usd

    @property
    def savings_usd(self) -> float | None:
        delta = self.delta_cost_usd
        return None if delta is None else -delta

    @property
    def savings_pct(self) -> float | None:
        savings = self.savings_usd
        return None if savings is None or not self.actual.cost_usd else savings / self.actual.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "actual": self.actual.to_dict(),
            "draft": self.draft.to_dict(),
            "live_modelled_cost_usd": self.live_modelled_cost_usd,
            "delta_cost_usd": self.delta_cost_usd,
            "savings_usd": self.savings_usd,
            "savings_pct": self.savings_pct,
            "delta_escalation_rate": _delta(self.draft.escalation_rate, self.actual.escalation_rate),
            "delta_p50_ms": _delta(self.draft.p50_ms, self.actual.p50_ms),
            "delta_p95_ms": _delta(self.draft.p95_ms, self.actual.p95_ms),
        }


@dataclass(frozen=True, slots=True)
class TaskTypeWhatIf:
    task_type: str
    share: float
    avg_tokens_in: float
    avg_tokens_out: float
    comparison: Comparison
    paths: tuple[Path, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_type": self.task_type,
            "share": self.share,
            "avg_tokens_in": self.avg_tokens_in,
            "avg_tokens_out": self.avg_tokens_out,
            **self.comparison.to_dict(),
            "paths": [
                {
                    "route": p.route,
                    "arm": p.arm,
                    "probability": p.probability,
                    "reason": dict(p.reason),
                    "steps": [
                        {
                            "tier": s.tier,
                            "model": s.model,
                            "reach": s.reach,
                            "cost_usd": s.cost_usd,
                            "next_rate": s.next_rate,
                            "next_rate_source": s.next_rate_source,
                        }
                        for s in p.steps
                    ],
                }
                for p in self.paths
            ],
        }


@dataclass(frozen=True, slots=True)
class WhatIf:
    """The estimate for one draft over one period: rows per task type, the total, the
    assumptions the replay had to make, and the models it could not price."""

    policy: str
    start: datetime
    end: datetime  # exclusive
    priced_at: datetime
    rows: tuple[TaskTypeWhatIf, ...]
    total: Comparison
    assumptions: tuple[str, ...]
    unpriced_models: tuple[str, ...]
    message: str = ""

    @property
    def empty(self) -> bool:
        return not self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "period": {
                "start": self.start.date().isoformat(),
                "end": (self.end - timedelta(microseconds=1)).date().isoformat(),
                "days": (self.end - self.start).days,
            },
            "priced_at": self.priced_at.isoformat(),
            "empty": self.empty,
            "message": self.message,
            "requests": self.total.actual.requests,
            "total": self.total.to_dict(),
            "task_types": [row.to_dict() for row in self.rows],
            "assumptions": list(self.assumptions),
            "unpriced_models": list(self.unpriced_models),
        }


def whatif_summary(result: WhatIf) -> str:
    """One sentence for a recommendation: what the draft would have cost against what happened."""
    if result.empty:
        return result.message
    total = result.total
    if total.savings_usd is None:
        return (
            f"The draft would have cost ${total.draft.cost_usd:,.2f} for the priced attempts; some attempts "
            "have no price, so the saving is not known."
        )
    verb = "saved" if total.savings_usd >= 0 else "added"
    pct = f" ({abs(total.savings_pct):.0%})" if total.savings_pct is not None else ""
    return (
        f"The draft would have cost ${total.draft.cost_usd:,.2f} against ${total.actual.cost_usd:,.2f} "
        f"actually spent: {verb} ${abs(total.savings_usd):,.2f}{pct} over "
        f"{total.actual.requests:,} requests."
    )
