"""The dashboard pages: filters from the URL, one selector per page, Plotly figures."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import slugify
from django.views.generic import TemplateView, View

from controlplane.errors import DomainError, InvalidInput, json_error
from metrics.alerts import selectors as alert_selectors
from metrics.alerts.detectors import DETECTORS
from metrics.canary import services as canary_services
from metrics.dashboards import charts
from metrics.dashboards import selectors as sel
from metrics.dashboards.definitions import csv_cell
from metrics.reports import selectors as report_sel
from metrics.rules.periods import month_end, month_previous, month_start
from routing import selectors as routing_selectors
from routing.roles import PERM_EDIT_DRAFT

VIEW_PERMISSION = "routing.view_policy"

# (url name, label) in navigation order.
PAGES: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("cost", "Cost"),
    ("escalation", "Escalation"),
    ("quality", "Quality"),
    ("latency", "Latency"),
    ("budget", "Budget burn"),
    ("worksheet", "Routing worksheet"),
    ("canary", "Canary"),
    ("attribution", "Attribution"),
    ("alerts", "Alerts"),
)


def can_view_dashboards(user: Any) -> bool:
    """Staff users who may view policies see every dashboard."""
    return bool(user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION))


def filters_from_request(request: HttpRequest) -> tuple[sel.DashboardFilters, list[str], list[Any]]:
    """(filters, messages about ignored values, every policy) from the URL query (one query)."""
    policies = sel.policy_choices()
    filters, problems = sel.dashboard_filters_parse(request.GET, policies)
    return filters, problems, policies


ChartOf = Callable[[dict[str, Any]], Any]
TimeChartOf = Callable[[dict[str, Any], list[dict[str, Any]]], Any]


class DashboardAccess(LoginRequiredMixin, UserPassesTestMixin):
    """Who may open the dashboards and the reports: anonymous users go to the login page, users
    without the permission get a 403."""

    raise_exception = False
    request: HttpRequest

    def test_func(self) -> bool:
        return can_view_dashboards(self.request.user)

    def handle_no_permission(self) -> Any:
        if self.request.user.is_authenticated:
            self.raise_exception = True
        return super().handle_no_permission()


class DashboardPage(DashboardAccess, TemplateView):
    """A dashboard page: filters, navigation, version markers, then its selector's data and the
    figures drawn from it. A page declares which; `build()` is overridden only to do more."""

    page: ClassVar[str]
    title: ClassVar[str]
    # The page's data (one `metrics.dashboards.selectors` function) and the key that holds
    # nothing when no decision was recorded in the range (the page then shows its empty state).
    selector: ClassVar[sel.DashboardSelector | None] = None
    data_key: ClassVar[str] = ""
    # Figures by name: drawn from the data alone, or over time with the publish/rollback markers.
    figures_from_data: ClassVar[dict[str, ChartOf]] = {}
    figures_over_time: ClassVar[dict[str, TimeChartOf]] = {}

    def get_template_names(self) -> list[str]:
        return [f"metrics/{self.page}.html"]

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        """The page's data (key `data`), whether it has any, its figures (key `figures`)."""
        selector = type(self).selector
        if selector is None:
            return {}
        data = selector(f)
        has_data = self.has_data(data)
        figures = (
            {
                **{name: chart(data) for name, chart in self.figures_from_data.items()},
                **{name: chart(data, markers) for name, chart in self.figures_over_time.items()},
            }
            if has_data
            else {}
        )
        return {"data": data, "has_data": has_data, "figures": figures}

    def has_data(self, data: dict[str, Any]) -> bool:
        return bool(data[self.data_key])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        f, problems, policies = filters_from_request(self.request)
        markers = sel.version_markers(f) if (self.figures_over_time and f.policy) else []
        context.update(
            {
                "f": f,
                "problems": problems,
                "policies": policies,
                "options": sel.filter_options(f),
                "page": self.page,
                "page_title": self.title,
                "pages": PAGES,
                "markers": markers,
                "querystring": f.querystring(),
                "presets": self._presets(f),
                "report_month": report_sel.report_last_full_month().strftime("%Y-%m"),
            }
        )
        built = self.build(f, markers) if f.policy else {}
        figures: dict[str, Any] = built.pop("figures", {})
        context.update(built)
        context["figures"] = [
            {"id": f"fig-{name}", "name": name, "figure": charts.figure_json(fig)} for name, fig in figures.items()
        ]
        context["figure_ids"] = {name: f"fig-{name}" for name in figures}
        return context

    @staticmethod
    def _presets(f: sel.DashboardFilters) -> list[dict[str, str]]:
        end = f.end
        first, previous = month_start(end), month_previous(end)
        return [
            {"label": "7 days", "qs": f.querystring(start=end - timedelta(days=6), end=end)},
            {"label": "30 days", "qs": f.querystring(start=end - timedelta(days=29), end=end)},
            {"label": "90 days", "qs": f.querystring(start=end - timedelta(days=89), end=end)},
            {"label": "Month to date", "qs": f.querystring(start=first, end=end)},
            {"label": "Previous month", "qs": f.querystring(start=previous, end=month_end(previous))},
        ]


