"""The Attribution page: cost, requests, cost per request, escalation and pass rate by a value of one
dimension (the split arm, the client app, or an attribute key the policy declares), each against
the period it is compared with (month over month for a month), from the dimension rollups.

Filters combine in two ways:
- a dimension with any routing field (route, task type, model from the filter bar; provider,
  tier and policy version here): the dimension cells hold those fields, so any range is read from
  the daily cells (route × team, tenant × model);
- a dimension with the value of another dimension (`where_dimension=team&where_value=search`,
  then by tenant): the cells hold one key per row, so this reads the raw decisions
  (`dimension_raw_totals`), for ranges of at most RAW_MAX_DAYS days, uncapped (no `(other)`).

`top=N` keeps the first N rows in the sort order and sums the rest into one "everything else" row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db import OperationalError
from psycopg.errors import QueryCanceled

from controlplane.compute import ComputeTimeout
from metrics.dashboards.definitions import pass_rate
from metrics.dashboards.filters import MAX_TEXT_FILTER, DashboardFilters, filter_text_parse
from metrics.rollups.selectors import RAW_STATEMENT_TIMEOUT_MS, dimension_raw_totals, dimension_totals
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import delta, ratio
from metrics.rules.numbers import num as _num
from metrics.rules.periods import range_compared
from metrics.schema import BUILTIN_DIMENSIONS, DIMENSION_NONE, DIMENSION_OTHER, DIMENSION_VALUES_PER_DAY

SORTS = (
    "cost_usd",
    "requests",
    "cost_per_request_usd",
    "escalation_rate",
    "pass_rate",
    "cost_change_usd",
    "cost_change_pct",
    "value",
)
# What the page's sort menu says of each (the API takes the keys).
SORT_LABELS = {
    "cost_usd": "cost",
    "requests": "requests",
    "cost_per_request_usd": "cost per request",
    "escalation_rate": "escalation rate",
    "pass_rate": "pass rate",
    "cost_change_usd": "cost change",
    "cost_change_pct": "cost change %",
    "value": "name",
}
DEFAULT_SORT = "cost_usd"
# The numbers each row has, compared with the previous period (`metrics.rules.numbers.delta`).
COMPARED = ("cost_usd", "requests", "cost_per_request_usd", "escalation_rate", "pass_rate")
MAX_TOP = 1000
RAW_MAX_DAYS = 7  # a dimension × dimension read scans the raw decisions of the range
REST_LABEL = "everything else"
# The table's columns, in the CSV's order (the first one headed by the dimension's name).
CSV_COLUMNS = (
    "value",
    "cost_usd",
    "cost_share",
    "requests",
    "cost_per_request_usd",
    "escalation_rate",
    "pass_rate",
    "previous_cost_usd",
    "cost_change_usd",
    "cost_change_pct",
    "previous_requests",
    "requests_change_pct",
    "previous_pass_rate",
    "pass_rate_change",
)


@dataclass(frozen=True)
class AttributionQuery:
    """What the table shows beyond the dashboard filters: the dimension, the order, the first N
    rows, the routing fields only the dimension cells hold, and another dimension's value."""

    dimension: str
    sort: str = DEFAULT_SORT
    top: int | None = None
    provider: str = ""
    tier: int | None = None
    version: int | None = None
    where_dimension: str = ""
    where_value: str = ""

    def params(self) -> dict[str, str]:
        """The query parameters that reproduce it (defaults left out)."""
        values = {
            "dimension": self.dimension,
            "sort": self.sort if self.sort != DEFAULT_SORT else "",
            "top": str(self.top) if self.top else "",
            "provider": self.provider,
            "tier": str(self.tier) if self.tier is not None else "",
            "version": str(self.version) if self.version is not None else "",
            "where_dimension": self.where_dimension,
            "where_value": self.where_value if self.where_dimension else "",
        }
        return {k: v for k, v in values.items() if v}

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider or None,
            "tier": self.tier,
            "version": self.version,
            "where_dimension": self.where_dimension or None,
            "where_value": self.where_value if self.where_dimension else None,
            "top": self.top,
        }


QUERY_PARAMETERS = ("dimension", "sort", "top", "provider", "tier", "version", "where_dimension", "where_value")


def dimension_choices(f: DashboardFilters) -> list[str]:
    """The dimensions of the filtered policy: the built-in ones, then those its live version declares."""
    declared = [k for k in (f.document.get("dimensions") or []) if isinstance(k, str)]
    return [*BUILTIN_DIMENSIONS, *declared]


