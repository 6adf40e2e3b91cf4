"""Policy documents as the admin's editor shows them: the schema in the editor's JSON Schema
dialect, and documents with their keys in the schema's order."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from signalbox_client import engine


@lru_cache(maxsize=1)
def editor_schema() -> dict[str, Any]:
    """The policy schema in the JSON Schema dialect the editor's bundled validator (Ajv 6,
    draft-07) reads: `$defs` become `definitions`. The server still validates with the original."""
    text = json.dumps(engine.SCHEMA).replace('"#/$defs/', '"#/definitions/')
    schema = json.loads(text)
    schema["definitions"] = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


def _schema_node(node: Any) -> dict[str, Any]:
    """Resolve a local `$ref` and merge the `properties` of `allOf` branches."""
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        node = {
            **engine.SCHEMA["$defs"].get(ref.rsplit("/", 1)[1], {}),
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    for branch in node.get("allOf", []):
        branch = _schema_node(branch)
        if "properties" in branch:
            node = {**node, "properties": {**branch["properties"], **node.get("properties", {})}}
    return node


def schema_ordered(value: Any, node: Any = None) -> Any:
    """The document with object keys in the schema's order (PostgreSQL's jsonb stores them
    sorted by length), so the editor reads top-down: schema_version, default_route, ... routes."""
    node = _schema_node(engine.SCHEMA if node is None else node)
    if isinstance(value, dict):
        properties = node.get("properties", {})
        order = {key: i for i, key in enumerate(properties)}
        keys = sorted(value, key=lambda k: (order.get(k, len(order)),))
        extra = node.get("additionalProperties")
        return {k: schema_ordered(value[k], properties.get(k, extra if isinstance(extra, dict) else {})) for k in keys}
    if isinstance(value, list):
        return [schema_ordered(item, node.get("items", {})) for item in value]
    return value