class OverviewPage(DashboardPage):
    page, title = "overview", "Overview"
    selector = staticmethod(sel.dashboard_overview)
    figures_over_time = {"daily": charts.overview_daily}

    def has_data(self, data: dict[str, Any]) -> bool:
        return bool(data["current"]["requests"] or data["current"]["cost_usd"])


class CostPage(DashboardPage):
    page, title = "cost", "Cost"
    selector, data_key = staticmethod(sel.dashboard_cost), "by_model"
    figures_from_data = {"cost_per_request": charts.cost_per_request, "spend_by_model": charts.spend_by_model}
    figures_over_time = {"cost_over_time": charts.cost_over_time}


class EscalationPage(DashboardPage):
    page, title = "escalation", "Escalation"
    selector, data_key = staticmethod(sel.dashboard_escalation), "routes"
    figures_from_data = {"escalation_rates": charts.escalation_rates, "funnel": charts.escalation_funnel}
    figures_over_time = {"escalation_daily": charts.escalation_daily}

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        built = super().build(f, markers)
        if "data" in built:
            defaults = " and ".join(
                f"{b['min']:.0%}–{b['max']:.0%} for tier {b['from_tier']} → {b['to_tier']}"
                for b in built["data"]["default_bands"]
            )
            built["band_subtitle"] = (
                f"Green box: the expected band (the route's expectations, else the healthy {defaults}; "
                "deeper transitions without a declared band are not judged). "
                "Bars: green in band, amber below, red above."
            )
        return built


class QualityPage(DashboardPage):
    page, title = "quality", "Quality"
    selector, data_key = staticmethod(sel.dashboard_quality), "cells"
    figures_from_data = {"quality_heatmap": charts.quality_heatmap}
    figures_over_time = {"quality_daily": charts.quality_daily}


class LatencyPage(DashboardPage):
    page, title = "latency", "Latency"
    selector, data_key = staticmethod(sel.dashboard_latency), "rows"
    figures_from_data = {"latency_percentiles": charts.latency_percentiles}
    figures_over_time = {"latency_daily": charts.latency_daily}


class BudgetPage(DashboardPage):
    page, title = "budget", "Budget burn"
    selector, data_key = staticmethod(sel.dashboard_budget), "spent_usd"

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        # The chart's time axis is the budget month, not the filter range: its own markers.
        built = super().build(f, markers)
        data = built["data"]
        month = replace(f, start=date.fromisoformat(data["month_start"]), end=date.fromisoformat(data["month_end"]))
        built["markers"] = sel.version_markers(month)
        if built["has_data"]:
            built["figures"] = {"budget_burn": charts.budget_burn(data, built["markers"])}
        return built


class WorksheetPage(DashboardPage):
    page, title = "worksheet", "Routing worksheet"
    selector, data_key = staticmethod(sel.dashboard_worksheet), "requests"


