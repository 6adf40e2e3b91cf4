"""The dashboards: server-rendered pages whose numbers come from `metrics.dashboard_selectors`
and whose figures come from `metrics.charts`.

Every page shares the filter bar (policy, route, task type, model, date range, all in the URL
query), the navigation and the empty state; a page only says which data and figures it shows.
A monthly report or what-if page can reuse `DashboardPage` the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any, ClassVar

from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.http import HttpRequest
from django.views.generic import TemplateView

from metrics import charts
from metrics import dashboard_selectors as sel

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


class DashboardPage(LoginRequiredMixin, UserPassesTestMixin, TemplateView):
    """A dashboard page: filters, navigation, version markers, then `build()`'s data and figures."""

    page: ClassVar[str]
    title: ClassVar[str]
    # Whether the page draws time charts (and so needs the publish/rollback markers).
    time_charts: ClassVar[bool] = True
    raise_exception = False

    def test_func(self) -> bool:
        return can_view_dashboards(self.request.user)

    def handle_no_permission(self) -> Any:
        if self.request.user.is_authenticated:
            self.raise_exception = True
        return super().handle_no_permission()

    def get_template_names(self) -> list[str]:
        return [f"metrics/{self.page}.html"]

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        """The page's data (key `data`), figures (key `figures`) and anything else it shows."""
        return {}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        f, problems, policies = filters_from_request(self.request)
        markers = sel.version_markers(f) if (self.time_charts and f.policy) else []
        context.update({
            "f": f, "problems": problems, "policies": policies, "options": sel.filter_options(f),
            "page": self.page, "page_title": self.title, "pages": PAGES, "markers": markers,
            "querystring": f.querystring(), "presets": self._presets(f),
        })
        built = self.build(f, markers) if f.policy else {}
        figures: dict[str, Any] = built.pop("figures", {})
        context.update(built)
        context["figures"] = [{"id": f"fig-{name}", "name": name, "figure": charts.figure_json(fig)}
                              for name, fig in figures.items()]
        context["figure_ids"] = {name: f"fig-{name}" for name in figures}
        return context

    @staticmethod
    def _presets(f: sel.DashboardFilters) -> list[dict[str, str]]:
        from datetime import timedelta

        end = f.end
        first = end.replace(day=1)
        prev_last = first - timedelta(days=1)
        return [
            {"label": "7 days", "qs": f.querystring(start=end - timedelta(days=6), end=end)},
            {"label": "30 days", "qs": f.querystring(start=end - timedelta(days=29), end=end)},
            {"label": "90 days", "qs": f.querystring(start=end - timedelta(days=89), end=end)},
            {"label": "Month to date", "qs": f.querystring(start=first, end=end)},
            {"label": "Previous month", "qs": f.querystring(start=prev_last.replace(day=1), end=prev_last)},
        ]


def _has_requests(data: dict[str, Any], key: str = "requests") -> bool:
    return bool(data.get(key))


class OverviewPage(DashboardPage):
    page, title = "overview", "Overview"

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        data = sel.dashboard_overview(f)
        has_data = bool(data["current"]["requests"] or data["current"]["cost_usd"])
        figures = {"daily": charts.overview_daily(data, markers)} if has_data else {}
        return {"data": data, "has_data": has_data, "figures": figures}


class CostPage(DashboardPage):
    page, title = "cost", "Cost"

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        data = sel.dashboard_cost(f)
        has_data = bool(data["by_model"])
        figures = {"cost_over_time": charts.cost_over_time(data, markers),
                   "cost_per_request": charts.cost_per_request(data),
                   "spend_by_model": charts.spend_by_model(data)} if has_data else {}
        return {"data": data, "has_data": has_data, "figures": figures}


class EscalationPage(DashboardPage):
    page, title = "escalation", "Escalation"

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        data = sel.dashboard_escalation(f)
        has_data = bool(data["routes"])
        figures = {"escalation_rates": charts.escalation_rates(data),
                   "funnel": charts.escalation_funnel(data),
                   "escalation_daily": charts.escalation_daily(data, markers)} if has_data else {}
        return {"data": data, "has_data": has_data, "figures": figures}


class QualityPage(DashboardPage):
    page, title = "quality", "Quality"

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        data = sel.dashboard_quality(f)
        has_data = bool(data["cells"])
        figures = {"quality_heatmap": charts.quality_heatmap(data),
                   "quality_daily": charts.quality_daily(data, markers)} if has_data else {}
        return {"data": data, "has_data": has_data, "figures": figures}


class LatencyPage(DashboardPage):
    page, title = "latency", "Latency"

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        data = sel.dashboard_latency(f)
        has_data = bool(data["rows"])
        figures = {"latency_percentiles": charts.latency_percentiles(data),
                   "latency_daily": charts.latency_daily(data, markers)} if has_data else {}
        return {"data": data, "has_data": has_data, "figures": figures}


class BudgetPage(DashboardPage):
    page, title = "budget", "Budget burn"
    time_charts = False  # its time axis is the budget month, not the filter range

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        data = sel.dashboard_budget(f)
        month = replace(f, start=date.fromisoformat(data["month_start"]),
                        end=date.fromisoformat(data["month_end"]))
        markers = sel.version_markers(month)
        has_data = bool(data["spent_usd"])
        figures = {"budget_burn": charts.budget_burn(data, markers)} if has_data else {}
        return {"data": data, "has_data": has_data, "figures": figures, "markers": markers}


class WorksheetPage(DashboardPage):
    page, title = "worksheet", "Routing worksheet"
    time_charts = False

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        data = sel.dashboard_worksheet(f)
        return {"data": data, "has_data": bool(data["requests"])}


class AlertsPage(DashboardPage):
    page, title = "alerts", "Alerts"
    time_charts = False

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"alerts": [], "has_data": False}


PAGE_VIEWS: dict[str, Callable[..., Any]] = {
    "overview": OverviewPage.as_view(),
    "cost": CostPage.as_view(),
    "escalation": EscalationPage.as_view(),
    "quality": QualityPage.as_view(),
    "latency": LatencyPage.as_view(),
    "budget": BudgetPage.as_view(),
    "worksheet": WorksheetPage.as_view(),
    "alerts": AlertsPage.as_view(),
}