def _positive(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= 10**9 else None


def attribution_query_parse(
    params: Mapping[str, str], f: DashboardFilters
) -> tuple[AttributionQuery, dict[str, list[str]]]:
    """The query from URL parameters, and per parameter what was wrong with it (that one left at
    its default): the API answers 400 with these, the page shows them and the rest of the table."""
    errors: dict[str, list[str]] = {}
    choices = dimension_choices(f)
    dimension = (params.get("dimension") or "").strip()
    if dimension and dimension not in choices:
        errors["dimension"] = [f"not a dimension of this policy: one of {', '.join(choices)}"]
    if dimension not in choices:
        dimension = choices[-1]
    sort = params.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        errors["sort"] = [f"one of {', '.join(SORTS)}"]
        sort = DEFAULT_SORT
    numbers: dict[str, int | None] = {}
    for name, bound in (("top", MAX_TOP), ("tier", 100), ("version", 10**9)):
        text = (params.get(name) or "").strip()
        value = _positive(text) if text else None
        if text and (value is None or value > bound):
            errors[name] = [f"a whole number from 1 to {bound}"]
            value = None
        numbers[name] = value
    texts: dict[str, str] = {}
    for name in ("provider", "where_value"):
        parsed = filter_text_parse(params.get(name))
        if parsed is None:
            errors[name] = [f"at most {MAX_TEXT_FILTER} characters, no NUL bytes"]
        texts[name] = parsed or ""
    where_dimension = (params.get("where_dimension") or "").strip()
    if where_dimension:
        if where_dimension not in choices:
            errors["where_dimension"] = [f"not a dimension of this policy: one of {', '.join(choices)}"]
            where_dimension = ""
        elif where_dimension == dimension:
            errors["where_dimension"] = ["another dimension than the one the table is by"]
            where_dimension = ""
        elif not texts["where_value"]:
            errors["where_value"] = [f"the value of {where_dimension} to keep (e.g. {DIMENSION_NONE})"]
            where_dimension = ""
        elif f.days > RAW_MAX_DAYS:
            too_long = f"two dimensions together are read from the raw decisions: at most {RAW_MAX_DAYS} days"
            errors["where_dimension"] = [f"{too_long} (this range has {f.days})"]
            where_dimension = ""
    query = AttributionQuery(
        dimension=dimension,
        sort=sort,
        top=numbers["top"],
        provider=texts["provider"],
        tier=numbers["tier"],
        version=numbers["version"],
        where_dimension=where_dimension,
        where_value=texts["where_value"] if where_dimension else "",
    )
    return query, errors


def _routing_filters(f: DashboardFilters, q: AttributionQuery) -> dict[str, Any]:
    chosen = {
        "route": f.route,
        "task_type": f.task_type,
        "model": f.model,
        "provider": q.provider,
        "tier": q.tier,
        "policy_version": q.version,
    }
    return {k: v for k, v in chosen.items() if v not in ("", None)}


def _totals_by_value(f: DashboardFilters, q: AttributionQuery) -> dict[str, dict[str, Any]]:
    """value -> {cost, requests, escalations, ok, unpriced} over f's range (1 query)."""
    if f.policy is None:
        return {}
    filters = _routing_filters(f, q)
    if q.where_dimension:
        try:
            cells = dimension_raw_totals(
                policy_id=f.policy.pk,
                dim_key=q.dimension,
                where_key=q.where_dimension,
                where_value=q.where_value,
                start=f.start_dt,
                end=f.end_dt,
                filters=filters,
            )
        except OperationalError as exc:
            if not isinstance(exc.__cause__, QueryCanceled):  # only the statement timeout is the caller's
                raise
            raise ComputeTimeout(
                f"Reading {q.dimension} where {q.where_dimension} is '{q.where_value[:40]}' from the raw decisions "
                f"took longer than {RAW_STATEMENT_TIMEOUT_MS} ms: narrow the range or the filters.",
                {"where_dimension": [f"the raw read stopped after {RAW_STATEMENT_TIMEOUT_MS} ms"]},
            ) from exc
    else:
        cells = dimension_totals(
            policy_id=f.policy.pk,
            dim_key=q.dimension,
            start=f.start_dt,
            end=f.end_dt,
            group_by=("dim_value", "outcome"),
            filters=filters,
        )
    out: dict[str, dict[str, Any]] = {}
    for c in cells:
        into = out.setdefault(
            c["dim_value"], {"cost_usd": 0.0, "requests": 0, "escalations": 0, "ok": 0, "unpriced": 0}
        )
        into["cost_usd"] += _num(c["cost_usd"])
        into["requests"] += _int(c["requests"])
        into["escalations"] += _int(c["escalations"])
        into["unpriced"] += _int(c["unpriced"])
        if c["outcome"] == "ok":
            into["ok"] += _int(c["count"])
    return out


def _measures(sums: Mapping[str, Any]) -> dict[str, Any]:
    """The row's numbers from its sums (the definitions of `metrics.dashboards.definitions`)."""
    requests = sums["requests"]
    return {
        "cost_usd": sums["cost_usd"],
        "requests": requests,
        "escalations": sums["escalations"],
        "ok": sums["ok"],
        "unpriced": sums["unpriced"],
        "cost_per_request_usd": ratio(sums["cost_usd"], requests),
        "escalation_rate": ratio(sums["escalations"], requests),
        "pass_rate": pass_rate(sums["ok"], requests),
    }


_ZERO = {"cost_usd": 0.0, "requests": 0, "escalations": 0, "ok": 0, "unpriced": 0}


def _row(value: str, now: Mapping[str, Any], before: Mapping[str, Any], *, rest: bool = False) -> dict[str, Any]:
    current, previous = _measures(now), _measures(before)
    change = {m: delta(current[m], previous[m]) for m in COMPARED}
    return {
        "value": value,
        "rest": rest,
        **current,
        "previous": previous,
        "change": change,
        "previous_cost_usd": previous["cost_usd"],
        "cost_change_usd": change["cost_usd"]["change"],
        "cost_change_pct": change["cost_usd"]["change_pct"],
        "previous_requests": previous["requests"],
        "requests_change_pct": change["requests"]["change_pct"],
        "previous_pass_rate": previous["pass_rate"],
        "pass_rate_change": change["pass_rate"]["change"],
    }


def _add(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {k: sum(r[k] for r in rows) for k in _ZERO}


def _sort(rows: list[dict[str, Any]], sort: str) -> None:
    if sort == "value":
        rows.sort(key=lambda row: row["value"])
    else:
        rows.sort(key=lambda row: (row[sort] is None, -(row[sort] or 0.0), row["value"]))


def dashboard_attribution(f: DashboardFilters, q: AttributionQuery | str) -> dict[str, Any]:
    """One row per value of the dimension over the range and filters, each with the same numbers
    over the compared range (`range_compared`: month over month for a month) — 2 queries —
    sorted (descending; "value" ascending), cut at `top` with the rest summed, and the totals."""
    if isinstance(q, str):
        q = AttributionQuery(dimension=q)
    start, end = range_compared(f.start, f.end)
    previous_f = replace(f, start=start, end=end)
    now, before = _totals_by_value(f, q), _totals_by_value(previous_f, q)
    rows = [_row(v, now.get(v, _ZERO), before.get(v, _ZERO)) for v in sorted(set(now) | set(before))]
    _sort(rows, q.sort)
    values = len(rows)
    folded_other = not q.where_dimension and DIMENSION_OTHER in now
    if q.top is not None and values > q.top:
        kept, folded = rows[: q.top], rows[q.top :]
        rest_now = _add(folded)
        rest_before = _add([r["previous"] for r in folded])
        rest = _row(f"{REST_LABEL} ({len(folded)} values)", rest_now, rest_before, rest=True)
        rows = [*kept, rest]
    total = _row("Total", _add(rows), _add([r["previous"] for r in rows]))
    for r in rows:
        r["cost_share"] = ratio(r["cost_usd"], total["cost_usd"])
    return {
        "filters": f.as_dict(),
        "attribution_filters": q.as_dict(),
        "dimension": q.dimension,
        "dimensions": dimension_choices(f),
        "sort": q.sort,
        "read_from": "raw" if q.where_dimension else "rollups",
        "period": {"start": f.start.isoformat(), "end": f.end.isoformat(), "days": f.days},
        "previous_period": {"start": start.isoformat(), "end": end.isoformat(), "days": (end - start).days + 1},
        "rows": rows,
        "values": values,
        "total": {k: v for k, v in total.items() if k not in ("value", "rest")},
        "total_cost_usd": total["cost_usd"],
        "total_requests": total["requests"],
        "folded": folded_other,
        "cap_per_day": DIMENSION_VALUES_PER_DAY,
        "none_label": DIMENSION_NONE,
        "other_label": DIMENSION_OTHER,
        "raw_max_days": RAW_MAX_DAYS,
    }


def attribution_csv_rows(data: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of the table exactly as shown: its rows in its order, the rest row included."""
    header = [data["dimension"], *CSV_COLUMNS[1:]]
    return header, [[row[c] for c in CSV_COLUMNS] for row in data["rows"]]
