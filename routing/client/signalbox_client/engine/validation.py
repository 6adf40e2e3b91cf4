"""Validation of a policy document: JSON Schema first, then cross-references."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema.exceptions import ValidationError

from signalbox_client.protocol import BUILTIN_DIMENSIONS, DIMENSION_NONE, DIMENSION_OTHER

from .errors import DocumentError
from .fields import field_kind
from .patterns import pattern_problem
from .schema import VALIDATOR

MAX_DEPTH = 40
# What one document may ask of every decide() and of each validation, checked before anything
# costly (docs/policy-document.md, "Limits"). The schema holds the per-item limits: 200 rules,
# 200 routes, 50 items per and/or, 1000 characters per pattern, 1000 values per list.
MAX_CONDITIONS = 2000  # condition objects in all rules (leaves and and/or/not)
MAX_REGEXES = 100  # regex leaves in all rules
MAX_KEYWORDS = 5000  # contains_any keywords in all rules
MAX_PATTERN_LENGTH = 1000  # characters per regex pattern (also in policy.schema.json)
_INT_LIMIT = 2**63
_JSON_KINDS = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}
_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}
_NUMERIC_OPS = frozenset({"gt", "gte", "lt", "lte"})
_TEXT_OPS = frozenset({"regex", "contains_any"})
_BUDGET_ANY_OF = [{"required": ["daily_usd"]}, {"required": ["monthly_usd"]}]


def _join(path: Any) -> str:
    return ".".join(str(p) for p in path)


def _show(value: Any) -> str:
    """Short JSON rendering of a value for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _name(value: Any) -> str:
    return "'" + str(value) + "'" if len(str(value)) <= 60 else "'" + str(value)[:57] + "...'"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _prewalk(document: Any) -> list[DocumentError]:
    """Reject what JSON Schema cannot judge safely: non-JSON values, NaN, huge numbers, deep nesting."""
    errors: list[DocumentError] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            errors.append(DocumentError(_join(path[:MAX_DEPTH]), f"nested too deeply (more than {MAX_DEPTH} levels)"))
            continue
        t = type(value)
        if t is dict:
            for key, item in value.items():
                if type(key) is not str:
                    errors.append(DocumentError(_join(path), f"object key {_show(key)} is not a string"))
                    continue
                stack.append((item, (*path, key)))
        elif t is list:
            for i, item in enumerate(value):
                stack.append((item, (*path, i)))
        elif t is float:
            if not math.isfinite(value):
                errors.append(DocumentError(_join(path), f"{value} is not a valid JSON number"))
        elif t is int:
            if not -_INT_LIMIT < value < _INT_LIMIT:
                errors.append(DocumentError(_join(path), "number is out of range"))
        elif t not in (str, bool, type(None)):
            errors.append(DocumentError(_join(path), f"not a JSON value ({t.__name__})"))
        if len(errors) >= 100:
            break
    return errors


def _limits(document: Any) -> list[DocumentError]:
    """Refuse a document past the per-document limits, naming the first item beyond each one.

    Runs before the schema and the regex compiler, so a hostile document costs one walk of its
    rules. Tolerant of malformed documents (the schema reports those).
    """
    rules = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(rules, list):
        return []
    errors: list[DocumentError] = []
    conditions = regexes = keywords = 0
    over: set[str] = set()
    stack: list[tuple[Any, str]] = [
        (rule["when"], f"rules.{i}.when")
        for i, rule in reversed(list(enumerate(rules)))
        if isinstance(rule, dict) and "when" in rule
    ]
    while stack:
        cond, path = stack.pop()
        if not isinstance(cond, dict):
            continue
        conditions += 1
        if conditions > MAX_CONDITIONS and "conditions" not in over:
            over.add("conditions")
            errors.append(DocumentError(path, f"too many conditions: at most {MAX_CONDITIONS} in a document"))
        for key in ("not", "or", "and"):
            sub = cond.get(key)
            if key == "not":
                if isinstance(sub, dict):
                    stack.append((sub, f"{path}.not"))
            elif isinstance(sub, list):
                stack.extend((item, f"{path}.{key}.{i}") for i, item in reversed(list(enumerate(sub))))
        op = cond.get("op")
        if op == "regex":
            regexes += 1
            if regexes > MAX_REGEXES and "regexes" not in over:
                over.add("regexes")
                errors.append(DocumentError(path, f"too many regex conditions: at most {MAX_REGEXES} in a document"))
        elif op == "contains_any" and isinstance(cond.get("value"), list):
            keywords += len(cond["value"])
            if keywords > MAX_KEYWORDS and "keywords" not in over:
                over.add("keywords")
                errors.append(
                    DocumentError(
                        f"{path}.value", f"too many contains_any keywords: at most {MAX_KEYWORDS} in a document"
                    )
                )
        if len(over) == 3:
            break
    return errors


