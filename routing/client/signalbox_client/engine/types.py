"""Frozen value types the engine takes and returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from signalbox_client import protocol

OUTCOMES: frozenset[str] = frozenset(protocol.OUTCOMES)
PROVIDER_ERRORS: frozenset[str] = frozenset({"timeout", "rate_limited", "error"})

_EMPTY: Mapping[str, Any] = MappingProxyType({})

AttributeValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Request:
    """What the application knows about one LLM request before calling a model.

    ``context_tokens`` is what the model must hold (prompt + expected output) and defaults to
    ``prompt_tokens``. ``text`` is read by keyword/regex rules and the heuristic, never logged.
    """

    task_type: str
    prompt_tokens: int = 0
    context_tokens: int | None = None
    text: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    user_tier: str | None = None
    risk: str | None = None
    use_case: str | None = None
    needs_tools: bool = False
    needs_vision: bool = False
    needs_code: bool = False
    latency_class: Literal["interactive", "batch"] | None = None
    score: float | None = None
    critical: bool = False
    attributes: Mapping[str, AttributeValue] = field(default_factory=lambda: _EMPTY)
    # Lower-cased text, computed on first use by keyword rules and the heuristic.
    _text_lower: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.context_tokens is None:
            object.__setattr__(self, "context_tokens", self.prompt_tokens)

    def text_lower(self) -> str:
        """The prompt text lower-cased ("" when there is none), cached on the request."""
        low = self._text_lower
        if low is None:
            low = self.text.lower() if self.text else ""
            object.__setattr__(self, "_text_lower", low)
        return low

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Request:
        """Build a Request from its JSON form (the conformance suite's ``request`` object)."""
        known = {k: v for k, v in data.items() if k in _REQUEST_FIELDS}
        if "attributes" in known and known["attributes"] is not None:
            known["attributes"] = MappingProxyType(dict(known["attributes"]))
        elif "attributes" in known:
            del known["attributes"]
        return cls(**known)


_REQUEST_FIELDS = frozenset(f for f in Request.__dataclass_fields__ if not f.startswith("_"))


@dataclass(frozen=True, slots=True)
class BudgetFraction:
    """Spent fraction of a daily and a monthly budget (1.0 = fully spent); None = unknown."""

    daily: float | None = None
    monthly: float | None = None

    @property
    def fraction(self) -> float | None:
        """The higher of the known fractions, or None when neither is known."""
        best = None
        for value in (self.daily, self.monthly):
            # Unknown, NaN or not a number (a malformed budget feed) is no information.
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                continue
            if best is None or value > best:
                best = value
        return best


@dataclass(frozen=True, slots=True)
class State:
    """Budget state fed back by the control plane: policy-wide, per-route and per-dimension-value
    spend fractions (``dimensions``: dimension key -> attribute value text -> fractions)."""

    policy: BudgetFraction | None = None
    routes: Mapping[str, BudgetFraction] = field(default_factory=lambda: _EMPTY)
    dimensions: Mapping[str, Mapping[str, BudgetFraction]] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> State:
        """Build a State from ``{"policy": {"daily": .., "monthly": ..}, "routes": {name: {..}},
        "dimensions": {key: {value: {..}}}}``."""
        if not data:
            return cls()
        policy = data.get("policy")
        routes = data.get("routes") or {}
        dimensions = data.get("dimensions") or {}
        return cls(
            policy=BudgetFraction(**policy) if policy else None,
            routes=MappingProxyType({k: BudgetFraction(**v) for k, v in routes.items()}),
            dimensions=MappingProxyType(
                {
                    key: MappingProxyType({value: BudgetFraction(**f) for value, f in values.items()})
                    for key, values in dimensions.items()
                }
            )
            if dimensions
            else _EMPTY,
        )


@dataclass(frozen=True, slots=True)
class Step:
    """One model to call: its tier (1-based), model id and provider."""

    tier: int
    model: str
    provider: str

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "model": self.model, "provider": self.provider}


@dataclass(frozen=True, slots=True)
class NextStep:
    """What to do after an attempt: ``kind`` is "fallback" or "escalate"; ``reason`` is JSON-ready."""

    kind: Literal["fallback", "escalate"]
    step: Step
    reason: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step.to_dict(), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything about a decision except its reason; shared between decisions that agree."""

    route: str
    model: str
    provider: str
    tier: int
    cascade: tuple[Step, ...]
    cascade_fallbacks: tuple[tuple[Step, ...], ...]
    fallbacks: tuple[Step, ...]
    min_confidence: float | None
    escalate_on_validation_failure: bool
    max_depth: int
    latency_budget_ms: float | None
    fallback_on: frozenset[str]


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one request: the model to call first and how to carry on.

    Fields other than ``reason`` live on a shared :class:`Plan` and are exposed as properties.
    ``cascade`` lists the steps the request may escalate to, in order; ``cascade_fallbacks[i]``
    are the fallbacks of ``cascade[i]``; ``fallbacks`` are those of the chosen tier. All are
    already capability-guarded. ``reason`` is a JSON-serialisable dict (see docs/policy-document.md).
    """

    plan: Plan
    reason: dict[str, Any]

    @property
    def route(self) -> str:
        return self.plan.route

    @property
    def model(self) -> str:
        return self.plan.model

    @property
    def provider(self) -> str:
        return self.plan.provider

    @property
    def tier(self) -> int:
        return self.plan.tier

    @property
    def step(self) -> Step:
        """The first step: the chosen tier, model and provider."""
        p = self.plan
        return Step(p.tier, p.model, p.provider)

    @property
    def cascade(self) -> tuple[Step, ...]:
        return self.plan.cascade

    @property
    def cascade_fallbacks(self) -> tuple[tuple[Step, ...], ...]:
        return self.plan.cascade_fallbacks

    @property
    def fallbacks(self) -> tuple[Step, ...]:
        return self.plan.fallbacks

    @property
    def min_confidence(self) -> float | None:
        return self.plan.min_confidence

    @property
    def escalate_on_validation_failure(self) -> bool:
        return self.plan.escalate_on_validation_failure

    @property
    def max_depth(self) -> int:
        return self.plan.max_depth

    @property
    def latency_budget_ms(self) -> float | None:
        return self.plan.latency_budget_ms

    @property
    def fallback_on(self) -> frozenset[str]:
        return self.plan.fallback_on

    def to_dict(self) -> dict[str, Any]:
        """JSON form of the decision (the conformance suite's ``expect`` vocabulary)."""
        p = self.plan
        return {
            "route": p.route,
            "model": p.model,
            "provider": p.provider,
            "tier": p.tier,
            "cascade": [s.to_dict() for s in p.cascade],
            "cascade_fallbacks": [[s.to_dict() for s in chain] for chain in p.cascade_fallbacks],
            "fallbacks": [s.to_dict() for s in p.fallbacks],
            "min_confidence": p.min_confidence,
            "escalate_on_validation_failure": p.escalate_on_validation_failure,
            "max_depth": p.max_depth,
            "latency_budget_ms": p.latency_budget_ms,
            "fallback_on": sorted(p.fallback_on),
            "reason": self.reason,
        }
