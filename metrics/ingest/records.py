"""Validation of one decision record, by hand: the ingest hot path runs it 40,000+ times a second.

No Django import. `record_check(...)` returns either a `Checked` tuple (the normalised values the
storage needs) or a dict of field-path errors; the fields, their limits and formats are here, the
COPY rows built from valid records in `metrics.ingest.copy_rows`. A DRF serializer per record
costs ~100 µs; this costs a few.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from signalbox_client import protocol
from signalbox_client.protocol import (
    MAX_ATTEMPT,
    MAX_ATTRIBUTE_KEY,
    MAX_ATTRIBUTE_VALUE,
    MAX_ATTRIBUTES,
    MAX_COST_USD,
    MAX_LATENCY_MS,
    MAX_MODEL,
    MAX_PROVIDER,
    MAX_REASON_BYTES,
    MAX_SHORT,
    MAX_TIER,
    MAX_TOKENS,
    MAX_VERSION,
)

# The record's fields and limits are the client protocol's (`signalbox_client.protocol`).
OUTCOMES = frozenset(protocol.OUTCOMES)
REQUIRED = frozenset(protocol.RECORD_REQUIRED)
OPTIONAL = frozenset(protocol.RECORD_OPTIONAL)
ALLOWED = REQUIRED | OPTIONAL
CLIENT_FIELDS = frozenset(protocol.CLIENT_FIELDS)
UUID_FORMAT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The timestamps the SDK writes (RFC 3339, at most microseconds): PostgreSQL reads them as the
# same instant Python does, so COPY takes the client's text as is; any other accepted form is
# re-written by Python.
RFC3339_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
INT_LIMIT = 2**53


class Checked(NamedTuple):
    """A valid record's values, normalised for storage."""

    event_id: str  # lowercase canonical UUID
    ts: datetime  # aware
    ts_text: str  # the same instant as text PostgreSQL reads
    epoch: float
    policy_id: int
    policy_version: int
    route: str
    task_type: str
    model: str
    provider: str
    tier: int
    attempt: int
    escalated: bool
    request_id: str
    reason_json: str
    outcome: str
    confidence: float | None
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    latency_ms: float
    client_app: str
    client_instance: str
    client_sdk_version: str
    attributes_json: str


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    t = type(value)
    return (t is int) or (t is float and math.isfinite(value))


def _string_error(value: Any, limit: int, *, empty: bool = False) -> str | None:
    if type(value) is not str:
        return "must be a string"
    if not value and not empty:
        return "must not be empty"
    if len(value) > limit:
        return f"at most {limit} characters"
    if "\x00" in value:
        return "must not contain NUL characters"
    return None


def _escalated(tier: int, attempt: int, reason: Mapping[str, Any]) -> bool:
    """Whether this attempt moved up a tier from the attempt before it.

    The SDK puts the previous step in `reason.from.tier` on every retry; without it, any retry
    above tier 1 is taken for an escalation.
    """
    if attempt <= 1:
        return False
    came_from = reason.get("from")
    if type(came_from) is dict:
        previous = came_from.get("tier")
        if type(previous) is int:
            return tier > previous
    return tier > 1


def record_check(
    rec: Any,
    *,
    policies: Mapping[str, int],
    not_before: float,
    not_after: float,
) -> Checked | dict[str, list[str]]:
    """Validate one record; return its normalised values or its field-path errors.

    `policies` maps the slugs the SDK key may write to their ids; `not_before`/`not_after` bound
    the record's time (epoch seconds: the retention start, and now + 1 day).
    """
    if type(rec) is not dict:
        return {"": ["must be an object"]}
    keys = rec.keys()
    if not (keys >= REQUIRED and keys <= ALLOWED):
        errors: dict[str, list[str]] = {}
        for name in sorted(REQUIRED - keys):
            errors[name] = ["required"]
        for name in sorted(keys - ALLOWED, key=str):
            errors[str(name)] = ["unknown field"]
        more = _check_values(rec, policies, not_before, not_after)
        if isinstance(more, dict):
            for path, reasons in more.items():
                errors.setdefault(path, reasons)
        return errors
    return _check_values(rec, policies, not_before, not_after)