def _schema_messages(error: ValidationError) -> Iterator[DocumentError]:
    path = _join(error.absolute_path)
    v = error.validator
    inst = error.instance
    vv = error.validator_value
    if v == "required":
        for prop in vv:
            if isinstance(inst, dict) and prop not in inst:
                yield DocumentError(path, f"field {_name(prop)} is required")
    elif v == "additionalProperties":
        known = error.schema.get("properties", {})
        for key in inst:
            if key not in known:
                yield DocumentError(path, f"unknown field {_name(key)}")
    elif v == "type":
        wanted = [vv] if isinstance(vv, str) else list(vv)
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        yield DocumentError(path, f"expected {words}, got {_kind(inst)}")
    elif v == "const":
        yield DocumentError(path, f"must be {_show(vv)}, got {_show(inst)}")
    elif v == "enum":
        yield DocumentError(path, f"{_show(inst)} is not one of {', '.join(_show(x) for x in vv)}")
    elif v == "pattern":
        what = error.schema.get("description", f"pattern {vv}")
        if error.schema_path and "propertyNames" in error.schema_path:
            yield DocumentError(path, f"invalid name {_name(inst)}: {what}")
        else:
            yield DocumentError(path, f"{_show(inst)} is not valid: {what}")
    elif v == "minItems":
        yield DocumentError(path, f"expected at least {vv} item{'s' if vv != 1 else ''}, got {len(inst)}")
    elif v == "maxItems":
        yield DocumentError(path, f"expected at most {vv} items, got {len(inst)}")
    elif v == "minProperties":
        if vv == 1 and "condition" in str(error.schema.get("description", "")).lower():
            yield DocumentError(path, "empty condition")
        else:
            yield DocumentError(path, f"expected at least {vv} entr{'ies' if vv != 1 else 'y'}")
    elif v == "maxProperties":
        if len(error.schema) == 1:  # the condition's "then": {"maxProperties": 1}
            yield DocumentError(
                path, "a condition is either a leaf {field, op, value} or exactly one of 'and', 'or', 'not'"
            )
        else:
            yield DocumentError(path, f"expected at most {vv} entries, got {len(inst)}")
    elif v == "minLength":
        yield DocumentError(path, "must not be empty" if vv == 1 else f"must be at least {vv} characters")
    elif v == "maxLength":
        yield DocumentError(path, f"must be at most {vv} characters")
    elif v == "uniqueItems":
        seen: list[Any] = []
        dup: Any = None
        for item in inst:
            if item in seen:
                dup = item
                break
            seen.append(item)
        yield DocumentError(path, f"duplicate item {_show(dup)}")
    elif v == "anyOf" and vv == _BUDGET_ANY_OF:
        yield DocumentError(path, "field 'daily_usd' or 'monthly_usd' is required")
    elif v == "not" and vv == {"required": ["route", "model"]}:
        yield DocumentError(path, "an arm sets 'route' or 'model', not both")
    else:
        # minimum / maximum / exclusive bounds and anything else: jsonschema's wording, e.g.
        # "1.4 is greater than the maximum of 1".
        yield DocumentError(path, error.message)


def _sort_key(error: DocumentError) -> tuple[Any, ...]:
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in error.path.split(".")) if error.path else ()
    return (parts, error.message)


def _finish(errors: list[DocumentError]) -> list[DocumentError]:
    unique = list(dict.fromkeys(errors))
    unique.sort(key=_sort_key)
    return unique


def validate_document(document: object, models: Mapping[str, Mapping[str, Any]] | None = None) -> list[DocumentError]:
    """Return every problem in a policy document, sorted by path; [] when it is valid.

    With ``models`` (a catalog snapshot: model id -> {"provider", "context_window", ...}) every
    model the document names must be in it. Never raises on any input.
    """
    try:
        errors = _prewalk(document)
        if errors:
            return _finish(errors)
        errors = _limits(document)
        if errors:
            return _finish(errors)
        errors = [m for e in VALIDATOR.iter_errors(document) for m in _schema_messages(e)]
        empty = {e.path for e in errors if e.message == "empty condition"}
        if empty:  # "field 'op' is required" adds nothing to "empty condition"
            errors = [e for e in errors if e.path not in empty or e.message == "empty condition"]
        if errors:
            return _finish(errors)
        return _finish(_references(document, models))  # type: ignore[arg-type]  # the schema passed: a dict
    except RecursionError:
        return [DocumentError("", f"nested too deeply (more than {MAX_DEPTH} levels)")]
    except Exception as exc:  # never raise into the caller: a validator must answer
        return [DocumentError("", f"could not validate the document ({type(exc).__name__})")]


