"""The report's tables as offered for CSV download (`TABLES`, …/<table>.csv): the header and
rows of each, the numbers exactly as in the report's JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controlplane.errors import NotFound
from metrics.dashboards.attribution import CSV_COLUMNS
from metrics.reports.sums import METRIC_KEYS

# The report's tables, as offered for CSV download (…/<table>.csv).
TABLES = ("summary", "task_types", "routes", "movers", "dimensions", "changes", "alerts", "recommendations")
# The "Cost by <dimension>" tables in one: the attribution table's columns after the dimension.
DIMENSION_COLUMNS = ("value", "rest", *CSV_COLUMNS[1:])


def _metric_columns() -> list[str]:
    return [f"{key}_{part}" for key in METRIC_KEYS for part in ("current", "previous", "change", "change_pct")]


def _metric_values(metrics: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    return [metrics[key][part] for key in METRIC_KEYS for part in ("current", "previous", "change", "change_pct")]


def report_table_check(name: str) -> None:
    """NotFound naming the tables when `name` is not one of the report's TABLES."""
    if name not in TABLES:
        raise NotFound(
            f"The report has no table '{name[:40]}': the tables are {', '.join(TABLES)}.", {"table": ["not found"]}
        )


def report_table(report: Mapping[str, Any], name: str) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of one of the report's TABLES, the numbers exactly as in the report."""
    report_table_check(name)
    if name == "summary":
        return (
            ["metric", "label", "unit", "current", "previous", "change", "change_pct"],
            [
                [r["metric"], r["label"], r["unit"], r["current"], r["previous"], r["change"], r["change_pct"]]
                for r in report["summary"]
            ],
        )
    if name in ("task_types", "routes"):
        key = "task_type" if name == "task_types" else "route"
        return [key, *_metric_columns()], [[r[key], *_metric_values(r["metrics"])] for r in report[name]]
    if name == "movers":
        header = ["ranking", "dimension", "name", "cost_usd", "previous_cost_usd", "change_usd", "change_pct"]
        return header, [
            [ranking, *(r[h] for h in header[1:])]
            for ranking in ("absolute", "relative")
            for r in report["movers"][ranking]
        ]
    if name == "dimensions":
        return ["dimension", *DIMENSION_COLUMNS], [
            [d["dimension"], *(r[c] for c in DIMENSION_COLUMNS)] for d in report["by_dimension"] for r in d["rows"]
        ]
    if name == "changes":
        header = ["version", "previous_version", "action", "rollback_of", "at", "by", "comment", "changed_count"]
        return header, [[r[h] for h in header] for r in report["changes"]]
    if name == "alerts":
        header = ["opened_at", "raised_in_month", "route", "detector", "severity", "status", "summary", "resolved_at"]
        return header, [[r[h] for h in header] for r in report["alerts"]]
    # recommendations
    header = [
        "kind",
        "route",
        "task_type",
        "transition",
        "observed_rate",
        "threshold",
        "affected_requests",
        "cost_per_request_from_usd",
        "cost_per_request_to_usd",
        "estimated_monthly_savings_usd",
        "message",
    ]
    return header, [[r[h] for h in header] for r in report["recommendations"]["items"]]
