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
            responses = operation.setdefault("responses", {})
            for code, description in wanted.items():
                answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref}}}
                if code == "429":
                    answer["headers"] = _RETRY_AFTER
                responses.setdefault(code, answer)
    return result