# ---------------------------------------------------------------- cross-references


def _references(doc: dict[str, Any], models: Mapping[str, Any] | None) -> list[DocumentError]:
    errors: list[DocumentError] = []
    add = errors.append
    routes: dict[str, Any] = doc["routes"]

    def tiers_of(name: str) -> int:
        return len(routes[name]["tiers"])

    if doc["default_route"] not in routes:
        add(DocumentError("default_route", f"unknown route {_name(doc['default_route'])}"))
    for task_type, route in doc.get("task_types", {}).items():
        if route not in routes:
            add(DocumentError(f"task_types.{task_type}", f"unknown route {_name(route)}"))

    for i, key in enumerate(doc.get("dimensions", [])):
        if key in BUILTIN_DIMENSIONS:
            add(DocumentError(f"dimensions.{i}", f"{_name(key)} is always a dimension; declare attribute keys only"))

    declared = doc.get("dimensions", [])
    budgeted: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(doc.get("dimension_budgets", [])):
        base, key, value = f"dimension_budgets.{i}", entry["dimension"], entry["value"]
        if key in BUILTIN_DIMENSIONS:
            add(
                DocumentError(
                    f"{base}.dimension", f"{_name(key)} is a built-in dimension; budgets apply to declared keys"
                )
            )
        elif key not in declared:
            add(
                DocumentError(
                    f"{base}.dimension", f"{_name(key)} is not a declared dimension (list it in 'dimensions')"
                )
            )
        if value in (DIMENSION_NONE, DIMENSION_OTHER):
            add(DocumentError(f"{base}.value", f"{_name(value)} is a label of the rollups, not an attribute value"))
        if (key, value) in budgeted:
            add(
                DocumentError(
                    base,
                    f"duplicate budget for {_name(key)} {_name(value)} "
                    f"(first set at dimension_budgets.{budgeted[(key, value)]})",
                )
            )
        else:
            budgeted[(key, value)] = i

    first_use: dict[str, int] = {}
    for i, rule in enumerate(doc.get("rules", [])):
        base = f"rules.{i}"
        rid = rule["id"]
        if rid in first_use:
            add(DocumentError(f"{base}.id", f"duplicate rule id {_name(rid)} (first used at rules.{first_use[rid]})"))
        else:
            first_use[rid] = i
        if rule["route"] not in routes:
            add(DocumentError(f"{base}.route", f"unknown route {_name(rule['route'])}"))
        elif "tier" in rule and rule["tier"] > tiers_of(rule["route"]):
            n = tiers_of(rule["route"])
            add(
                DocumentError(
                    f"{base}.tier",
                    f"tier {rule['tier']} is out of range: route "
                    f"{_name(rule['route'])} has {n} tier{'s' if n != 1 else ''}",
                )
            )
        _check_condition(rule["when"], f"{base}.when", add)

    for name, route in routes.items():
        base = f"routes.{name}"
        n = len(route["tiers"])
        if route.get("start_tier", 1) > n:
            add(
                DocumentError(
                    f"{base}.start_tier",
                    f"tier {route['start_tier']} is out of range: the route has {n} tier{'s' if n != 1 else ''}",
                )
            )
        for t, tier in enumerate(route["tiers"]):
            if tier["model"] in tier.get("fallbacks", []):
                add(
                    DocumentError(
                        f"{base}.tiers.{t}.fallbacks",
                        f"model {_name(tier['model'])} is both the tier's model and a fallback",
                    )
                )
        score = route.get("score")
        if score is not None:
            th = score["thresholds"]
            if len(th) != n - 1:
                add(
                    DocumentError(
                        f"{base}.score.thresholds",
                        f"expected {_count(n - 1, 'threshold')} for {_count(n, 'tier')}, got {len(th)}",
                    )
                )
            for k in range(1, len(th)):
                if not th[k] > th[k - 1]:
                    add(
                        DocumentError(
                            f"{base}.score.thresholds.{k}",
                            f"thresholds must strictly ascend: {_show(th[k])} is not greater than {_show(th[k - 1])}",
                        )
                    )
        split = route.get("split")
        if split is not None:
            arms = split["arms"]
            total = sum(arm["weight"] for arm in arms)
            if total != 100:
                add(DocumentError(f"{base}.split.arms", f"arm weights sum to {total}, expected 100"))
            seen: dict[str, int] = {}
            for a, arm in enumerate(arms):
                if arm["name"] in seen:
                    add(
                        DocumentError(
                            f"{base}.split.arms.{a}.name",
                            f"duplicate arm name {_name(arm['name'])} (first used at arms.{seen[arm['name']]})",
                        )
                    )
                else:
                    seen[arm["name"]] = a
                if "route" in arm and arm["route"] not in routes:
                    add(DocumentError(f"{base}.split.arms.{a}.route", f"unknown route {_name(arm['route'])}"))
        bands = route.get("expectations", {}).get("escalation_bands", [])
        if len(bands) > max(n - 1, 0):
            add(
                DocumentError(
                    f"{base}.expectations.escalation_bands",
                    f"expected at most {_count(n - 1, 'band')} for {_count(n, 'tier')}, got {len(bands)}",
                )
            )
        for b, band in enumerate(bands):
            if band["min"] > band["max"]:
                add(
                    DocumentError(
                        f"{base}.expectations.escalation_bands.{b}",
                        f"min {_show(band['min'])} is greater than max {_show(band['max'])}",
                    )
                )

    if models is not None:
        for path, model in _model_refs(doc):
            if model not in models:
                add(DocumentError(path, f"unknown model {_name(model)} (not in the catalog)"))
    return errors


