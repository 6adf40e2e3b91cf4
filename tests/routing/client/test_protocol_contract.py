"""The decision record is one contract: every record the SDK writes is valid against the published
JSON Schema (`signalbox_client.protocol.decision_record_schema`) and passes the server's ingest check
(`metrics.ingest.records.record_check`); and the schema and the check agree on records built wrong
one field at a time."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from metrics.ingest.records import Checked, record_check
from signalbox_client import CallResult, protocol

from .fakes import SLUG

VALIDATOR = Draft202012Validator(protocol.decision_record_schema(), format_checker=FormatChecker())


def server_check(record: Any) -> Checked | dict[str, list[str]]:
    now = time.time()
    return record_check(record, policies={SLUG: 1}, not_before=0, not_after=now + protocol.MAX_FUTURE_SECONDS)


def test_schema__is_valid_json_schema_2020_12() -> None:
    Draft202012Validator.check_schema(protocol.decision_record_schema())
    Draft202012Validator.check_schema(protocol.decisions_body_schema())


def test_sdk_records__every_path_of_run__valid_for_schema_and_server(make_client: Any, server: Any) -> None:
    client = make_client(app="checkout-api")
    assert client.refresh() == "installed"
    answers = iter(
        [
            CallResult("draft", confidence=0.2, tokens_in=10, tokens_out=5),  # low confidence: escalates
            CallResult("final", confidence=0.9, tokens_in=10, tokens_out=5),
        ]
    )
    client.run("support", lambda attempt: next(answers), prompt_tokens=12, attributes={"tenant": "acme", "n": 3})

    class RateLimited(Exception):
        status_code = 429

    def flaky(attempt: Any) -> CallResult:
        if attempt.kind == "initial":
            raise RateLimited
        return CallResult("ok", tokens_in=1, tokens_out=1)

    client.run("support", flaky, prompt_tokens=5)
    decision = client.decide("extraction", prompt_tokens=4000, critical=True)
    client.record(decision, outcome="timeout", latency_ms=5000.0, tokens_in=4000, tokens_out=0)
    assert client.flush() is True

    records = list(server.records.values())
    assert {r["outcome"] for r in records} >= {"ok", "low_confidence", "rate_limited", "timeout"}
    for record in records:
        errors = sorted(e.message for e in VALIDATOR.iter_errors(record))
        assert errors == [], record
        assert isinstance(server_check(record), Checked), server_check(record)


def valid() -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "timestamp": "2026-11-30T12:00:00.000001Z",
        "policy": SLUG,
        "policy_version": 3,
        "route": "general",
        "task_type": "support",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "tier": 1,
        "attempt": 1,
        "outcome": "ok",
        "tokens_in": 10,
        "tokens_out": 2,
        "latency_ms": 12.5,
        "request_id": "r1",
        "reason": {"route_by": "task_type"},
        "confidence": 0.5,
        "cost_usd": None,
        "client": {"app": "a", "instance": "h:1", "sdk_version": "0.2.0"},
        "attributes": {"tenant": "acme", "beta": True, "n": 3, "x": 1.5},
    }


BROKEN: list[tuple[str, Any]] = [
    ("event_id", "not-a-uuid"),
    ("timestamp", "yesterday"),
    ("policy_version", 0),
    ("policy_version", 1.5),
    ("route", ""),
    ("route", "r" * (protocol.MAX_SHORT + 1)),
    ("model", "m" * (protocol.MAX_MODEL + 1)),
    ("provider", "p" * (protocol.MAX_PROVIDER + 1)),
    ("tier", 0),
    ("tier", protocol.MAX_TIER + 1),
    ("attempt", protocol.MAX_ATTEMPT + 1),
    ("outcome", "fine"),
    ("confidence", 1.5),
    ("tokens_in", -1),
    ("tokens_out", protocol.MAX_TOKENS),
    ("latency_ms", -1),
    ("latency_ms", protocol.MAX_LATENCY_MS * 2),
    ("cost_usd", -0.1),
    ("request_id", "q" * (protocol.MAX_SHORT + 1)),
    ("reason", ["not", "an", "object"]),
    ("client", {"app": "a", "colour": "red"}),
    ("attributes", {f"k{i}": i for i in range(protocol.MAX_ATTRIBUTES + 1)}),
    ("attributes", {"k" * (protocol.MAX_ATTRIBUTE_KEY + 1): 1}),
    ("attributes", {"k": "v" * (protocol.MAX_ATTRIBUTE_VALUE + 1)}),
    ("attributes", {"k": [1, 2]}),
    ("route", "nul\x00byte"),
    ("unknown_field", 1),
]


def test_valid_record__accepted_by_schema_and_server() -> None:
    assert VALIDATOR.is_valid(valid())
    assert isinstance(server_check(valid()), Checked)


@pytest.mark.parametrize(("field", "value"), BROKEN, ids=[f"{f}={str(v)[:20]!r}" for f, v in BROKEN])
def test_one_field_wrong__schema_and_server_both_refuse_it(field: str, value: Any) -> None:
    record = valid() | {field: value}
    assert not VALIDATOR.is_valid(record)
    errors = server_check(record)
    assert isinstance(errors, dict)
    assert any(path == field or path.startswith(f"{field}.") for path in errors), errors


@pytest.mark.parametrize("field", protocol.RECORD_REQUIRED)
def test_required_field_missing__schema_and_server_both_refuse_it(field: str) -> None:
    record = valid()
    del record[field]
    assert not VALIDATOR.is_valid(record)
    assert server_check(record) == {field: ["required"]} or field in server_check(record)
