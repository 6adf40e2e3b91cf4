"""decide(), next_step() and difficulty_score() behaviours beyond the conformance tables."""

from __future__ import annotations

import json

import pytest

from signalbox_client.engine import (
    OUTCOMES,
    BudgetFraction,
    Decision,
    Request,
    State,
    Step,
    compile_policy,
    decide,
    difficulty_score,
    next_step,
)

MODELS = {
    "small": {"provider": "openai", "context_window": 16000, "supports_vision": True, "supports_tools": True},
    "small-b": {"provider": "anthropic", "context_window": 32000},
    "large": {"provider": "openai", "context_window": 128000},
}
DOC = {
    "schema_version": 1,
    "default_route": "main",
    "rules": [
        {"id": "legal", "when": {"field": "text", "op": "regex", "value": r"\bINV-\d{4}\b"}, "route": "main", "tier": 2}
    ],
    "routes": {
        "main": {
            "tiers": [{"model": "small", "fallbacks": ["small-b"], "expected_latency_ms": 500}, {"model": "large"}],
            "score": {"source": "auto", "thresholds": [0.5]},
            "escalate": {"min_confidence": 0.6},
            "latency_budget_ms": 5000,
            "budget": {"daily_usd": 10},
        }
    },
}


@pytest.fixture(scope="module")
def policy():
    return compile_policy(DOC, MODELS)


def test_decide__score_at_threshold__goes_up_a_tier(policy):
    assert decide(policy, Request("t", score=0.5)).tier == 2
    assert decide(policy, Request("t", score=0.4999)).tier == 1


def test_decide__reason__is_json_serialisable_with_stable_keys(policy):
    d = decide(policy, Request("t", score=0.9, context_tokens=20000), State(routes={"main": BudgetFraction(daily=0.9)}))
    assert json.loads(json.dumps(d.reason)) == {
        "route_by": "default",
        "tier_by": "score",
        "score": 0.9,
        "score_source": "client",
        "thresholds": [0.5],
        "budget": {"scope": "route", "fraction": 0.9, "downgrade_at": 0.8, "from_tier": 2, "to_tier": 1},
        "capability_guard": [{"model": "small", "why": "context_window 16000 < 20000"}],
    }
    assert (d.tier, d.model, d.provider) == (1, "small-b", "anthropic")


def test_decide__same_inputs__share_the_plan(policy):
    a = decide(policy, Request("t", score=0.1))
    b = decide(policy, Request("x", score=0.2))
    assert a.plan is b.plan
    assert a.reason is not b.reason


def test_decide__decision_is_frozen(policy):
    d = decide(policy, Request("t"))
    with pytest.raises(AttributeError):
        d.reason = {}  # type: ignore[misc]
    assert isinstance(d, Decision)


def test_decide__regex_prefilter__same_answer_as_regex(policy):
    hit = decide(policy, Request("t", text="pay INV-1234 now", score=0.0))
    miss = decide(policy, Request("t", text="pay INV-12345 now", score=0.0))
    assert (hit.reason["route_by"], hit.tier) == ("rule", 2)
    assert miss.reason["route_by"] == "default"


def test_decide__case_insensitive_regex__non_ascii_text_still_matches():
    doc = {
        "schema_version": 1,
        "default_route": "a",
        "rules": [{"id": "k", "when": {"field": "text", "op": "regex", "value": "(?i)kelvin|straße"}, "route": "b"}],
        "routes": {"a": {"tiers": [{"model": "m"}]}, "b": {"tiers": [{"model": "n"}]}},
    }
    p = compile_policy(doc)
    assert decide(p, Request("t", text="STRASSE")).route == "a"  # re does not fold ß to ss
    assert decide(p, Request("t", text="\u212aELVIN")).route == "b"  # Kelvin sign folds to k
    assert decide(p, Request("t", text="Die Straße")).route == "b"


def test_decide__nan_client_score__treated_as_missing(policy):
    d = decide(policy, Request("t", score=float("nan")))
    assert d.reason["score_source"] == "heuristic"


def test_decide__context_tokens_defaults_to_prompt_tokens():
    assert Request("t", prompt_tokens=42).context_tokens == 42
    assert Request("t", prompt_tokens=42, context_tokens=100).context_tokens == 100


def test_next_step__unknown_outcome__raises_value_error(policy):
    d = decide(policy, Request("t", score=0.0))
    with pytest.raises(ValueError, match="unknown outcome"):
        next_step(policy, d, attempt=1, outcome="exploded", confidence=None, elapsed_ms=0)


def test_next_step__fallback_then_escalate__reasons(policy):
    d = decide(policy, Request("t", score=0.0))
    first = next_step(policy, d, attempt=1, outcome="rate_limited", confidence=None, elapsed_ms=10)
    assert first is not None
    assert first.kind == "fallback"
    assert first.step == Step(1, "small-b", "anthropic")
    second = next_step(policy, d, attempt=2, outcome="ok", confidence=0.1, elapsed_ms=600, current=first.step)
    assert second is not None
    assert second.kind == "escalate"
    assert second.step == Step(2, "large", "openai")
    assert second.reason == {
        "trigger": "low_confidence",
        "attempt": 3,
        "from": {"tier": 1, "model": "small-b"},
        "confidence": 0.1,
        "min_confidence": 0.6,
        "depth": 1,
    }
    assert next_step(policy, d, attempt=3, outcome="ok", confidence=0.1, elapsed_ms=900, current=second.step) is None


def test_next_step__pure__same_inputs_same_answer(policy):
    d = decide(policy, Request("t", score=0.0))
    runs = {
        json.dumps(next_step(policy, d, attempt=1, outcome=o, confidence=0.2, elapsed_ms=1).to_dict())
        if next_step(policy, d, attempt=1, outcome=o, confidence=0.2, elapsed_ms=1)
        else "none"
        for o in sorted(OUTCOMES)
        for _ in range(3)
    }
    assert len(runs) <= len(OUTCOMES)


def test_difficulty_score__bounds_and_monotonic_in_length():
    assert difficulty_score(Request("t")) == 0.0
    short = difficulty_score(Request("t", prompt_tokens=10))
    long = difficulty_score(Request("t", prompt_tokens=5000))
    assert 0.0 < short < long <= 0.5
    top = difficulty_score(Request("t", prompt_tokens=10**9, text="why? why? why? analyze compare prove"))
    assert top == 1.0


def test_difficulty_score__documented_example():
    req = Request("t", prompt_tokens=100, text="Why? Compare and analyze this step by step?")
    assert difficulty_score(req) == 0.7068


def test_budget_fraction__malformed_values__treated_as_unknown():
    from signalbox_client.engine import BudgetFraction

    assert BudgetFraction(daily="0.9", monthly=None).fraction is None  # type: ignore[arg-type]
    assert BudgetFraction(daily=True, monthly=0.5).fraction == 0.5  # type: ignore[arg-type]
    assert BudgetFraction(daily=float("nan"), monthly=0.85).fraction == 0.85
