"""The client protocol, version 1, in one place: the paths, headers, answer words, outcome values,
decision-record fields and limits that the server and every SDK share (docs/protocol.md).

No Django, no third-party import. The server imports these names (the policy fetch, the decision
ingest, the storage's column lengths, the OpenAPI schema of the client endpoints) and so does this
SDK; `decision_record_schema()` is the published JSON Schema of one decision record, built from the
same constants, which the server's ingest check and the SDK's records are both tested against.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL_VERSION = 1

# --- paths and headers -------------------------------------------------------------------------------
CLIENT_PREFIX = "/api/v1/client"
POLICY_PATH = CLIENT_PREFIX + "/policies/{policy}"  # GET, with If-None-Match
DECISIONS_PATH = CLIENT_PREFIX + "/decisions"  # POST {"decisions": [record, ...]}
AUTH_SCHEME = "Bearer"  # Authorization: Bearer <SDK key>
BUDGET_HEADER = "Signalbox-Budget"  # the policy's budget state, on every 200 and 304 of the policy fetch
MAX_BUDGET_HEADER_BYTES = 64_000
PROTOCOL_HEADER = "Signalbox-Protocol"  # the protocol version a client speaks (sent on every request)
# The versions a server of this release answers. A request without the header speaks version 1.
SUPPORTED_PROTOCOL_VERSIONS: frozenset[int] = frozenset({PROTOCOL_VERSION})


def protocol_version_problem(value: str | None) -> str | None:
    """Why a request's `Signalbox-Protocol` value cannot be answered, or None (absent: version 1)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        return f"must be a protocol version number, such as {PROTOCOL_VERSION}"
    if int(text) not in SUPPORTED_PROTOCOL_VERSIONS:
        spoken = ", ".join(str(v) for v in sorted(SUPPORTED_PROTOCOL_VERSIONS))
        return f"version {int(text)} is not spoken here; this server speaks {spoken}"
    return None


KEY_HEADER = "x-signalbox-key"  # the SDK key in a header of its own, for exporters that set custom headers
# OpenTelemetry's OTLP/HTTP trace export (docs/otel.md): GenAI spans become decision records.
OTLP_TRACES_PATH = "/v1/traces"
# Span attributes naming the routing a span stands for (defaults in docs/otel.md).
OTLP_POLICY_ATTRIBUTE = "signalbox.policy"
OTLP_POLICY_VERSION_ATTRIBUTE = "signalbox.policy_version"
OTLP_ROUTE_ATTRIBUTE = "signalbox.route"
OTLP_TASK_TYPE_ATTRIBUTE = "signalbox.task_type"
OTLP_TIER_ATTRIBUTE = "signalbox.tier"
OTLP_ATTEMPT_ATTRIBUTE = "signalbox.attempt"

# --- the upload's answer -----------------------------------------------------------------------------
ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
RESULT_STATUSES = (ACCEPTED, DUPLICATE, REJECTED)
MAX_BATCH_RECORDS = 5_000
MAX_BATCH_BYTES = 5_000_000

# --- the decision record -----------------------------------------------------------------------------
# What an attempt ended with (the engine's next_step() takes the same values).
OUTCOMES: tuple[str, ...] = ("ok", "low_confidence", "validation_failed", "error", "timeout", "rate_limited")
RECORD_REQUIRED: tuple[str, ...] = (
    "event_id",
    "timestamp",
    "policy",
    "policy_version",
    "route",
    "task_type",
    "model",
    "provider",
    "tier",
    "attempt",
    "outcome",
    "tokens_in",
    "tokens_out",
    "latency_ms",
)
RECORD_OPTIONAL: tuple[str, ...] = ("request_id", "reason", "confidence", "cost_usd", "client", "attributes")
CLIENT_FIELDS: tuple[str, ...] = ("app", "instance", "sdk_version")

MAX_SHORT = 200  # policy, route, task type, request id, client fields
MAX_MODEL = 255
MAX_PROVIDER = 100
MAX_OUTCOME = 20
MAX_REASON_BYTES = 4096  # `reason`, serialised as compact JSON
MAX_ATTRIBUTES = 20
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 256
MAX_TOKENS = 10**9
MAX_TIER = 5
MAX_ATTEMPT = 1000
MAX_VERSION = 2**31 - 1
MAX_COST_USD = 1_000_000.0
MAX_LATENCY_MS = 86_400_000.0  # one day
MAX_FUTURE_SECONDS = 86_400  # a timestamp at most one day ahead of the server's clock