def _check_values(
    rec: dict[str, Any], policies: Mapping[str, int], not_before: float, not_after: float
) -> Checked | dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    get: Any = rec.get  # values are untrusted JSON: Any until checked

    event_id = get("event_id")
    if type(event_id) is not str or len(event_id) != 36 or not UUID_FORMAT.fullmatch(event_id):
        errors["event_id"] = ["must be a UUID (8-4-4-4-12 hex digits)"]
    else:
        event_id = event_id.lower()

    ts: Any = None
    epoch = 0.0
    raw_ts = get("timestamp")
    if type(raw_ts) is not str or len(raw_ts) > 40:
        errors["timestamp"] = ["must be an RFC 3339 string"]
    else:
        try:
            ts = datetime.fromisoformat(raw_ts)
        except ValueError:
            errors["timestamp"] = ["must be an RFC 3339 date-time"]
        else:
            if ts.tzinfo is None or len(raw_ts) < 20:
                errors["timestamp"] = ["must be an RFC 3339 date-time with a time zone"]
            else:
                epoch = ts.timestamp()
                if epoch > not_after:
                    errors["timestamp"] = ["more than 1 day in the future"]
                elif epoch < not_before:
                    errors["timestamp"] = ["older than the retention period"]

    policy_id = 0
    slug = get("policy")
    if type(slug) is not str:
        errors["policy"] = ["must be a string"]
    else:
        found = policies.get(slug)
        if found is None:
            errors["policy"] = ["not in this key's scope"]
        else:
            policy_id = found

    version = get("policy_version")
    if not _is_int(version) or not 1 <= version <= MAX_VERSION:
        errors["policy_version"] = ["must be an integer ≥ 1"]

    route, task_type, model, provider = get("route"), get("task_type"), get("model"), get("provider")
    # Fast checks inline; the message (and the NUL check, done once below) only on failure.
    if not (type(route) is str and 0 < len(route) <= MAX_SHORT):
        errors["route"] = [_string_error(route, MAX_SHORT) or "invalid"]
    if not (type(task_type) is str and 0 < len(task_type) <= MAX_SHORT):
        errors["task_type"] = [_string_error(task_type, MAX_SHORT) or "invalid"]
    if not (type(model) is str and 0 < len(model) <= MAX_MODEL):
        errors["model"] = [_string_error(model, MAX_MODEL) or "invalid"]
    if not (type(provider) is str and len(provider) <= MAX_PROVIDER):
        errors["provider"] = [_string_error(provider, MAX_PROVIDER, empty=True) or "invalid"]

    tier, attempt = get("tier"), get("attempt")
    if not _is_int(tier) or not 1 <= tier <= MAX_TIER:
        errors["tier"] = [f"must be an integer from 1 to {MAX_TIER}"]
    if not _is_int(attempt) or not 1 <= attempt <= MAX_ATTEMPT:
        errors["attempt"] = [f"must be an integer from 1 to {MAX_ATTEMPT}"]

    request_id = get("request_id", "")
    if request_id is None:
        request_id = ""
    elif not (type(request_id) is str and len(request_id) <= MAX_SHORT):
        errors["request_id"] = [_string_error(request_id, MAX_SHORT, empty=True) or "invalid"]

    reason = get("reason")
    reason_json = "{}"
    if reason is None:
        reason = {}
    elif type(reason) is not dict:
        errors["reason"] = ["must be an object"]
    else:
        try:
            reason_bytes = orjson.dumps(reason)
        except (TypeError, orjson.JSONEncodeError):
            errors["reason"] = ["must be plain JSON (finite numbers, string keys)"]
        else:
            if len(reason_bytes) > MAX_REASON_BYTES:
                errors["reason"] = [f"at most {MAX_REASON_BYTES} bytes serialized"]
            elif b"\\u0000" in reason_bytes:  # valid JSON, but PostgreSQL's json refuses it
                errors["reason"] = ["must not contain NUL characters"]
            else:
                reason_json = reason_bytes.decode()

    outcome = get("outcome")
    if type(outcome) is not str or outcome not in OUTCOMES:
        errors["outcome"] = [f"must be one of {', '.join(sorted(OUTCOMES))}"]

    confidence = get("confidence")
    if confidence is not None:
        if not _is_number(confidence) or not 0 <= confidence <= 1:
            errors["confidence"] = ["must be a number from 0 to 1, or null"]
        else:
            confidence = round(float(confidence), 6)

    tokens_in, tokens_out = get("tokens_in"), get("tokens_out")
    if not _is_int(tokens_in) or not 0 <= tokens_in < MAX_TOKENS:
        errors["tokens_in"] = ["must be an integer from 0 to 999999999"]
    if not _is_int(tokens_out) or not 0 <= tokens_out < MAX_TOKENS:
        errors["tokens_out"] = ["must be an integer from 0 to 999999999"]

    cost = get("cost_usd")
    if cost is not None:
        if not _is_number(cost) or not 0 <= cost <= MAX_COST_USD:
            errors["cost_usd"] = [f"must be a number from 0 to {MAX_COST_USD:.0f}, or null"]
        else:
            cost = float(cost)

    latency = get("latency_ms")
    if not _is_number(latency) or not 0 <= latency <= MAX_LATENCY_MS:
        errors["latency_ms"] = [f"must be a number from 0 to {MAX_LATENCY_MS:.0f}"]

    app = instance = sdk_version = ""
    client = get("client")
    if client is not None:
        if type(client) is not dict:
            errors["client"] = ["must be an object"]
        else:
            for name in client.keys() - CLIENT_FIELDS:
                errors[f"client.{name}"] = ["unknown field"]
            app, instance, sdk_version = (
                client.get("app", ""),
                client.get("instance", ""),
                client.get("sdk_version", ""),
            )
            for name, value in (("app", app), ("instance", instance), ("sdk_version", sdk_version)):
                if value is not None and not (type(value) is str and len(value) <= MAX_SHORT):
                    errors[f"client.{name}"] = [_string_error(value, MAX_SHORT, empty=True) or "invalid"]
            app, instance, sdk_version = app or "", instance or "", sdk_version or ""

    attributes_json = "{}"
    attributes = get("attributes")
    if attributes is not None:
        if type(attributes) is not dict:
            errors["attributes"] = ["must be an object"]
        elif attributes:
            if len(attributes) > MAX_ATTRIBUTES:
                errors["attributes"] = [f"at most {MAX_ATTRIBUTES} keys"]
            else:
                known = len(errors)
                for key, value in attributes.items():
                    if len(key) > MAX_ATTRIBUTE_KEY or not key or "\x00" in key:
                        errors[f"attributes.{key[:MAX_ATTRIBUTE_KEY]}"] = [
                            f"keys are 1 to {MAX_ATTRIBUTE_KEY} characters"
                        ]
                        continue
                    t = type(value)
                    if t is str:
                        if len(value) > MAX_ATTRIBUTE_VALUE or "\x00" in value:
                            errors[f"attributes.{key}"] = [f"strings are at most {MAX_ATTRIBUTE_VALUE} characters"]
                    elif t is bool or t is int:
                        if t is int and not -(2**53) <= value <= 2**53:
                            errors[f"attributes.{key}"] = ["integer out of range"]
                    elif t is float:
                        if not math.isfinite(value):
                            errors[f"attributes.{key}"] = ["must be a finite number"]
                    else:
                        errors[f"attributes.{key}"] = ["must be a string, number or boolean"]
                if len(errors) == known:  # (an integer beyond 64 bits would not serialize)
                    attributes_json = orjson.dumps(attributes).decode()

    if errors:
        return errors
    if "\x00" in f"{route}{task_type}{model}{provider}{request_id}{app}{instance}{sdk_version}":
        for name, value in (
            ("route", route),
            ("task_type", task_type),
            ("model", model),
            ("provider", provider),
            ("request_id", request_id),
            ("client.app", app),
            ("client.instance", instance),
            ("client.sdk_version", sdk_version),
        ):
            if "\x00" in value:
                errors[name] = ["must not contain NUL characters"]
        return errors
    ts_text = raw_ts if RFC3339_FORMAT.fullmatch(raw_ts) else ts.isoformat()
    return Checked(
        event_id,
        ts,
        ts_text,
        epoch,
        policy_id,
        version,
        route,
        task_type,
        model,
        provider,
        tier,
        attempt,
        _escalated(tier, attempt, reason),
        request_id,
        reason_json,
        outcome,
        confidence,
        tokens_in,
        tokens_out,
        cost,
        round(float(latency), 3),
        app,
        instance,
        sdk_version,
        attributes_json,
    )