def _check_condition(cond: dict[str, Any], path: str, add: Any) -> None:
    if "and" in cond or "or" in cond:
        key = "and" if "and" in cond else "or"
        for i, sub in enumerate(cond[key]):
            _check_condition(sub, f"{path}.{key}.{i}", add)
        return
    if "not" in cond:
        _check_condition(cond["not"], f"{path}.not", add)
        return
    field, op = cond["field"], cond["op"]
    value: Any = cond.get("value")
    kind = field_kind(field)
    if op in _NUMERIC_OPS and kind in ("string", "boolean"):
        add(DocumentError(f"{path}.op", f"operator '{op}' needs a numeric field; '{field}' is {_TYPE_WORDS[kind]}"))
    elif op in _TEXT_OPS and kind is not None and kind != "string":
        add(DocumentError(f"{path}.op", f"operator '{op}' needs a string field; '{field}' is {_TYPE_WORDS[kind]}"))
    elif op in ("eq", "ne", "in") and kind is not None:
        values = value if op == "in" else [value]
        for i, item in enumerate(values):
            if not _fits(kind, item):
                where = f"{path}.value.{i}" if op == "in" else f"{path}.value"
                add(DocumentError(where, f"{_show(item)} can never equal '{field}' ({_TYPE_WORDS[kind]})"))
    if op == "regex":
        problem = pattern_problem(value)
        if problem is not None:
            add(DocumentError(f"{path}.value", problem))


def _fits(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "number"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _model_refs(doc: Any) -> Iterator[tuple[str, str]]:
    """(path, model id) for every model a document names; tolerant of malformed documents."""
    routes = doc.get("routes") if isinstance(doc, dict) else None
    if not isinstance(routes, dict):
        return
    for name, route in routes.items():
        if not isinstance(route, dict):
            continue
        tiers = route.get("tiers")
        if isinstance(tiers, list):
            for t, tier in enumerate(tiers):
                if not isinstance(tier, dict):
                    continue
                if isinstance(tier.get("model"), str):
                    yield f"routes.{name}.tiers.{t}.model", tier["model"]
                fallbacks = tier.get("fallbacks")
                if isinstance(fallbacks, list):
                    for f, model in enumerate(fallbacks):
                        if isinstance(model, str):
                            yield f"routes.{name}.tiers.{t}.fallbacks.{f}", model
        split = route.get("split")
        arms = split.get("arms") if isinstance(split, dict) else None
        if isinstance(arms, list):
            for a, arm in enumerate(arms):
                if isinstance(arm, dict) and isinstance(arm.get("model"), str):
                    yield f"routes.{name}.split.arms.{a}.model", arm["model"]


def referenced_models(document: object) -> set[str]:
    """Every model id a document names (tier models, fallbacks, split arm models). Never raises."""
    try:
        return {model for _, model in _model_refs(document)}
    except Exception:
        return set()
