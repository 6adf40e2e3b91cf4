"""Request features that conditions and split keys can name."""

from __future__ import annotations

# Field name -> JSON kind of its value ("string", "integer", "number", "boolean").
FIELD_KINDS: dict[str, str] = {
    "task_type": "string",
    "prompt_tokens": "integer",
    "context_tokens": "integer",
    "text": "string",
    "user_tier": "string",
    "user_id": "string",
    "risk": "string",
    "use_case": "string",
    "needs_tools": "boolean",
    "needs_vision": "boolean",
    "needs_code": "boolean",
    "latency_class": "string",
    "score": "number",
    "critical": "boolean",
}
ATTRIBUTE_PREFIX = "attributes."


def field_kind(field: str) -> str | None:
    """Kind of a field's value, or None for attributes (any scalar)."""
    return FIELD_KINDS.get(field)
