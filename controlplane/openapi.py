"""OpenAPI schema additions: the error answers every operation can give, in the one error shape
(`controlplane.errors`), so the schema describes the API as it really answers."""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"

_ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: a message for people and the reasons per field path.",
    "properties": {
        "message": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "field path (dotted; `body`, `(root)` or a header name) → reasons",
        },
    },
    "required": ["message", "errors"],
}

# Every operation: bad query or path input, no or bad credentials, no permission, unknown object,
# a request rate over the limit.
_ALWAYS = {
    "400": "Invalid input; `errors` names each field.",
    "401": "No credentials, or unknown ones.",
    "403": "The user lacks the permission.",
    "404": "No such object.",
    "429": "Too many requests; retry after the `Retry-After` header's seconds.",
}
# Operations with a request body, in addition.
_WITH_BODY = {
    "409": "The request conflicts with the current state (a stale revision, an existing slug).",
    "413": "The request body is too large.",
    "415": "Unsupported media type.",
}
# Operations that compute on what the caller sends (controlplane/compute.py), in addition; a view
# marks itself with `extend_schema(extensions=COMPUTE_EXTENSION)`.
COMPUTE_EXTENSION = {"x-signalbox-compute": True}
_COMPUTE = {
    "422": "The computation ran past its time budget (API_COMPUTE_TIME_BUDGET_MS); `errors` names the field.",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the error answers of every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = _ERROR_SCHEMA
    ref = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            wanted = {**_ALWAYS, **(_WITH_BODY if "requestBody" in operation else {})}
            if operation.pop("x-signalbox-compute", False):
                wanted.update(_COMPUTE)
            responses = operation.setdefault("responses", {})
            for code, description in wanted.items():
                answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref}}}
                if code == "429":
                    answer["headers"] = _RETRY_AFTER
                responses.setdefault(code, answer)
    return result


