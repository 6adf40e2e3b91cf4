"""validate_document(): exact messages, reference checks, and never raising on hostile input."""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalbox_client.engine import (
    SCHEMA,
    DocumentError,
    PolicyError,
    compile_policy,
    referenced_models,
    validate_document,
)

VALID = {
    "schema_version": 1,
    "default_route": "general",
    "task_types": {"extraction": "extraction"},
    "rules": [{"id": "legal", "when": {"field": "text", "op": "regex", "value": "(?i)contract"}, "route": "general"}],
    "routes": {
        "general": {"tiers": [{"model": "gpt-4o-mini"}]},
        "extraction": {
            "tiers": [{"model": "gpt-4o-mini", "fallbacks": ["claude-3-5-haiku"]}, {"model": "gpt-4o"}],
            "escalate": {"min_confidence": 0.7},
            "split": {
                "key": "user_id",
                "arms": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50, "model": "gpt-4.1-mini"}],
            },
        },
    },
}
CATALOG = {m: {"provider": "openai"} for m in ["gpt-4o-mini", "claude-3-5-haiku", "gpt-4o", "gpt-4.1-mini"]}


def _with(path, value):
    doc = copy.deepcopy(VALID)
    cur = doc
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    return doc


def test_validate__valid_document__no_errors():
    assert validate_document(VALID, CATALOG) == []


def test_document_error__str__is_dotted_path_and_message():
    assert str(DocumentError("routes.a.tiers.1.model", "x")) == "routes.a.tiers.1.model: x"
    assert str(DocumentError("", "expected an object, got an array")) == "(root): expected an object, got an array"


def test_validate__number_above_maximum__jsonschema_wording():
    doc = _with(["routes", "extraction", "escalate", "min_confidence"], 1.4)
    assert [str(e) for e in validate_document(doc)] == [
        "routes.extraction.escalate.min_confidence: 1.4 is greater than the maximum of 1"
    ]


def test_validate__model_not_in_catalog__named_with_path():
    doc = _with(["routes", "extraction", "tiers", 1, "model"], "gpt-9")
    assert [str(e) for e in validate_document(doc, CATALOG)] == [
        "routes.extraction.tiers.1.model: unknown model 'gpt-9' (not in the catalog)"
    ]


def test_validate__without_catalog__unknown_models_are_fine():
    assert validate_document(_with(["routes", "extraction", "tiers", 1, "model"], "gpt-9")) == []


def test_validate__unknown_field__reported_at_parent():
    doc = _with(["routes", "general", "colour"], "red")
    assert [str(e) for e in validate_document(doc)] == ["routes.general: unknown field 'colour'"]


def test_validate__missing_required__reported_at_parent():
    doc = copy.deepcopy(VALID)
    del doc["routes"]["general"]["tiers"][0]["model"]
    assert [str(e) for e in validate_document(doc)] == ["routes.general.tiers.0: field 'model' is required"]


def test_validate__invalid_regex__message_names_the_problem():
    doc = _with(["rules", 0, "when", "value"], "(contract")
    assert [str(e) for e in validate_document(doc)] == [
        "rules.0.when.value: invalid regular expression: missing ): (contract"
    ]


def test_validate__non_object_roots__one_root_error_each():
    assert [str(e) for e in validate_document([])] == ["(root): expected an object, got an array"]
    assert [str(e) for e in validate_document(None)] == ["(root): expected an object, got null"]
    assert [str(e) for e in validate_document(3)] == ["(root): expected an object, got an integer"]


def test_validate__nan_and_infinity__rejected_not_accepted():
    doc = _with(["routes", "extraction", "escalate", "min_confidence"], math.nan)
    assert [str(e) for e in validate_document(doc)] == [
        "routes.extraction.escalate.min_confidence: nan is not a valid JSON number"
    ]
    doc = _with(["routes", "general", "latency_budget_ms"], math.inf)
    assert [str(e) for e in validate_document(doc)] == [
        "routes.general.latency_budget_ms: inf is not a valid JSON number"
    ]


def test_validate__huge_integer__out_of_range():
    doc = _with(["routes", "general", "latency_budget_ms"], 10**5000)
    assert [str(e) for e in validate_document(doc)] == ["routes.general.latency_budget_ms: number is out of range"]


def test_validate__deep_nesting__one_error_no_recursion_error():
    cond: dict = {"field": "risk", "op": "exists"}
    for _ in range(5000):
        cond = {"not": cond}
    errors = validate_document(_with(["rules", 0, "when"], cond))
    assert len(errors) == 1
    assert errors[0].message == "nested too deeply (more than 40 levels)"


def test_validate__non_json_values__reported():
    errors = validate_document(_with(["routes", "general", "description"], {1, 2}))
    assert [str(e) for e in errors] == ["routes.general.description: not a JSON value (set)"]


def test_validate__errors_sorted_by_path_with_numeric_indexes():
    doc = copy.deepcopy(VALID)
    doc["rules"] = [dict(VALID["rules"][0], id=f"r{i}", route="nope" if i in (2, 10) else "general") for i in range(11)]
    assert [e.path for e in validate_document(doc)] == ["rules.2.route", "rules.10.route"]


def test_validate__threshold_count_and_order():
    doc = _with(["routes", "extraction", "score"], {"thresholds": [0.5, 0.5]})
    assert [str(e) for e in validate_document(doc)] == [
        "routes.extraction.score.thresholds: expected 1 threshold for 2 tiers, got 2",
        "routes.extraction.score.thresholds.1: thresholds must strictly ascend: 0.5 is not greater than 0.5",
    ]


def test_compile_policy__invalid__raises_policy_error_with_all_errors():
    with pytest.raises(PolicyError) as info:
        compile_policy(_with(["default_route"], "nope"))
    assert [str(e) for e in info.value.errors] == ["default_route: unknown route 'nope'"]


