"""Compile a validated policy document into frozen, decide()-ready structures."""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from .conditions import Predicate, compile_condition
from .errors import PolicyError
from .fields import ATTRIBUTE_PREFIX
from .types import PROVIDER_ERRORS, Plan, Request, Step
from .validation import validate_document

DEFAULT_DOWNGRADE_AT = 0.8
UNKNOWN_PROVIDER = "unknown"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the engine knows about a model from the catalog snapshot; None = unknown/unlimited."""

    id: str
    provider: str
    context_window: int | None
    supports_vision: bool | None
    supports_tools: bool | None

    def misfit(self, context_tokens: int, needs_vision: bool, needs_tools: bool) -> str | None:
        """Why the model cannot serve the request ("context", "vision", "tools"), or None."""
        cw = self.context_window
        if cw is not None and context_tokens > cw:
            return "context"
        if needs_vision and self.supports_vision is False:
            return "vision"
        if needs_tools and self.supports_tools is False:
            return "tools"
        return None


def guard_reason(skips: tuple[tuple[ModelInfo, str], ...], context_tokens: int) -> list[dict[str, str]]:
    """The reason's capability_guard list for skipped models."""
    out = []
    for m, why in skips:
        if why == "context":
            text = f"context_window {m.context_window} < {context_tokens}"
        else:
            text = f"supports_{why} is false"
        out.append({"model": m.id, "why": text})
    return out


@dataclass(frozen=True, slots=True)
class Tier:
    """A compiled tier: its 1-based index, model, fallbacks and expected latency."""

    index: int
    model: ModelInfo
    fallbacks: tuple[ModelInfo, ...]
    expected_latency_ms: float | None


@dataclass(frozen=True, slots=True)
class Budget:
    daily_usd: float | None
    monthly_usd: float | None
    downgrade_at: float


@dataclass(frozen=True, slots=True)
class DimensionBudgets:
    """The budgets of one declared dimension: attribute value text -> its budget."""

    key: str
    values: Mapping[str, Budget]


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    weight: int
    upper: int  # exclusive upper bound of this arm's buckets
    route: str | None
    model: ModelInfo | None


@dataclass(frozen=True, slots=True)
class Split:
    key: str
    salt: str
    arms: tuple[Arm, ...]
    read_key: Callable[[Request], Any]

    def pick(self, request: Request) -> tuple[Arm, int | None]:
        """The request's arm and bucket (0..99); the first arm and None when the key is missing."""
        text = key_text(self.read_key(request))
        if text is None:
            return self.arms[0], None
        b = bucket(self.salt, text)
        for arm in self.arms:
            if b < arm.upper:
                return arm, b
        return self.arms[-1], b  # unreachable when weights sum to 100


@dataclass(frozen=True, slots=True)
class Expectations:
    escalation_bands: tuple[tuple[float, float], ...]
    min_pass_rate: float | None
    max_cost_per_request_usd: float | None
    latency_p95_ms: float | None


