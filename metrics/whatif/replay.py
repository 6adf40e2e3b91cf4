"""What-if: replay a period's logged traffic through a draft policy and estimate its cost,
escalation and latency against what happened.

The expected-value model (docs/whatif.md): per task type, the period's requests are replayed
through the draft with the engine, one representative request per task type (per split arm);
each path's cost per request is the start tier's cost plus each cascade step's cost weighted by
the probability of reaching it, with the escalation rates observed per route tier in the period:

    cost = Σ_task types requests × Σ_paths P(path) × Σ_k P(reach step k) × price(model_k) × tokens

The core (`whatif_compute`) is pure: it takes rollup sums (`Cell`s), a compiled policy and a
pricing function and returns frozen dataclasses. `whatif_estimate` does the reads around it (one
GROUP BY over the hourly rollups, the catalog, the live document) and never reads raw decisions.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any, cast

from django.db.models import Sum

from controlplane.errors import InvalidInput
from metrics.ingest.pricing import prices
from metrics.models import BUCKET_FIELDS, LATENCY_BOUNDS_MS
from metrics.rollups.selectors import rollup_cells
from metrics.rules import bands as band_rules
from metrics.rules.latency import latency_quantile
from metrics.rules.periods import FIRST_DATE, LAST_DATE
from routing import selectors, services
from routing.models import Policy
from signalbox_client import engine
from signalbox_client.engine.policy import bucket

MAX_DAYS = 93
# Request features a rollup carries for its task type: the rest are unknown to the replay.
KNOWN_FEATURES = frozenset({"task_type", "prompt_tokens", "context_tokens"})
_ESCALATING_OUTCOMES = ("low_confidence", "validation_failed")
_KEY_SEARCH_LIMIT = 5000

PriceOf = Callable[[str, float, float], float | None]


# --------------------------------------------------------------------------------------------
# Inputs and results


@dataclass(frozen=True, slots=True)
class Cell:
    """Rollup sums of one (task type, route, tier, model) over the period."""

    task_type: str
    route: str
    tier: int
    model: str
    count: int
    requests: int
    escalations: int
    cost_usd: float
    unpriced: int
    tokens_in: int
    tokens_out: int
    latency_sum_ms: float
    buckets: tuple[int, ...]


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


# --------------------------------------------------------------------------------------------
# The pure core


class _Notes:
    """Assumptions in the order first made, each once."""

    def __init__(self) -> None:
        self.items: dict[str, None] = {}

    def add(self, text: str) -> None:
        self.items.setdefault(text, None)


@dataclass
class _Observed:
    """What the period's cells say, summed the ways the model needs."""

    reached: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    escalated_into: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))
    models_at: dict[tuple[str, int], set[str]] = field(default_factory=lambda: defaultdict(set))
    model_buckets: dict[str, list[int]] = field(default_factory=dict)
    model_latency: dict[str, tuple[float, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, cells: tuple[Cell, ...]) -> _Observed:
        o = cls()
        for c in cells:
            o.reached[(c.route, c.tier)] += c.requests + c.escalations
            o.escalated_into[(c.route, c.tier)] += c.escalations
            if c.requests or c.escalations:
                o.models_at[(c.route, c.tier)].add(c.model)
            b = o.model_buckets.setdefault(c.model, [0] * len(BUCKET_FIELDS))
            for i, n in enumerate(c.buckets):
                b[i] += n
            total, count = o.model_latency.get(c.model, (0.0, 0))
            o.model_latency[c.model] = (total + c.latency_sum_ms, count + c.count)
        return o


def _band(document: Mapping[str, Any], route: str, tier: int) -> tuple[float, str, str]:
    """(midpoint, source, band text) of the band assumed for tier → tier+1 (`metrics.rules.bands`)."""
    band = band_rules.assumed_band(band_rules.route_doc(document, route), tier - 1)
    return band.midpoint, f"{band.source} band", band.text


def _live_can_escalate(live: Mapping[str, Any] | None, route: str, tier: int) -> bool:
    spec = ((live or {}).get("routes") or {}).get(route) or {}
    escalate = spec.get("escalate")
    tiers = spec.get("tiers") or []
    return escalate is not None and escalate.get("max_depth", len(tiers) - 1) >= 1 and tier < len(tiers)


def _feature_fields(condition: Any) -> set[str]:
    if not isinstance(condition, Mapping):
        return set()
    if "field" in condition:
        return {str(condition["field"])}
    found: set[str] = set()
    for key in ("and", "or"):
        for item in condition.get(key) or []:
            found |= _feature_fields(item)
    if "not" in condition:
        found |= _feature_fields(condition["not"])
    return found


@lru_cache(maxsize=64)
def _bucket_keys(salt: str) -> Mapping[int, str]:
    """For each split bucket 0..99, a key text that lands in it (found by hashing candidates)."""
    found: dict[int, str] = {}
    for i in range(_KEY_SEARCH_LIMIT):
        key = f"whatif-{i}"
        found.setdefault(bucket(salt, key), key)
        if len(found) == 100:
            break
    return found


def _with_key(request: engine.Request, key: str, text: str) -> engine.Request:
    """The request with its split key set to `text` (user_id, request_id or an attribute)."""
    if key.startswith("attributes."):
        return replace(request, attributes=MappingProxyType({key.removeprefix("attributes."): text}))
    if key == "request_id":
        return replace(request, request_id=text)
    return replace(request, user_id=text)


def _replay(
    compiled: engine.Policy, request: engine.Request, notes: _Notes
) -> list[tuple[float, str | None, engine.Decision]]:
    """(probability, arm, decision) for the request: one decision, or one per split arm (the
    arm's weight is its probability; a key landing in its buckets is found by hashing)."""
    first = engine.decide(compiled, request)
    split = first.reason.get("split")
    if split is None:
        return [(1.0, None, first)]
    route = compiled.routes[split.get("from_route", first.route)].split
    assert route is not None
    out: list[tuple[float, str | None, engine.Decision]] = []
    lower = 0
    keys = _bucket_keys(route.salt)
    for arm in route.arms:
        if arm.weight:
            key = next((keys[b] for b in range(lower, arm.upper) if b in keys), None)
            if key is not None:
                out.append((arm.weight / 100, arm.name, engine.decide(compiled, _with_key(request, route.key, key))))
        lower = arm.upper
    notes.add(
        f"Split on route '{split.get('from_route', first.route)}': each arm gets its weight's share of "
        f"the traffic (keyed by {route.key})."
    )
    return out


def whatif_compute(
    *,
    policy: str,
    document: Mapping[str, Any],
    compiled: engine.Policy,
    live_document: Mapping[str, Any] | None,
    live_compiled: engine.Policy | None,
    cells: tuple[Cell, ...],
    price: PriceOf,
    start: datetime,
    end: datetime,
    priced_at: datetime,
) -> WhatIf:
    """The estimate from the period's rollup sums (no database): see the module docstring."""
    notes = _Notes()
    observed = _Observed.of(cells)
    by_task: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        by_task[c.task_type].append(c)
    orphan = sum(c.count for cs in by_task.values() if not sum(x.requests for x in cs) for c in cs)
    task_cells = {tt: cs for tt, cs in by_task.items() if sum(c.requests for c in cs)}
    total_requests = sum(c.requests for cs in task_cells.values() for c in cs)
    if not task_cells:
        empty = Measures(0, 0, 0.0, 0, 0, None, None)
        message = (
            f"No requests were logged for '{policy}' in this period: nothing to replay. "
            "Pick a period with traffic, or send decision logs first (docs/ingestion.md)."
        )
        return WhatIf(policy, start, end, priced_at, (), Comparison(empty, empty, None), (), (), message)
    if orphan:
        notes.add(f"{orphan:,} attempts belong to requests that started before the period; they are left out.")
    _document_notes(document, live_document, observed, notes)

    unpriced_models: set[str] = set()
    rows = []
    total_actual_buckets = [0] * len(BUCKET_FIELDS)
    total_draft_buckets = [0.0] * len(BUCKET_FIELDS)
    sums: defaultdict[str, float] = defaultdict(float)
    live_total: float | None = 0.0 if live_compiled is not None else None
    for task_type in sorted(task_cells, key=lambda tt: (-sum(c.requests for c in task_cells[tt]), tt)):
        cs = task_cells[task_type]
        requests = sum(c.requests for c in cs)
        attempts = sum(c.count for c in cs)
        tokens_in = sum(c.tokens_in for c in cs) / attempts
        tokens_out = sum(c.tokens_out for c in cs) / attempts
        buckets = [sum(c.buckets[i] for c in cs) for i in range(len(BUCKET_FIELDS))]
        actual = Measures(
            requests=requests,
            attempts=attempts,
            cost_usd=sum(c.cost_usd for c in cs),
            unpriced_attempts=sum(c.unpriced for c in cs),
            escalations=sum(c.escalations for c in cs),
            **_quantiles(buckets),
        )
        if not tokens_in and not tokens_out and actual.cost_usd:
            notes.add(f"'{task_type}' logged no token counts: the draft prices its attempts at 0 tokens.")
        request = engine.Request(task_type=task_type, prompt_tokens=round(tokens_in))
        paths, draft, mixture, unpriced = _estimate(
            compiled, document, live_document, request, requests, tokens_in, tokens_out, observed, price, notes
        )
        unpriced_models |= unpriced
        live_cost = None
        if live_compiled is not None and live_document is not None:
            _, live, _, _ = _estimate(
                live_compiled,
                live_document,
                live_document,
                request,
                requests,
                tokens_in,
                tokens_out,
                observed,
                price,
                _Notes(),
            )
            live_cost = live.cost_usd if live.complete else None
        rows.append(
            TaskTypeWhatIf(
                task_type,
                requests / total_requests,
                tokens_in,
                tokens_out,
                Comparison(actual, draft, live_cost),
                tuple(paths),
            )
        )
        for i, n in enumerate(buckets):
            total_actual_buckets[i] += n
        for i, w in enumerate(mixture):
            total_draft_buckets[i] += w
        for name, value in (
            ("a_cost", actual.cost_usd),
            ("a_unpriced", actual.unpriced_attempts),
            ("a_esc", actual.escalations),
            ("a_att", actual.attempts),
            ("d_cost", draft.cost_usd),
            ("d_unpriced", draft.unpriced_attempts),
            ("d_esc", draft.escalations),
            ("d_att", draft.attempts),
        ):
            sums[name] += value
        live_total = None if live_total is None or live_cost is None else live_total + live_cost
    total = Comparison(
        Measures(
            total_requests,
            sums["a_att"],
            sums["a_cost"],
            sums["a_unpriced"],
            sums["a_esc"],
            **_quantiles(total_actual_buckets),
        ),
        Measures(
            total_requests,
            sums["d_att"],
            sums["d_cost"],
            sums["d_unpriced"],
            sums["d_esc"],
            **_quantiles(total_draft_buckets),
        ),
        live_total,
    )
    if unpriced_models:
        notes.add(
            "No price for " + ", ".join(sorted(unpriced_models)) + ": their attempts are counted apart "
            "(unpriced attempts), not as free, and the affected cost deltas are left blank."
        )
    if any(not row.comparison.actual.complete for row in rows):
        notes.add(
            "Some logged attempts had no price: the actual cost of those task types is incomplete, so "
            "their cost deltas are left blank."
        )
    return WhatIf(policy, start, end, priced_at, tuple(rows), total, tuple(notes.items), tuple(sorted(unpriced_models)))


def _quantiles(buckets: Sequence[float]) -> dict[str, float | None]:
    """p50/p95 of a latency histogram; the draft's holds expected (fractional) attempt counts,
    which the interpolation reads like whole ones."""
    if not sum(buckets):
        return {"p50_ms": None, "p95_ms": None}
    counts = cast(Sequence[int], buckets)
    return {
        "p50_ms": latency_quantile(counts, 0.5),
        "p95_ms": latency_quantile(counts, 0.95),
    }


def _document_notes(
    document: Mapping[str, Any], live: Mapping[str, Any] | None, observed: _Observed, notes: _Notes
) -> None:
    """The assumptions a document forces whatever the traffic: unknown request features in rules,
    budgets, changed escalation triggers."""
    for rule in document.get("rules") or []:
        unknown = sorted(_feature_fields(rule.get("when")) - KNOWN_FEATURES)
        if unknown:
            notes.add(
                f"Rule '{rule.get('id')}' tests {', '.join(unknown)}, which the rollups do not hold: it is "
                "evaluated with those features absent (so it matches only through `not` or "
                "`exists: false`)."
            )
        elif _feature_fields(rule.get("when")) & {"prompt_tokens", "context_tokens"}:
            notes.add(
                f"Rule '{rule.get('id')}' tests token counts: it is evaluated on each task type's average "
                "prompt tokens, not on every request's own count."
            )
    budgets = [name for name, r in (document.get("routes") or {}).items() if r.get("budget")]
    if document.get("budget") or budgets:
        notes.add("Budget downgrades are not replayed: every request is routed as if no budget had been reached.")
    live_routes = (live or {}).get("routes") or {}
    for name, route in sorted((document.get("routes") or {}).items()):
        old = (live_routes.get(name) or {}).get("escalate") or {}
        new = route.get("escalate") or {}
        if not old or not new or not any(key[0] == name for key in observed.reached):
            continue
        changed = [
            f"{k} {old.get(k, '—')} → {new.get(k, '—')}"
            for k in ("min_confidence", "on_validation_failure")
            if old.get(k) != new.get(k)
        ]
        if changed:
            notes.add(
                f"Route '{name}' changes its escalation trigger ({'; '.join(changed)}): the rate observed "
                "under the live setting is applied, as the rollups hold no confidence distribution to "
                "re-estimate it."
            )


def _rate(
    route: str,
    tier: int,
    model: str,
    document: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    observed: _Observed,
    notes: _Notes,
) -> tuple[float, str]:
    """P(escalate from `tier` on `route`), observed in the period when it could be, else the
    route's escalation band midpoint (flagged)."""
    reached = observed.reached.get((route, tier), 0)
    into = observed.escalated_into.get((route, tier + 1), 0)
    if reached and (into or _live_can_escalate(live, route, tier)):
        seen = observed.models_at.get((route, tier), set())
        if seen and model not in seen:
            notes.add(
                f"Route '{route}' tier {tier}: the draft uses {model}; the escalation rate observed with "
                f"{', '.join(sorted(seen))} is applied."
            )
        return into / reached, "observed"
    mid, source, band = _band(document, route, tier)
    why = "no traffic reached it" if not reached else "the live route could not escalate from there"
    notes.add(
        f"Route '{route}' tier {tier}→{tier + 1}: no observed escalation rate ({why}); the {source} "
        f"midpoint {mid:.1%} ({band}) is used."
    )
    return mid, source


def _tier_latency(route: Any, tier: int) -> float | None:
    """The compiled route's expected_latency_ms for a tier (None when it sets none)."""
    return route.tiers[tier - 1].expected_latency_ms if 1 <= tier <= len(route.tiers) else None


def _mean_latency(model: str, tier_latency: float | None, observed: _Observed) -> float:
    """A model's mean attempt latency in the period, else its tier's expected latency, else 0:
    what the replay adds to the elapsed time the route's latency budget is checked against."""
    total, count = observed.model_latency.get(model, (0.0, 0))
    return total / count if count else (tier_latency or 0.0)


def _latency_weights(model: str, tier_latency: float | None, observed: _Observed, notes: _Notes) -> list[float] | None:
    """A model's attempt-latency distribution over the rollup buckets (sums to 1): observed in
    the period, else a point at the tier's expected_latency_ms (flagged), else None."""
    counts = observed.model_buckets.get(model)
    if counts and sum(counts):
        total = sum(counts)
        return [n / total for n in counts]
    if tier_latency is not None:
        notes.add(
            f"No latency observed for {model} in the period: its tier's expected_latency_ms "
            f"({tier_latency:g} ms) is used."
        )
        weights = [0.0] * len(BUCKET_FIELDS)
        weights[bisect_right(LATENCY_BOUNDS_MS, tier_latency)] = 1.0
        return weights
    notes.add(
        f"No latency observed for {model} and its tier sets no expected_latency_ms: its attempts are left "
        "out of the draft's latency."
    )
    return None


def _estimate(
    compiled: engine.Policy,
    document: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    request: engine.Request,
    requests: int,
    tokens_in: float,
    tokens_out: float,
    observed: _Observed,
    price: PriceOf,
    notes: _Notes,
) -> tuple[list[Path], Measures, list[float], set[str]]:
    """One task type through a compiled document: its paths, measures, latency mixture (expected
    attempts per bucket, for `requests` requests) and unpriced models."""
    paths: list[Path] = []
    cost = unpriced_attempts = escalations = attempts = 0.0
    mixture = [0.0] * len(BUCKET_FIELDS)
    unpriced: set[str] = set()
    for probability, arm, decision in _replay(compiled, request, notes):
        route = compiled.routes[decision.route]
        if decision.reason.get("tier_by") == "score":
            notes.add(
                f"Route '{decision.route}' picks its tier by difficulty score, which the rollups do not "
                f"hold: '{request.task_type}' was scored {decision.reason.get('score')} "
                f"({decision.reason.get('score_source')}, from its average prompt tokens alone, no text), "
                f"so it starts at tier {decision.tier}."
            )

        steps: list[Step] = []
        reach = 1.0
        current = decision.step
        elapsed = _mean_latency(current.model, _tier_latency(route, current.tier), observed)
        attempt = 1
        while True:
            nxt = None
            for outcome in _ESCALATING_OUTCOMES:
                candidate = engine.next_step(
                    compiled,
                    decision,
                    attempt=attempt,
                    outcome=outcome,
                    confidence=None,
                    elapsed_ms=elapsed,
                    current=current,
                )
                if candidate is not None and candidate.kind == "escalate":
                    nxt = candidate
                    break
            step_cost = price(current.model, tokens_in, tokens_out)
            if nxt is None:
                steps.append(Step(current.tier, current.model, reach, step_cost))
                break
            rate, source = _rate(decision.route, current.tier, current.model, document, live, observed, notes)
            steps.append(Step(current.tier, current.model, reach, step_cost, rate, source))
            reach *= rate
            current = nxt.step
            elapsed += _mean_latency(current.model, _tier_latency(route, current.tier), observed)
            attempt += 1
        paths.append(Path(decision.route, arm, probability, tuple(steps), decision.reason))
        for k, step in enumerate(steps):
            share = probability * step.reach
            attempts += requests * share
            if k:
                escalations += requests * share
            if step.cost_usd is None:
                unpriced.add(step.model)
                unpriced_attempts += requests * share
            else:
                cost += requests * share * step.cost_usd
            weights = _latency_weights(step.model, _tier_latency(route, step.tier), observed, notes)
            if weights is not None:
                for i, w in enumerate(weights):
                    mixture[i] += requests * share * w
    measures = Measures(requests, attempts, cost, unpriced_attempts, escalations, **_quantiles(mixture))
    return paths, measures, mixture, unpriced


# --------------------------------------------------------------------------------------------
# Reads around the core


def whatif_period(start: date, end: date) -> tuple[datetime, datetime]:
    """[start, end] (dates, UTC, end inclusive) as a half-open datetime range; InvalidInput names
    the field when the range is reversed, too long or out of bounds."""
    for name, day in (("start", start), ("end", end)):
        if not FIRST_DATE <= day <= LAST_DATE:
            raise InvalidInput("Invalid period.", {name: [f"must be between {FIRST_DATE} and {LAST_DATE}"]})
    if end < start:
        raise InvalidInput("Invalid period.", {"end": [f"must not be before start ({start})"]})
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise InvalidInput("Invalid period.", {"end": [f"the period is {days} days; at most {MAX_DAYS} are allowed"]})
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def whatif_cells(policy: Policy, start: datetime, end: datetime) -> tuple[Cell, ...]:
    """The period's rollup sums per (task type, route, tier, model): one GROUP BY, its size set by
    the policy's shape, not by the traffic."""
    dims = ("task_type", "route", "tier", "model")
    rows = (
        rollup_cells(policy_id=policy.pk, start=start, end=end)
        .values(*dims)
        .order_by(*dims)
        .annotate(
            s_count=Sum("count"),
            s_requests=Sum("requests"),
            s_escalations=Sum("escalations"),
            s_cost=Sum("cost_usd"),
            s_unpriced=Sum("unpriced"),
            s_tin=Sum("tokens_in"),
            s_tout=Sum("tokens_out"),
            s_latency=Sum("latency_sum_ms"),
            **{f"s_{name}": Sum(name) for name in BUCKET_FIELDS},
        )
    )
    return tuple(
        Cell(
            task_type=r["task_type"],
            route=r["route"],
            tier=r["tier"],
            model=r["model"],
            count=int(r["s_count"] or 0),
            requests=int(r["s_requests"] or 0),
            escalations=int(r["s_escalations"] or 0),
            cost_usd=float(r["s_cost"] or 0),
            unpriced=int(r["s_unpriced"] or 0),
            tokens_in=int(r["s_tin"] or 0),
            tokens_out=int(r["s_tout"] or 0),
            latency_sum_ms=float(r["s_latency"] or 0),
            buckets=tuple(int(r[f"s_{name}"] or 0) for name in BUCKET_FIELDS),
        )
        for r in rows
    )


def whatif_estimate(*, policy: Policy, document: Any, start: datetime, end: datetime) -> WhatIf:
    """Replay [start, end) of `policy`'s logged traffic through `document` (a draft) and compare
    with what happened. Raises InvalidInput (field paths of the document) or TooLarge."""
    snapshot = services.document_check(document)
    compiled = engine.compile_policy(document, snapshot)
    live_document = selectors.live_document(policy)
    live_compiled = None
    if live_document is not None:
        try:
            live_compiled = engine.compile_policy(
                live_document, services.models_snapshot(engine.referenced_models(live_document))
            )
        except engine.PolicyError:
            live_compiled = None  # a live document that no longer compiles: no calibration figure
    cells = whatif_cells(policy, start, end)
    priced_at = end - timedelta(microseconds=1)
    book = prices(frozenset(engine.referenced_models(document)) | {c.model for c in cells})
    epoch = priced_at.timestamp()

    def price(model: str, tokens_in: float, tokens_out: float) -> float | None:
        return book.cost(model, epoch, tokens_in, tokens_out)  # type: ignore[arg-type]

    return whatif_compute(
        policy=policy.slug,
        document=document,
        compiled=compiled,
        live_document=live_document,
        live_compiled=live_compiled,
        cells=cells,
        price=price,
        start=start,
        end=end,
        priced_at=priced_at,
    )


def whatif_for_report(policy: Policy, month_start: date, month_end: date) -> dict[str, Any] | None:
    """The policy's draft against what happened in the month, JSON-ready, for the monthly
    report's recommendations; None when the policy has no draft.

    Dates are UTC days with `month_end` the month's last day (inclusive). A draft that no longer
    validates gives `{"error": message, "errors": {path: [...]}}` instead of an estimate.
    """
    draft = selectors.policy_draft(policy)
    if draft is None:
        return None
    start, end = whatif_period(month_start, month_end)
    try:
        result = whatif_estimate(policy=policy, document=draft.document, start=start, end=end)
    except InvalidInput as exc:
        return {"error": exc.message, "errors": exc.errors, "draft_revision": draft.revision}
    data = result.to_dict()
    data["draft_revision"] = draft.revision
    data["summary"] = whatif_summary(result)
    return data


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
