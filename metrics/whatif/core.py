"""The what-if's pure core (no Django): replay a period's rollup sums through a compiled policy
and estimate its cost, escalation and latency against what happened.

The expected-value model (docs/whatif.md): per task type, the period's requests are replayed
through the draft with the engine, one representative request per task type (per split arm);
each path's cost per request is the start tier's cost plus each cascade step's cost weighted by
the probability of reaching it, with the escalation rates observed per route tier in the period:

    cost = Σ_task types requests × Σ_paths P(path) × Σ_k P(reach step k) × price(model_k) × tokens

`whatif_compute` takes plain inputs: the period's `Cell`s (rollup sums per task type, route, tier
and model), the compiled draft and live documents and a pricing function; it returns a
`metrics.whatif.results.WhatIf`. Where no rate was observed, the escalation band assumed is
`metrics.rules.bands`'; latency quantiles are `metrics.rules.latency`'s. Imports the engine,
`metrics.schema`, `metrics.rules` and `metrics.whatif.results` only.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, cast

from metrics.rules import bands as band_rules
from metrics.rules.latency import latency_quantile
from metrics.schema import BUCKET_FIELDS, LATENCY_BOUNDS_MS
from metrics.whatif.results import Comparison, Measures, Path, Step, TaskTypeWhatIf, WhatIf
from signalbox_client import engine
from signalbox_client.engine.policy import bucket

# Request features a rollup carries for its task type: the rest are unknown to the replay.
KNOWN_FEATURES = frozenset({"task_type", "prompt_tokens", "context_tokens"})
_ESCALATING_OUTCOMES = ("low_confidence", "validation_failed")
_KEY_SEARCH_LIMIT = 5000

PriceOf = Callable[[str, float, float], float | None]


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
    if document.get("budget") or budgets or document.get("dimension_budgets"):
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