# Dimensions: what the control plane aggregates decision records by, beyond the routing fields.
# A policy document declares up to MAX_DIMENSIONS attribute keys (`dimensions`; the schema's
# maxItems is the same number, a test holds them equal); the split arm and the client app are
# always dimensions, under these reserved names, which a document cannot declare. Per policy,
# dimension and UTC day the rollups keep at most DIMENSION_VALUES_PER_DAY values; later ones fold
# into DIMENSION_OTHER, and a record without the attribute (or outside any split) counts under
# DIMENSION_NONE.
MAX_DIMENSIONS = 5
DIMENSION_ARM = "arm"
DIMENSION_CLIENT = "client"
BUILTIN_DIMENSIONS: tuple[str, ...] = (DIMENSION_ARM, DIMENSION_CLIENT)
DIMENSION_VALUES_PER_DAY = 1000
DIMENSION_OTHER = "(other)"
DIMENSION_NONE = "(none)"
# Budgets per dimension value (`dimension_budgets` in a document; the schema's maxItems and
# maxLength are the same numbers, a test holds them equal). They travel in `Signalbox-Budget`
# under "dimensions": at most MAX_DIMENSION_BUDGETS values of at most MAX_DIMENSION_BUDGET_VALUE
# characters keep the header, with 200 routes, under MAX_BUDGET_HEADER_BYTES even when every
# character needs a JSON escape (docs/protocol.md).
MAX_DIMENSION_BUDGETS = 50
MAX_DIMENSION_BUDGET_VALUE = 64


def dimension_value_text(value: Any) -> str:
    """The text an attribute value is counted under in the dimension rollups (PostgreSQL's `->>`
    of the JSON value): strings as they are, `true`/`false`, numbers as JSON writes them. A
    dimension budget's `value` names this text, and the engine compares a request's attribute
    with it the same way."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": ")) if isinstance(value, dict | list) else json.dumps(value)


def _text(limit: int, *, empty: bool = False) -> dict[str, Any]:
    # NUL is refused: PostgreSQL cannot store it in text.
    return {"type": "string", "minLength": 0 if empty else 1, "maxLength": limit, "pattern": "^[^\\u0000]*$"}


def decision_record_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one decision record as a client sends it.

    What a schema cannot say is left to the server's check and documented in docs/protocol.md:
    `reason` at most MAX_REASON_BYTES serialised, a timestamp no more than a day ahead or older
    than the retention, a policy the key may write.
    """
    number = {"type": "number"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://signalbox.dev/schemas/decision-record/v1",
        "title": "DecisionRecord",
        "description": "One attempt of a client request, as the SDK logs it (client protocol v1).",
        "type": "object",
        "required": list(RECORD_REQUIRED),
        "additionalProperties": False,
        "properties": {
            "event_id": {
                "type": "string",
                "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                "description": "a UUID, unique per record: retries of a record reuse it (idempotent)",
            },
            "timestamp": {"type": "string", "format": "date-time", "description": "RFC 3339, with a time zone"},
            "policy": _text(MAX_SHORT),
            "policy_version": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
            "route": _text(MAX_SHORT),
            "task_type": _text(MAX_SHORT),
            "model": _text(MAX_MODEL),
            "provider": _text(MAX_PROVIDER, empty=True),
            "tier": {"type": "integer", "minimum": 1, "maximum": MAX_TIER},
            "attempt": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPT},
            "request_id": {"anyOf": [_text(MAX_SHORT, empty=True), {"type": "null"}]},
            "reason": {
                "type": ["object", "null"],
                "description": f"the engine's reason; at most {MAX_REASON_BYTES} bytes",
            },
            "outcome": {"type": "string", "enum": list(OUTCOMES)},
            "confidence": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "tokens_in": {"type": "integer", "minimum": 0, "exclusiveMaximum": MAX_TOKENS},
            "tokens_out": {"type": "integer", "minimum": 0, "exclusiveMaximum": MAX_TOKENS},
            "latency_ms": {**number, "minimum": 0, "maximum": MAX_LATENCY_MS},
            "cost_usd": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_COST_USD},
            "client": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    name: {"anyOf": [_text(MAX_SHORT, empty=True), {"type": "null"}]} for name in CLIENT_FIELDS
                },
            },
            "attributes": {
                "type": ["object", "null"],
                "maxProperties": MAX_ATTRIBUTES,
                "propertyNames": {"minLength": 1, "maxLength": MAX_ATTRIBUTE_KEY, "pattern": "^[^\\u0000]*$"},
                "additionalProperties": {
                    "anyOf": [
                        {"type": "string", "maxLength": MAX_ATTRIBUTE_VALUE, "pattern": "^[^\\u0000]*$"},
                        {"type": "boolean"},
                        {"type": "integer", "minimum": -(2**53), "maximum": 2**53},
                        {"type": "number"},
                    ]
                },
            },
        },
    }


def decisions_body_schema() -> dict[str, Any]:
    """The JSON Schema of the upload's body: `{"decisions": [record, ...]}`."""
    return {
        "type": "object",
        "required": ["decisions"],
        "properties": {
            "decisions": {"type": "array", "maxItems": MAX_BATCH_RECORDS, "items": decision_record_schema()}
        },
    }
