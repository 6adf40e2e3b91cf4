"""Compile rule conditions into closures over a Request."""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from .fields import ATTRIBUTE_PREFIX
from .patterns import compile_search
from .types import Request

Predicate = Callable[[Request], bool]
_MISSING = object()


def _getter(field: str) -> Callable[[Request], Any]:
    """Return a function reading the field; None means missing (except for attributes: _MISSING)."""
    if field.startswith(ATTRIBUTE_PREFIX):
        name = field[len(ATTRIBUTE_PREFIX) :]
        return lambda r: r.attributes.get(name)
    return attrgetter(field)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: booleans never equal numbers."""
    return (a.__class__ is bool) is (b.__class__ is bool) and a == b


def compile_condition(cond: dict[str, Any]) -> Predicate:
    """Turn a validated condition into a predicate. A missing field makes a leaf false."""
    if "and" in cond:
        parts = tuple(compile_condition(c) for c in cond["and"])
        if len(parts) == 2:
            a, b = parts
            return lambda r: a(r) and b(r)
        return lambda r: all(p(r) for p in parts)
    if "or" in cond:
        parts = tuple(compile_condition(c) for c in cond["or"])
        if len(parts) == 2:
            a, b = parts
            return lambda r: a(r) or b(r)
        return lambda r: any(p(r) for p in parts)
    if "not" in cond:
        inner = compile_condition(cond["not"])
        return lambda r: not inner(r)

    get = _getter(cond["field"])
    op = cond["op"]
    value: Any = cond.get("value")

    if op == "exists":
        want = True if value is None else bool(value)
        return lambda r: (get(r) is not None) is want
    if op == "eq":
        if value.__class__ is bool:
            return lambda r: get(r) is value
        if isinstance(value, str):
            return lambda r: get(r) == value
        return lambda r: _num(get(r)) == value
    if op == "ne":
        if value.__class__ is bool:
            return lambda r: (v := get(r)) is not None and v is not value
        return lambda r: (v := get(r)) is not None and not _same(v, value)
    if op == "in":
        strings = frozenset(v for v in value if isinstance(v, str))
        others = tuple(v for v in value if not isinstance(v, str))
        if not others:
            return lambda r: get(r) in strings if get(r).__class__ is str else False
        return lambda r: (
            (v := get(r)) is not None and (v in strings if isinstance(v, str) else any(_same(v, o) for o in others))
        )
    if op in ("gt", "gte", "lt", "lte"):
        bound = value
        if op == "gt":
            return lambda r: (v := _num(get(r))) is not None and v > bound
        if op == "gte":
            return lambda r: (v := _num(get(r))) is not None and v >= bound
        if op == "lt":
            return lambda r: (v := _num(get(r))) is not None and v < bound
        return lambda r: (v := _num(get(r))) is not None and v <= bound
    if op == "regex":
        search = compile_search(value)  # RE2: linear in the text, whatever the pattern
        needles, folded = required_literals(value)
        if not needles:
            return lambda r: (v := get(r)).__class__ is str and search(v)
        is_text = cond["field"] == "text"

        def regex(r: Request) -> bool:
            v = get(r)
            if v.__class__ is not str:
                return False
            # Prefilter: a match must contain one of the needles; exact for ASCII input.
            if folded:
                if v.isascii():
                    hay = r.text_lower() if is_text else v.lower()
                    if not any(n in hay for n in needles):
                        return False
            elif not any(n in v for n in needles):
                return False
            return search(v)

        return regex
    if op == "contains_any":
        keywords = tuple(dict.fromkeys(k.lower() for k in value))
        if cond["field"] == "text":

            def contains_text(r: Request) -> bool:
                if r.text is None:
                    return False
                low = r.text_lower()
                for k in keywords:  # noqa: SIM110 - a plain loop is ~2x faster than any(genexpr) here
                    if k in low:
                        return True
                return False

            return contains_text

        def contains(r: Request) -> bool:
            v = get(r)
            if v.__class__ is not str:
                return False
            low = v.lower()
            return any(k in low for k in keywords)

        return contains
    raise ValueError(f"unknown operator {op!r}")  # unreachable for validated documents


def _num(v: Any) -> int | float | None:
    """The value as a number, or None when it is missing, boolean, non-numeric or NaN."""
    if v.__class__ is int or v.__class__ is float:
        return v if v == v else None
    return None


def required_literals(pattern: str) -> tuple[tuple[str, ...], bool]:
    """Substrings of which every match must contain at least one, and whether they are lower-cased
    (case-insensitive pattern). ((), False) when none can be derived; then no prefilter is used.

    Read with Python's own regex parser, whose syntax agrees with RE2's on what it derives from:
    plain literals, groups and alternations (anything else ends a literal run)."""
    if "[:" in pattern or "{," in pattern:  # POSIX classes and {,n}: RE2 and Python read these apart
        return (), False
    try:
        from re import _parser  # type: ignore[attr-defined]  # private module, not in typeshed

        parsed = _parser.parse(pattern)
        folded = bool(parsed.state.flags & re.IGNORECASE)
        found = _literals(list(parsed), folded)
        if not found or any(len(n) < 2 for n in found):
            return (), False
        if folded and not all(n.isascii() for n in found):
            return (), False
        return tuple(n.lower() for n in found) if folded else tuple(found), folded
    except Exception:  # internal parser API moved or an odd pattern: no prefilter, same answers
        return (), False


def _literals(nodes: list[tuple[Any, Any]], folded: bool) -> list[str] | None:
    from re import _constants as c  # type: ignore[attr-defined]  # private module, not in typeshed

    if len(nodes) == 1 and nodes[0][0] is c.BRANCH:
        out: list[str] = []
        for branch in nodes[0][1][1]:
            sub = _literals(list(branch), folded)
            if not sub:
                return None
            out += sub
        return out
    if len(nodes) == 1 and nodes[0][0] is c.SUBPATTERN:
        _group, add_flags, del_flags, sub = nodes[0][1]
        if add_flags or del_flags:
            return None
        return _literals(list(sub), folded)
    best, run = "", []
    for op, arg in nodes:
        if op is c.LITERAL:
            run.append(chr(arg))
        else:
            if len("".join(run)) > len(best):
                best = "".join(run)
            run = []
    if len("".join(run)) > len(best):
        best = "".join(run)
    return [best] if best else None