class CanaryPage(DashboardPage):
    """Every split of the live version, arm against control (`metrics.canary`): a chart and a table
    per split, the SRM check first (a mismatch blocks every verdict)."""

    page, title = "canary", "Canary"
    selector, data_key = staticmethod(sel.dashboard_canary), "splits"

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        built = super().build(f, markers)
        splits = built["data"]["splits"]
        built["has_data"] = True  # the page says itself when the live version has no split
        built["figures"] = {f"split-{i}": charts.canary_differences(s) for i, s in enumerate(splits)}
        built["can_draft"] = self.request.user.has_perm(PERM_EDIT_DRAFT)
        for i, s in enumerate(splits):
            s["figure_id"] = f"fig-split-{i}"
            s["has_traffic"] = any(a["requests"] for a in s["arms"])
        return built


class AttributionPage(DashboardPage):
    """The numbers by the values of one dimension (`?dimension=team&sort=cost_usd&top=10`), against
    the compared period, with the filters (routing fields, or another dimension's value);
    `?format=csv` gives exactly the table shown as CSV (the same URL, shareable), and the JSON link
    the metrics API's answer for it. A bad parameter is named above the table (400 for the CSV)."""

    page, title = "attribution", "Attribution"
    # (key, heading, the sort its link asks for): the table's columns, as `attribution.CSV_COLUMNS`.
    COLUMNS: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("value", "{dimension}", "value"),
        ("cost_usd", "Cost", "cost_usd"),
        ("cost_share", "Share", ""),
        ("previous_cost_usd", "Compared", ""),
        ("cost_change_usd", "Change", "cost_change_usd"),
        ("requests", "Requests", "requests"),
        ("requests_change_pct", "Δ requests", ""),
        ("cost_per_request_usd", "Cost / request", "cost_per_request_usd"),
        ("escalation_rate", "Escalation", "escalation_rate"),
        ("pass_rate", "Pass rate", "pass_rate"),
        ("pass_rate_change", "Δ pass rate", ""),
    )

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.GET.get("format") == "csv":
            try:
                f = sel.dashboard_filters_strict(request.GET, sel.policy_choices())
                query, errors = sel.attribution_query_parse(request.GET, f)
                if errors:
                    raise InvalidInput("Invalid attribution parameters.", errors)
                data = sel.dashboard_attribution(f, query)
            except DomainError as exc:
                return json_error(exc.status_code, exc.message, exc.errors)
            response = HttpResponse(content_type="text/csv; charset=utf-8")
            slug = f.policy.slug if f.policy else "none"
            by = slugify(query.dimension) or "dimension"
            response["Content-Disposition"] = f'attachment; filename="signalbox-{slug}-by-{by}.csv"'
            writer = csv.writer(response)
            header, rows = sel.attribution_csv_rows(data)
            writer.writerow([csv_cell(h) for h in header])
            for row in rows:
                writer.writerow([csv_cell(v) for v in row])
            return response
        return super().get(request, *args, **kwargs)

    @staticmethod
    def _column(key: str, label: str, sort: str, data: dict[str, Any], base: dict[str, str]) -> dict[str, Any]:
        shown = data["sort"] == sort if sort else False
        return {
            "label": label.replace("{dimension}", data["dimension"]),
            "num": key != "value",
            "qs": urlencode({**base, "sort": sort}) if sort else "",
            "sorted": ("ascending" if sort == "value" else "descending") if shown else "",
        }

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        query, errors = sel.attribution_query_parse(self.request.GET, f)
        problems = [f"{name.replace('_', ' ')}: {'; '.join(why)} (ignored)." for name, why in errors.items()]
        try:
            data = sel.dashboard_attribution(f, query)
        except DomainError as exc:  # the raw read of two dimensions ran out of time
            problems.append(exc.message)
            query = replace(query, where_dimension="", where_value="")
            data = sel.dashboard_attribution(f, query)
        keep = f.params()
        shown = {**keep, **query.params()}
        sort_base = {k: v for k, v in shown.items() if k != "sort"}
        return {
            "data": data,
            "query": query,
            "attribution_problems": problems,
            "has_data": True,
            "figures": {"attribution": charts.attribution_cost(data)} if data["rows"] else {},
            "keep": keep,
            "sorts": [(s, sel.ATTRIBUTION_SORT_LABELS[s]) for s in sel.ATTRIBUTION_SORTS],
            "csv_query": urlencode({**shown, "format": "csv"}),
            "json_query": urlencode(shown),
            "columns": [self._column(key, label, sort, data, sort_base) for key, label, sort in self.COLUMNS],
            "tops": (5, 10, 25, 50),
        }