@dataclass(frozen=True, slots=True)
class Route:
    """A compiled route, with its unguarded plans precomputed per (tier, split-arm model)."""

    name: str
    description: str | None
    critical: bool
    tiers: tuple[Tier, ...]
    start_tier: int
    score_source: str | None
    thresholds: tuple[float, ...] | None
    escalates: bool
    min_confidence: float | None
    on_validation_failure: bool
    max_depth: int
    fallback_on: frozenset[str]
    latency_budget_ms: float | None
    budget: Budget | None
    split: Split | None
    expectations: Expectations | None
    # Guard fast path: when the request fits every model of the route, plans are shared.
    min_context_window: int | None
    any_without_vision: bool
    any_without_tools: bool
    plans: Mapping[tuple[int, str | None], Plan]
    windows: tuple[int, ...]  # distinct known context windows, ascending
    guard_cache: dict[tuple[Any, ...], Any]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    route: str
    tier: int | None
    predicate: Predicate


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled policy: build with compile_policy(), use with decide() and next_step()."""

    default_route: str
    task_types: Mapping[str, str]
    rules: tuple[Rule, ...]
    routes: Mapping[str, Route]
    budget: Budget | None
    models: Mapping[str, ModelInfo]
    # One entry per dimension with budgets, in the order the document first names it; () when none.
    dimension_budgets: tuple[DimensionBudgets, ...] = ()


def key_text(value: Any) -> str | None:
    """Split-key value as hashed text: strings as is, booleans true/false, integral numbers without
    a fraction, other floats in shortest round-trip form; None or "" = missing."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def bucket(salt: str, key: str) -> int:
    """Sticky bucket 0..99: first 8 bytes of SHA-256("<salt>:<key>") as big-endian uint64, mod 100."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _model_info(model_id: str, models: Mapping[str, Mapping[str, Any]] | None) -> ModelInfo:
    entry = models.get(model_id) if models is not None else None
    if not isinstance(entry, Mapping):
        return ModelInfo(model_id, UNKNOWN_PROVIDER, None, None, None)
    cw = entry.get("context_window")
    sv = entry.get("supports_vision")
    st = entry.get("supports_tools")
    provider = entry.get("provider")
    return ModelInfo(
        id=model_id,
        provider=provider if isinstance(provider, str) and provider else UNKNOWN_PROVIDER,
        context_window=cw if isinstance(cw, int) and not isinstance(cw, bool) else None,
        supports_vision=sv if isinstance(sv, bool) else None,
        supports_tools=st if isinstance(st, bool) else None,
    )


def _budget(raw: Mapping[str, Any] | None) -> Budget | None:
    if raw is None:
        return None
    return Budget(raw.get("daily_usd"), raw.get("monthly_usd"), float(raw.get("downgrade_at", DEFAULT_DOWNGRADE_AT)))


def _step(tier: int, m: ModelInfo) -> Step:
    return Step(tier, m.id, m.provider)


def build_plan(
    route: Route,
    tier: int,
    arm_model: ModelInfo | None,
    context_tokens: int = 0,
    needs_vision: bool = False,
    needs_tools: bool = False,
) -> tuple[Plan, tuple[tuple[ModelInfo, str], ...], bool]:
    """Plan for a start tier: the first model that fits (own fallbacks, then tiers up, then down),
    its fallbacks, and the cascade above it. Returns (plan, skipped (model, why), no_fit)."""
    n = len(route.tiers)
    skipped: list[tuple[ModelInfo, str]] = []
    seen_skips: set[str] = set()

    def chain(t: int) -> list[ModelInfo]:
        spec = route.tiers[t - 1]
        first = arm_model if (t == tier and arm_model is not None) else spec.model
        return [first, *spec.fallbacks]

    def fitting(t: int) -> list[ModelInfo]:
        ok = []
        for m in chain(t):
            why = m.misfit(context_tokens, needs_vision, needs_tools)
            if why is None:
                ok.append(m)
            elif m.id not in seen_skips:
                seen_skips.add(m.id)
                skipped.append((m, why))
        return ok

    order = [*range(tier, n + 1), *range(tier - 1, 0, -1)]
    chosen_tier = 0
    chosen: list[ModelInfo] = []
    for t in order:
        chosen = fitting(t)
        if chosen:
            chosen_tier = t
            break
    no_fit = not chosen
    cascade: list[Step] = []
    cascade_fb: list[tuple[Step, ...]] = []
    if no_fit:
        best: tuple[float, int, ModelInfo] | None = None
        for t in order:
            for m in chain(t):
                size = float("inf") if m.context_window is None else m.context_window
                if best is None or size > best[0]:
                    best = (size, t, m)
        assert best is not None
        chosen_tier, chosen = best[1], [best[2]]
        fallbacks: tuple[Step, ...] = ()
    else:
        fallbacks = tuple(_step(chosen_tier, m) for m in chosen[1:])
        if route.escalates:
            for t in range(chosen_tier + 1, n + 1):
                if len(cascade) >= route.max_depth:
                    break
                ok = fitting(t)
                if ok:
                    cascade.append(_step(t, ok[0]))
                    cascade_fb.append(tuple(_step(t, m) for m in ok[1:]))
    primary = chosen[0]
    plan = Plan(
        route=route.name,
        model=primary.id,
        provider=primary.provider,
        tier=chosen_tier,
        cascade=tuple(cascade),
        cascade_fallbacks=tuple(cascade_fb),
        fallbacks=fallbacks,
        min_confidence=route.min_confidence,
        escalate_on_validation_failure=route.on_validation_failure,
        max_depth=route.max_depth if route.escalates else 0,
        latency_budget_ms=route.latency_budget_ms,
        fallback_on=route.fallback_on,
    )
    return plan, tuple(skipped), no_fit


def guarded_plan(
    route: Route, tier: int, arm_model: ModelInfo | None, context_tokens: int, needs_vision: bool, needs_tools: bool
) -> tuple[Plan, tuple[tuple[ModelInfo, str], ...], bool]:
    """build_plan(), memoised per route on what the guard can distinguish."""
    key = (
        tier,
        arm_model.id if arm_model is not None else None,
        bisect_left(route.windows, context_tokens),
        needs_vision and route.any_without_vision,
        needs_tools and route.any_without_tools,
    )
    hit = route.guard_cache.get(key)
    if hit is None:
        hit = build_plan(route, tier, arm_model, context_tokens, needs_vision, needs_tools)
        if len(route.guard_cache) < 4096:
            route.guard_cache[key] = hit
    return hit


def _attribute_reader(name: str) -> Callable[[Request], Any]:
    def read(r: Request) -> Any:
        return r.attributes.get(name)

    return read


def _route(name: str, raw: Mapping[str, Any], models: Mapping[str, Any] | None) -> Route:
    tiers = tuple(
        Tier(
            index=i + 1,
            model=_model_info(t["model"], models),
            fallbacks=tuple(_model_info(f, models) for f in t.get("fallbacks", ())),
            expected_latency_ms=t.get("expected_latency_ms"),
        )
        for i, t in enumerate(raw["tiers"])
    )
    split = None
    if "split" in raw:
        s = raw["split"]
        arms, upper = [], 0
        for a in s["arms"]:
            upper += a["weight"]
            arms.append(
                Arm(
                    a["name"],
                    a["weight"],
                    upper,
                    a.get("route"),
                    _model_info(a["model"], models) if "model" in a else None,
                )
            )
        key = s["key"]
        read_key: Callable[[Request], Any]
        if key.startswith(ATTRIBUTE_PREFIX):
            attr = key[len(ATTRIBUTE_PREFIX) :]
            read_key = _attribute_reader(attr)
        else:
            read_key = attrgetter(key)

        split = Split(key, s.get("salt", name), tuple(arms), read_key)
    exp = None
    if "expectations" in raw:
        e = raw["expectations"]
        exp = Expectations(
            tuple((b["min"], b["max"]) for b in e.get("escalation_bands", ())),
            e.get("min_pass_rate"),
            e.get("max_cost_per_request_usd"),
            e.get("latency_p95_ms"),
        )
    all_models = [m for t in tiers for m in (t.model, *t.fallbacks)]
    if split is not None:
        all_models += [a.model for a in split.arms if a.model is not None]
    windows = [m.context_window for m in all_models if m.context_window is not None]
    esc = raw.get("escalate")
    score = raw.get("score")
    route = Route(
        name=name,
        description=raw.get("description"),
        critical=bool(raw.get("critical", False)),
        tiers=tiers,
        start_tier=int(raw.get("start_tier", 1)),
        score_source=score.get("source", "auto") if score is not None else None,
        thresholds=tuple(score["thresholds"]) if score is not None else None,
        escalates=esc is not None,
        min_confidence=esc.get("min_confidence") if esc is not None else None,
        on_validation_failure=bool(esc.get("on_validation_failure", False)) if esc else False,
        max_depth=int(esc.get("max_depth", max(len(tiers) - 1, 1))) if esc is not None else 0,
        fallback_on=frozenset(raw.get("fallback_on", PROVIDER_ERRORS)),
        latency_budget_ms=raw.get("latency_budget_ms"),
        budget=_budget(raw.get("budget")),
        split=split,
        expectations=exp,
        min_context_window=min(windows) if windows else None,
        any_without_vision=any(m.supports_vision is False for m in all_models),
        any_without_tools=any(m.supports_tools is False for m in all_models),
        plans={},
        windows=tuple(sorted(set(windows))),
        guard_cache={},
    )
    plans: dict[tuple[int, str | None], Plan] = {}
    arm_models = [None] + ([a.model for a in split.arms if a.model is not None] if split else [])
    for t in range(1, len(tiers) + 1):
        for am in arm_models:
            plans[(t, am.id if am else None)] = build_plan(route, t, am)[0]
    object.__setattr__(route, "plans", MappingProxyType(plans))
    return route


def compile_policy(document: object, models: Mapping[str, Mapping[str, Any]] | None = None) -> Policy:
    """Validate a document and compile it; raise PolicyError listing every problem when invalid.

    ``models`` (model id -> {"provider", "context_window", "supports_vision", "supports_tools"})
    supplies providers and limits; a model absent from it has provider "unknown" and no limits,
    so a catalog that lags the document never stops a client from routing.
    """
    errors = validate_document(document)
    if errors:
        raise PolicyError(errors)
    assert isinstance(document, dict)
    routes = {name: _route(name, raw, models) for name, raw in document["routes"].items()}
    rules = tuple(
        Rule(r["id"], r["route"], int(r["tier"]) if "tier" in r else None, compile_condition(r["when"]))
        for r in document.get("rules", ())
    )
    infos = {m.id: m for route in routes.values() for t in route.tiers for m in (t.model, *t.fallbacks)}
    per_key: dict[str, dict[str, Budget]] = {}
    for entry in document.get("dimension_budgets", ()):
        budget = _budget(entry)
        assert budget is not None
        per_key.setdefault(entry["dimension"], {})[entry["value"]] = budget
    return Policy(
        default_route=document["default_route"],
        task_types=MappingProxyType(dict(document.get("task_types", {}))),
        rules=rules,
        routes=MappingProxyType(routes),
        budget=_budget(document.get("budget")),
        models=MappingProxyType(infos),
        dimension_budgets=tuple(DimensionBudgets(k, MappingProxyType(v)) for k, v in per_key.items()),
    )
