"""Structural diff of two JSON documents (no Django): the changes a reviewer reads before publishing."""

from __future__ import annotations

from typing import Any

_MISSING = object()


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def document_diff(old: Any, new: Any) -> list[dict[str, Any]]:
    """Return the changes that turn `old` into `new`, in document order.

    Each change is `{"op": "added"|"removed"|"changed", "path": "routes.a.tiers.0.model",
    "old": ..., "new": ...}` (`old` absent for additions, `new` absent for removals). Objects are
    compared key by key; lists index by index, so an appended tier is one addition.
    """
    changes: list[dict[str, Any]] = []
    _walk(old, new, "", changes)
    return changes


def _walk(old: Any, new: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            child = _join(path, key)
            if key in new:
                _walk(old[key], new[key], child, out)
            else:
                out.append({"op": "removed", "path": child, "old": old[key]})
        out.extend({"op": "added", "path": _join(path, key), "new": new[key]} for key in new if key not in old)
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            child = _join(path, index)
            if index >= len(new):
                out.append({"op": "removed", "path": child, "old": old[index]})
            elif index >= len(old):
                out.append({"op": "added", "path": child, "new": new[index]})
            else:
                _walk(old[index], new[index], child, out)
        return
    # bool is an int in Python; true -> 1 is a change a reviewer must see.
    if old != new or type(old) is not type(new):
        out.append({"op": "changed", "path": path or "(root)", "old": old, "new": new})