class CanaryDraft(DashboardAccess, View):
    """POST "Promote arm" / "Stop canary": a draft of the live version with the split collapsed
    (editor role or above; refused while a draft exists), then the policy's admin page to review
    and publish it."""

    http_method_names = ["post"]
    ACTIONS: ClassVar[dict[str, bool]] = {"promote": True, "stop": False}  # action -> keep the arm

    def post(self, request: HttpRequest) -> HttpResponse:
        data = request.POST
        try:
            missing = {name: ["This field is required."] for name in ("policy", "route", "arm") if not data.get(name)}
            if data.get("action") not in self.ACTIONS:
                missing["action"] = ["one of: promote, stop"]
            if missing:
                raise InvalidInput("Invalid canary action.", missing)
            policy = routing_selectors.policy_get(data["policy"])  # NotFound naming the policy
            canary_services.canary_draft_collapse(
                policy=policy,
                route=data["route"],
                arm=data["arm"],
                keep=self.ACTIONS[data["action"]],
                user=request.user,
            )
        except DomainError as exc:
            return TemplateResponse(
                request,
                "metrics/canary_error.html",
                {"message": exc.message, "errors": exc.errors, "status": exc.status_code, "pages": PAGES},
                status=exc.status_code,
            )
        return HttpResponseRedirect(reverse("admin:routing_policy_change", args=[policy.pk]))


class AlertsPage(DashboardPage):
    """Active and recent alerts of the policy in the date range, each with its evidence; narrowed
    by the route filter and by the page's own status, severity and detector choices (1 query)."""

    page, title = "alerts", "Alerts"
    LIMIT = 200
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "status": ("open", "acknowledged", "resolved"),
        "severity": ("page", "ticket", "info"),
        "detector": DETECTORS,
    }

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = {name: (self.request.GET.get(name) or "") for name in self.CHOICES}
        chosen = {name: value if value in self.CHOICES[name] else "" for name, value in chosen.items()}
        rows = list(
            alert_selectors.alert_list(
                policy=f.policy,
                since=f.start_dt,
                until=f.end_dt,
                route=f.route or None,
                status=chosen["status"] or None,
                severity=chosen["severity"] or None,
                detector=chosen["detector"] or None,
            )[: self.LIMIT + 1]
        )
        shown = [alert_row(a) for a in rows[: self.LIMIT]]
        return {
            "active": [r for r in shown if r["alert"].is_active],
            "recent": [r for r in shown if not r["alert"].is_active],
            "truncated": len(rows) > self.LIMIT,
            "chosen": chosen,
            "choices": self.CHOICES,
            "keep": f.params(),
            "has_data": bool(shown),
        }


def alert_row(alert: Any) -> dict[str, Any]:
    """An alert with its evidence laid out for the page: the scalar numbers, formatted."""
    evidence = alert.evidence if isinstance(alert.evidence, dict) else {}
    numbers = []
    for key, value in (evidence.get("numbers") or {}).items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        if not isinstance(value, dict | list):
            numbers.append((key.replace("_", " "), value))
    interval = evidence.get("interval")
    return {
        "alert": alert,
        "evidence": evidence,
        "numbers": numbers,
        "interval": f"{interval[0]:.4g} – {interval[1]:.4g}"
        if isinstance(interval, list) and len(interval) == 2 and all(isinstance(v, int | float) for v in interval)
        else None,
    }


PAGE_VIEWS: dict[str, Callable[..., Any]] = {
    "overview": OverviewPage.as_view(),
    "cost": CostPage.as_view(),
    "escalation": EscalationPage.as_view(),
    "quality": QualityPage.as_view(),
    "latency": LatencyPage.as_view(),
    "budget": BudgetPage.as_view(),
    "worksheet": WorksheetPage.as_view(),
    "canary": CanaryPage.as_view(),
    "canary-draft": CanaryDraft.as_view(),
    "attribution": AttributionPage.as_view(),
    "alerts": AlertsPage.as_view(),
}
