"""The engine conformance suite: JSON case files every engine implementation must pass.

``load_suites()`` reads the case files shipped here; ``check_case()`` runs one case against this
(Python) engine and returns the differences, so any consumer (the client SDK's tests, the server)
can run the suite the same way. See docs/conformance.md for the contract.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from signalbox_client.engine.decide import decide, next_step
from signalbox_client.engine.policy import compile_policy
from signalbox_client.engine.types import Request, State, Step
from signalbox_client.engine.validation import validate_document

SUITE_VERSION = "1.0"
TOLERANCE = 1e-9


def case_schema() -> dict[str, Any]:
    """The JSON Schema of a case file."""
    schema: dict[str, Any] = json.loads(resources.files(__package__).joinpath("case.schema.json").read_text("utf-8"))
    return schema


def load_suites() -> dict[str, dict[str, Any]]:
    """Every case file, by file name (without .json)."""
    out = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json") and entry.name != "case.schema.json":
            out[entry.name[:-5]] = json.loads(entry.read_text("utf-8"))
    return out


def iter_cases() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(suite, case) for every case of every file."""
    for suite in load_suites().values():
        for case in suite["cases"]:
            yield suite, case


def _resolve(suite: Mapping[str, Any], case: Mapping[str, Any]) -> tuple[Any, Any]:
    document = case.get("document")
    if isinstance(document, str) and case["kind"] != "validate":
        document = suite["documents"][document]
    models = case.get("models")
    if isinstance(models, str):
        models = suite["models"][models]
    return document, models


def same(expected: Any, actual: Any) -> bool:
    """JSON equality with numbers compared within TOLERANCE; booleans never equal numbers."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=0, abs_tol=TOLERANCE)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(same(a, b) for a, b in zip(expected, actual, strict=True))
    return bool(expected == actual)


def _compare_decision(expect: Mapping[str, Any], actual: Mapping[str, Any], label: str) -> list[str]:
    return [
        f"{label}{key}: expected {json.dumps(value)}, got {json.dumps(actual.get(key))}"
        for key, value in expect.items()
        if not same(value, actual.get(key))
    ]


def check_case(suite: Mapping[str, Any], case: Mapping[str, Any]) -> list[str]:
    """Run one case; return the differences from its expectations ([] = pass)."""
    document, models = _resolve(suite, case)
    kind = case["kind"]
    if kind == "validate":
        got = [str(e) for e in validate_document(document, models)]
        return [] if got == case["expect_errors"] else [f"errors: expected {case['expect_errors']}, got {got}"]

    policy = compile_policy(document, models)
    request = Request.from_dict(case["request"])
    state = State.from_dict(case.get("state"))
    decision = decide(policy, request, state)
    if kind == "decide":
        return _compare_decision(case["expect"], decision.to_dict(), "")

    problems: list[str] = _compare_decision(case.get("expect_decision", {}), decision.to_dict(), "decision.")
    current: Step | None = None
    for attempt, item in enumerate(case["steps"], start=1):
        result = next_step(
            policy,
            decision,
            attempt=attempt,
            outcome=item["outcome"],
            confidence=item.get("confidence"),
            elapsed_ms=item["elapsed_ms"],
            current=current,
        )
        expected_step: dict[str, Any] | None = item["expect"]
        label = f"steps.{attempt - 1}"
        if expected_step is None:
            if result is not None:
                problems.append(f"{label}: expected no step, got {json.dumps(result.to_dict())}")
            break
        if result is None:
            problems.append(f"{label}: expected {json.dumps(expected_step)}, got no step")
            break
        actual = result.to_dict()
        for key in ("kind", "step", "reason"):
            if key in expected_step and not same(expected_step[key], actual[key]):
                want = json.dumps(expected_step[key])
                problems.append(f"{label}.{key}: expected {want}, got {json.dumps(actual[key])}")
        current = result.step
    return problems