def oas30(schema: Any) -> Any:
    """A JSON Schema (2020-12) as OpenAPI 3.0 writes it: `nullable` for a null type, numeric
    exclusive bounds as flags, no `propertyNames` (kept in the description's place: the server's
    check enforces it)."""
    if isinstance(schema, list):
        return [oas30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in {"$schema", "$id", "propertyNames"}:
            continue
        if key == "type" and isinstance(value, list):
            kinds = [k for k in value if k != "null"]
            out["type"] = kinds[0] if len(kinds) == 1 else None
            if out["type"] is None:
                del out["type"]
            if "null" in value:
                out["nullable"] = True
        elif key == "anyOf" and any(option == {"type": "null"} for option in value):
            options = [oas30(option) for option in value if option != {"type": "null"}]
            out["nullable"] = True
            if len(options) == 1:
                out.update(options[0])
            else:
                out["anyOf"] = options
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"], out["exclusiveMinimum"] = value, True
        else:
            out[key] = oas30(value)
    return out


def _client_operations() -> dict[str, Any]:
    """The client protocol's two endpoints and the OTLP trace export (plain Django views, so
    drf-spectacular cannot see them), described from `signalbox_client.protocol`: the same
    constants and record schema the server checks and the SDK sends."""
    from signalbox_client import protocol

    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    budget = {
        "schema": {"type": "string", "maxLength": protocol.MAX_BUDGET_HEADER_BYTES},
        "description": "the policy's budget state as JSON (docs/protocol.md); absent when there is none",
    }
    etag = {"schema": {"type": "string"}, "description": "strong ETag of the live version"}
    security: list[dict[str, list[str]]] = [{"sdkKey": []}]
    speaks = {
        "name": protocol.PROTOCOL_HEADER,
        "in": "header",
        "required": False,
        "schema": {"type": "string", "enum": [str(v) for v in sorted(protocol.SUPPORTED_PROTOCOL_VERSIONS)]},
        "description": "the protocol version the client speaks (absent: 1); another version is answered 400",
    }
    fetch = {
        "operationId": "client_policy_fetch",
        "summary": "The live policy document (client protocol v1)",
        "description": "Answers 304 to a matching If-None-Match. Authorised by an SDK key scoped to the policy.",
        "tags": ["client"],
        "security": security,
        "parameters": [
            {"name": "policy", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
            speaks,
        ],
        "responses": {
            "200": {
                "description": "The live version.",
                "headers": {"ETag": etag, protocol.BUDGET_HEADER: budget},
                "content": {"application/json": {"schema": ref("ClientPolicy")}},
            },
            "304": {
                "description": "The client's version is the live one.",
                "headers": {"ETag": etag, protocol.BUDGET_HEADER: budget},
            },
        },
    }
    ingest = {
        "operationId": "client_decisions_ingest",
        "summary": "Upload a batch of decision records (client protocol v1)",
        "description": (
            f"At most {protocol.MAX_BATCH_RECORDS:,} records and {protocol.MAX_BATCH_BYTES:,} bytes. Each record "
            "is accepted, a duplicate (its event id was stored before: retries are idempotent) or rejected "
            "with its field errors; a rejected record never fails the batch."
        ),
        "tags": ["client"],
        "security": security,
        "parameters": [speaks],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref("DecisionBatch")}}},
        "responses": {
            "200": {
                "description": "Per-record results, in the order sent, once the accepted records are committed.",
                "content": {"application/json": {"schema": ref("DecisionBatchResult")}},
            }
        },
    }
    otlp_body = {
        "type": "string",
        "format": "binary",
        "description": "an OTLP ExportTraceServiceRequest (opentelemetry-proto), optionally gzip (Content-Encoding)",
    }
    traces = {
        "operationId": "otlp_traces_ingest",
        "summary": "OTLP/HTTP trace export: GenAI spans as decision records",
        "description": (
            "OpenTelemetry's OTLP/HTTP trace export, in protobuf or JSON, optionally gzip. Spans with GenAI "
            "semantic-convention attributes become decision records, through the same check, pricing and "
            "storage as the client upload; other spans are ignored (counted in `partialSuccess.errorMessage`). "
            "Each span's event id derives from its trace and span ids, so a re-exported span is stored once. "
            f"At most {protocol.MAX_BATCH_BYTES:,} bytes, compressed and inflated. The SDK key goes in "
            f"`Authorization: Bearer` or `{protocol.KEY_HEADER}`. Mapping: docs/otel.md."
        ),
        "tags": ["client"],
        "security": [*security, {"sdkKeyHeader": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-protobuf": {"schema": otlp_body},
                "application/json": {"schema": ref("OtlpJson")},
            },
        },
        "responses": {
            "200": {
                "description": "An ExportTraceServiceResponse in the request's encoding; rejected spans counted "
                "and named in its partial success.",
                "content": {
                    "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": ref("OtlpExportResponse")},
                },
            }
        },
    }
    batch = oas30(protocol.decisions_body_schema())
    batch["properties"]["decisions"]["items"] = ref("DecisionRecord")
    record = oas30(protocol.decision_record_schema())
    schemas = {
        "DecisionRecord": record,
        "DecisionBatch": batch,
        "DecisionBatchResult": {
            "type": "object",
            "required": ["results", "accepted", "duplicates", "rejected"],
            "properties": {
                "accepted": {"type": "integer"},
                "duplicates": {"type": "integer"},
                "rejected": {"type": "integer"},
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["event_id", "status"],
                        "properties": {
                            "event_id": {"type": "string", "nullable": True},
                            "status": {"type": "string", "enum": list(protocol.RESULT_STATUSES)},
                            "errors": {
                                "type": "object",
                                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
        "OtlpJson": {
            "type": "object",
            "description": "OTLP/JSON ExportTraceServiceRequest (trace and span ids as hex)",
            "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}},
        },
        "OtlpExportResponse": {
            "type": "object",
            "properties": {
                "partialSuccess": {
                    "type": "object",
                    "properties": {
                        "rejectedSpans": {"type": "string", "description": "an int64, as OTLP/JSON writes it"},
                        "errorMessage": {"type": "string"},
                    },
                }
            },
        },
        "ClientPolicy": {
            "type": "object",
            "required": ["policy", "version", "published_at", "document", "models"],
            "properties": {
                "policy": {"type": "string"},
                "version": {"type": "integer"},
                "published_at": {"type": "string", "format": "date-time"},
                "document": {"type": "object", "description": "the policy document (docs/policy-document.md)"},
                "models": {"type": "object", "description": "the catalog snapshot taken at publish"},
            },
        },
    }
    paths = {
        protocol.POLICY_PATH: {"get": fetch},
        protocol.DECISIONS_PATH: {"post": ingest},
        protocol.OTLP_TRACES_PATH: {"post": traces},
    }
    return {"paths": paths, "schemas": schemas}


def client_protocol(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: add the client protocol's endpoints and their SDK-key
    security scheme (run before `error_responses`, which adds their error answers)."""
    from signalbox_client.protocol import KEY_HEADER

    client = _client_operations()
    result.setdefault("paths", {}).update(client["paths"])
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(client["schemas"])
    components.setdefault("securitySchemes", {})["sdkKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An SDK key: `Authorization: Bearer sbk_…`, scoped to one or more policies.",
    }
    components["securitySchemes"]["sdkKeyHeader"] = {
        "type": "apiKey",
        "in": "header",
        "name": KEY_HEADER,
        "description": "An SDK key in a header of its own (OTLP exporters: /v1/traces only).",
    }
    return result
