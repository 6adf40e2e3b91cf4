"""Every read the dashboards and their JSON endpoints need: the one import of views, APIs and the
monthly report (`from metrics.dashboards import selectors as sel`).

A facade: each name lives in the module of its concept, and this module only gathers them.
- `filters`: `DashboardFilters`, reading them from a query string, the filter bar's choices.
- `definitions`: what every page shares (pass rate, the route's settings and bands, the budget
  that applies, version markers) and the definitions of the numbers.
- `spend`: Overview, Cost, Budget burn. `cascade`: Escalation, Quality. `latency`: Latency.
  `worksheet`: the routing worksheet. `canary`: the splits judged arm against control.
  `attribution`: the numbers by a dimension's values.

Each `dashboard_<page>` function runs one to three GROUP BY queries over the rollups (never one
query per row, always through `metrics.rollups.selectors`) and returns plain JSON-ready data: the
pages render it, the JSON endpoints return it as is, so both always show the same numbers.
"""

from __future__ import annotations

from metrics.dashboards.attribution import COMPARED as ATTRIBUTION_COMPARED
from metrics.dashboards.attribution import QUERY_PARAMETERS as ATTRIBUTION_PARAMETERS
from metrics.dashboards.attribution import RAW_MAX_DAYS as ATTRIBUTION_RAW_MAX_DAYS
from metrics.dashboards.attribution import SORT_LABELS as ATTRIBUTION_SORT_LABELS
from metrics.dashboards.attribution import SORTS as ATTRIBUTION_SORTS
from metrics.dashboards.attribution import (
    AttributionQuery,
    attribution_csv_rows,
    attribution_query_parse,
    dashboard_attribution,
    dimension_choices,
)
from metrics.dashboards.canary import dashboard_canary
from metrics.dashboards.cascade import dashboard_escalation, dashboard_quality
from metrics.dashboards.definitions import (
    DIRECT_ROUTE_ADVISORY_RATE,
    PASS_RATE_GOOD,
    PASS_RATE_POOR,
    budget_for,
    escalation_bands,
    pass_rate,
    route_expectations,
    route_settings,
    version_markers,
)
from metrics.dashboards.filters import (
    DEFAULT_DAYS,
    MAX_DAYS,
    MAX_TEXT_FILTER,
    TEXT_FILTERS,
    DashboardFilters,
    DashboardSelector,
    dashboard_filters_parse,
    dashboard_filters_strict,
    filter_date_parse,
    filter_options,
    filter_text_parse,
    policy_choices,
)
from metrics.dashboards.latency import dashboard_latency
from metrics.dashboards.spend import dashboard_budget, dashboard_cost, dashboard_overview, open_alerts_count
from metrics.dashboards.worksheet import dashboard_worksheet
from metrics.rules.periods import FIRST_DATE, LAST_DATE

__all__ = [
    "ATTRIBUTION_COMPARED",
    "ATTRIBUTION_PARAMETERS",
    "ATTRIBUTION_RAW_MAX_DAYS",
    "ATTRIBUTION_SORTS",
    "ATTRIBUTION_SORT_LABELS",
    "DEFAULT_DAYS",
    "DIRECT_ROUTE_ADVISORY_RATE",
    "FIRST_DATE",
    "LAST_DATE",
    "MAX_DAYS",
    "MAX_TEXT_FILTER",
    "PASS_RATE_GOOD",
    "PASS_RATE_POOR",
    "TEXT_FILTERS",
    "AttributionQuery",
    "DashboardFilters",
    "DashboardSelector",
    "attribution_csv_rows",
    "attribution_query_parse",
    "budget_for",
    "dashboard_attribution",
    "dashboard_budget",
    "dashboard_canary",
    "dashboard_cost",
    "dashboard_escalation",
    "dashboard_filters_parse",
    "dashboard_filters_strict",
    "dashboard_latency",
    "dashboard_overview",
    "dashboard_quality",
    "dashboard_worksheet",
    "dimension_choices",
    "escalation_bands",
    "filter_date_parse",
    "filter_options",
    "filter_text_parse",
    "open_alerts_count",
    "pass_rate",
    "policy_choices",
    "route_expectations",
    "route_settings",
    "version_markers",
]