def test_referenced_models__tiers_fallbacks_and_arms():
    assert referenced_models(VALID) == {"gpt-4o-mini", "claude-3-5-haiku", "gpt-4o", "gpt-4.1-mini"}


def test_referenced_models__garbage__empty_set():
    assert referenced_models([1, 2]) == set()
    assert referenced_models({"routes": {"a": {"tiers": "x", "split": {"arms": [1]}}}}) == set()


def test_schema__every_property_has_a_description():
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and "description" not in sub:
                    missing.append(f"{path}.{name}")
            for key, sub in node.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}.{i}")

    walk(SCHEMA, "")
    # if/then branches only narrow the value's type; the property is described once, above them.
    assert [p for p in missing if ".if." not in p and ".then." not in p] == []


def test_schema__objects_forbid_unknown_fields():
    loose = []

    def walk(node, path):
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False and "if" not in path:
                loose.append(path)
            for key, sub in node.items():
                walk(sub, f"{path}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}/{i}")

    walk(SCHEMA, "")
    assert [p for p in loose if "/then" not in p] == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=40,
)
policy_keys = st.sampled_from(
    [
        "schema_version",
        "default_route",
        "task_types",
        "rules",
        "routes",
        "budget",
        "tiers",
        "model",
        "when",
        "field",
        "op",
        "value",
        "and",
        "or",
        "not",
        "split",
        "arms",
    ]
)
policy_like = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(policy_keys | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_validate__arbitrary_json__never_raises(document):
    errors = validate_document(document)
    assert all(isinstance(e, DocumentError) for e in errors)
    json.dumps([str(e) for e in errors])


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(policy_like, st.none() | st.dictionaries(st.text(max_size=6), st.dictionaries(st.text(max_size=6), json_values)))
def test_validate__policy_shaped_garbage__never_raises(document, models):
    validate_document(document, models)
    referenced_models(document)
    assert isinstance(validate_document({"schema_version": 1, "default_route": "a", "routes": {"a": document}}), list)


# -- dimensions: the attribute keys the control plane aggregates by ------------------------------


def test_validate__declared_dimensions__valid():
    assert validate_document({**VALID, "dimensions": ["team", "feature", "tenant"]}, CATALOG) == []


@pytest.mark.parametrize(
    ("dimensions", "message"),
    [
        (["a", "b", "c", "d", "e", "f"], "dimensions: expected at most 5 items, got 6"),
        (["team", "team"], 'dimensions: duplicate item "team"'),
        (["team", "arm"], "dimensions.1: 'arm' is always a dimension; declare attribute keys only"),
        (["client"], "dimensions.0: 'client' is always a dimension; declare attribute keys only"),
        (["team", ""], "dimensions.1: must not be empty"),
        (["x" * 65], "dimensions.0: must be at most 64 characters"),
        ([3], "dimensions.0: expected a string, got an integer"),
        ("team", "dimensions: expected an array, got a string"),
    ],
)
def test_validate__bad_dimensions__path_precise_message(dimensions, message):
    assert [str(e) for e in validate_document({**VALID, "dimensions": dimensions}, CATALOG)] == [message]


def test_schema__dimension_limits__equal_the_protocol_constants():
    from signalbox_client import protocol

    spec = SCHEMA["properties"]["dimensions"]
    assert spec["maxItems"] == protocol.MAX_DIMENSIONS
    assert spec["items"]["maxLength"] == protocol.MAX_ATTRIBUTE_KEY


def test_schema__dimension_budget_limits__equal_the_protocol_constants():
    from signalbox_client import protocol

    spec = SCHEMA["properties"]["dimension_budgets"]
    entry = SCHEMA["$defs"]["dimension_budget"]
    assert spec["maxItems"] == protocol.MAX_DIMENSION_BUDGETS
    assert entry["properties"]["value"]["maxLength"] == protocol.MAX_DIMENSION_BUDGET_VALUE
    assert entry["properties"]["dimension"]["maxLength"] == protocol.MAX_ATTRIBUTE_KEY
    budget = SCHEMA["$defs"]["budget"]
    assert entry["anyOf"] == budget["anyOf"]
    for name, spec in budget["properties"].items():  # the same amounts and fraction as every budget
        assert {k: v for k, v in entry["properties"][name].items() if k != "description"} == {
            k: v for k, v in spec.items() if k != "description"
        }


def _with_guardrails(guardrails):
    doc = copy.deepcopy(VALID)
    doc["routes"]["extraction"]["split"]["guardrails"] = guardrails
    return doc


def test_validate__split_guardrails__valid():
    doc = _with_guardrails({"max_pass_rate_drop": 0.02, "max_cost_increase": 0.1, "on_breach": "stop"})
    assert validate_document(doc, CATALOG) == []


@pytest.mark.parametrize(
    ("guardrails", "message"),
    [
        ({"on_breach": "halt"}, 'routes.extraction.split.guardrails.on_breach: "halt" is not one of "alert", "stop"'),
        (
            {"max_pass_rate_drop": 2},
            "routes.extraction.split.guardrails.max_pass_rate_drop: 2 is greater than the maximum of 1",
        ),
        (
            {"max_cost_increase": -0.1},
            "routes.extraction.split.guardrails.max_cost_increase: -0.1 is less than the minimum of 0",
        ),
        ({}, "routes.extraction.split.guardrails: expected at least 1 entry"),
        ({"max_cost": 0.1}, "routes.extraction.split.guardrails: unknown field 'max_cost'"),
    ],
)
def test_validate__bad_split_guardrails__path_precise_message(guardrails, message):
    assert [str(e) for e in validate_document(_with_guardrails(guardrails), CATALOG)] == [message]
