"""Rule patterns run on RE2 (linear time) and documents stay within the per-document limits."""

from __future__ import annotations

import copy
import time

import pytest

from signalbox_client.engine import SCHEMA, Request, compile_policy, decide, validate_document
from signalbox_client.engine.validation import MAX_CONDITIONS, MAX_KEYWORDS, MAX_PATTERN_LENGTH, MAX_REGEXES

HOSTILE_TEXT = "a" * 10_000 + "!"


def policy_with(*conditions: dict) -> dict:
    return {
        "schema_version": 1,
        "default_route": "general",
        "rules": [{"id": f"r{i}", "when": c, "route": "careful"} for i, c in enumerate(conditions)],
        "routes": {"general": {"tiers": [{"model": "mini"}]}, "careful": {"tiers": [{"model": "mid"}]}},
    }


def regex(pattern: str, field: str = "text") -> dict:
    return {"field": field, "op": "regex", "value": pattern}


def hostile_document(n_regexes: int = 10_000, pattern_length: int = 90) -> dict:
    """200 rules of 50 regexes each (what the schema's per-rule limits allow), about 1 MB."""
    doc = policy_with()
    per_rule = 50
    pad = "x" * max(0, pattern_length - 20)
    doc["rules"] = [
        {
            "id": f"r{r}",
            "route": "careful",
            "when": {"or": [regex(f"^(a+)+{pad}{r}-{i}$") for i in range(per_rule)]},
        }
        for r in range(n_regexes // per_rule)
    ]
    return doc


@pytest.mark.parametrize("pattern", ["^(a+)+$", "(a|a)*$", "(a*)*b", "^(a|aa)+$", "(.*a){12}"])
def test_decide__pathological_pattern_on_long_text__decides_in_under_50_ms(pattern):
    policy = compile_policy(policy_with(regex(pattern)))

    started = time.process_time()
    decision = decide(policy, Request("chat", text=HOSTILE_TEXT))
    elapsed = time.process_time() - started

    assert elapsed < 0.05
    assert decision.route in {"general", "careful"}


def test_decide__pathological_pattern__same_answers_as_a_backtracking_engine_would_give():
    policy = compile_policy(policy_with(regex("^(a+)+$")))

    assert decide(policy, Request("chat", text="a" * 64)).route == "careful"
    assert decide(policy, Request("chat", text=HOSTILE_TEXT)).route == "general"


def test_decide__lone_surrogate_in_text__decides_without_raising():
    policy = compile_policy(policy_with(regex("a.b")))

    assert decide(policy, Request("chat", text="a\ud800b")).route == "careful"
    assert decide(policy, Request("chat", text="\ud800")).route == "general"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(ab)\\1", "backreferences are not supported (patterns use RE2 syntax)"),
        ("(?P<w>a)(?P=w)", "backreferences are not supported (patterns use RE2 syntax)"),
        ("foo(?=bar)", "lookahead and lookbehind are not supported (patterns use RE2 syntax)"),
        ("(?<!x)y", "lookahead and lookbehind are not supported (patterns use RE2 syntax)"),
        ("a++", "bad repetition operator: ++"),
        ("(?>a)", "invalid perl operator: (?>"),
        ("a{1001}", "invalid repetition size: {1001}"),
        ("\ud800", "the pattern holds a lone surrogate"),
    ],
)
def test_validate__pattern_re2_cannot_run__refused_at_its_path(pattern, message):
    doc = policy_with({"and": [{"field": "risk", "op": "eq", "value": "high"}, regex(pattern)]})

    assert [str(e) for e in validate_document(doc)] == [
        f"rules.0.when.and.1.value: invalid regular expression: {message}"
    ]


def test_validate__regex_limit__error_at_the_first_regex_past_it():
    doc = policy_with(*({"or": [regex(f"p{r}-{i}") for i in range(50)]} for r in range(MAX_REGEXES // 50 + 1)))

    assert [str(e) for e in validate_document(doc)] == [
        f"rules.{MAX_REGEXES // 50}.when.or.0: too many regex conditions: at most {MAX_REGEXES} in a document"
    ]


def test_validate__exactly_at_the_regex_limit__valid():
    doc = policy_with(*({"or": [regex(f"p{r}-{i}") for i in range(50)]} for r in range(MAX_REGEXES // 50)))

    assert validate_document(doc) == []


def test_validate__condition_limit__error_at_the_first_condition_past_it():
    leaf = {"field": "risk", "op": "eq", "value": "high"}
    # each rule: one "or" holding 49 leaves = 50 conditions
    doc = policy_with(*({"or": [leaf] * 49} for _ in range(MAX_CONDITIONS // 50 + 1)))

    assert [str(e) for e in validate_document(doc)] == [
        f"rules.{MAX_CONDITIONS // 50}.when: too many conditions: at most {MAX_CONDITIONS} in a document"
    ]


def test_validate__keyword_limit__error_at_the_list_that_passes_it():
    words = [f"w{i}" for i in range(1000)]
    n = MAX_KEYWORDS // 1000 + 1
    doc = policy_with(*({"field": "text", "op": "contains_any", "value": words} for _ in range(n)))

    assert [str(e) for e in validate_document(doc)] == [
        f"rules.{n - 1}.when.value: too many contains_any keywords: at most {MAX_KEYWORDS} in a document"
    ]


def test_validate__pattern_length_limit__one_value_for_schema_and_engine():
    doc = policy_with(regex("a" * (MAX_PATTERN_LENGTH + 1)))
    regex_branch = next(
        b["then"]["properties"]["value"]
        for b in SCHEMA["$defs"]["condition"]["allOf"]
        if b["if"].get("properties", {}).get("op") == {"const": "regex"}
    )

    assert regex_branch["maxLength"] == MAX_PATTERN_LENGTH
    assert [str(e) for e in validate_document(doc)] == [
        f"rules.0.when.value: must be at most {MAX_PATTERN_LENGTH} characters"
    ]


def test_validate__one_megabyte_of_ten_thousand_regexes__refused_in_under_200_ms():
    doc = hostile_document()

    started = time.process_time()
    errors = [str(e) for e in validate_document(doc)]
    elapsed = time.process_time() - started

    assert elapsed < 0.2
    assert f"rules.2.when.or.0: too many regex conditions: at most {MAX_REGEXES} in a document" in errors


def test_compile_policy__past_the_limits__refused_like_validation():
    from signalbox_client.engine import PolicyError

    with pytest.raises(PolicyError, match="too many regex conditions"):
        compile_policy(copy.deepcopy(hostile_document(n_regexes=200)))
