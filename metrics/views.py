"""The dashboards: server-rendered pages whose numbers come from `metrics.dashboard_selectors`
and whose figures come from `metrics.charts`.

Every page shares the filter bar (policy, route, task type, model, date range, all in the URL
query), the navigation and the empty state; a page only says which data and figures it shows.
The monthly review report (below the dashboards) shares their access rule and navigation.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, timedelta
from typing import Any, ClassVar

from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView, View

from controlplane.errors import DomainError, NotAllowed, json_error
from metrics import alerts, charts, services
from metrics import dashboard_selectors as sel
from metrics import report_selectors as report_sel
from metrics import selectors as metrics_selectors
from routing import selectors as routing_selectors
from routing.roles import PERM_EDIT_POLICY

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
        return super().handle_no_permission()  # type: ignore[misc]


class DashboardPage(DashboardAccess, TemplateView):
    """A dashboard page: filters, navigation, version markers, then its selector's data and the
    figures drawn from it. A page declares which; `build()` is overridden only to do more."""

    page: ClassVar[str]
    title: ClassVar[str]
    # The page's data (one `metrics.dashboard_selectors` function) and the key that holds
    # nothing when no decision was recorded in the range (the page then shows its empty state).
    selector: ClassVar[Callable[[sel.DashboardFilters], dict[str, Any]] | None] = None
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
        first = end.replace(day=1)
        prev_last = first - timedelta(days=1)
        return [
            {"label": "7 days", "qs": f.querystring(start=end - timedelta(days=6), end=end)},
            {"label": "30 days", "qs": f.querystring(start=end - timedelta(days=29), end=end)},
            {"label": "90 days", "qs": f.querystring(start=end - timedelta(days=89), end=end)},
            {"label": "Month to date", "qs": f.querystring(start=first, end=end)},
            {"label": "Previous month", "qs": f.querystring(start=prev_last.replace(day=1), end=prev_last)},
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


class AlertsPage(DashboardPage):
    """Active and recent alerts of the policy in the date range, each with its evidence; narrowed
    by the route filter and by the page's own status, severity and detector choices (1 query)."""

    page, title = "alerts", "Alerts"
    LIMIT = 200
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "status": ("open", "acknowledged", "resolved"),
        "severity": ("page", "ticket", "info"),
        "detector": alerts.DETECTORS,
    }

    def build(self, f: sel.DashboardFilters, markers: list[dict[str, Any]]) -> dict[str, Any]:
        chosen = {name: (self.request.GET.get(name) or "") for name in self.CHOICES}
        chosen = {name: value if value in self.CHOICES[name] else "" for name, value in chosen.items()}
        rows = list(
            metrics_selectors.alert_list(
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
    "alerts": AlertsPage.as_view(),
}


# --------------------------------------------------------------------------------------------
# The monthly review report: /reports/<policy>/<yyyy-mm>/ with its CSV tables, report.json and
# the "Mark reviewed" form. Numbers come from `metrics.report_selectors.monthly_report`.


def can_mark_reviewed(user: Any) -> bool:
    """Editors and publishers may mark a report reviewed; viewers see the date only."""
    return bool(user.is_active and user.has_perm(PERM_EDIT_POLICY))


def _report_target(slug: str, month: str) -> tuple[Any, date]:
    """(policy, first day of month) named by the URL, or a DomainError saying what is wrong."""
    policy = routing_selectors.policy_get(slug)
    return policy, report_sel.report_month_parse(month)


def _report_error_page(request: HttpRequest, exc: DomainError, slug: str | None = None) -> HttpResponse:
    last = report_sel.report_last_full_month()
    known = slug if slug and "policy" not in exc.errors else None
    return TemplateResponse(
        request,
        "metrics/report_error.html",
        {
            "message": exc.message,
            "status": exc.status_code,
            "slug": known,
            "pages": PAGES,
            "last_month": last.strftime("%Y-%m"),
            "page_title": "Monthly report",
        },
        status=exc.status_code,
    )


def _report_error_json(exc: DomainError) -> HttpResponse:
    return json_error(exc.status_code, exc.message, exc.errors)


class ReportIndex(DashboardAccess, View):
    """/reports/<policy>/ (or with ?month=YYYY-MM): redirect to that month's report, by default the
    last full month."""

    def get(self, request: HttpRequest, policy: str) -> HttpResponse:
        try:
            p = routing_selectors.policy_get(policy)
            requested = (request.GET.get("month") or "").strip()
            first = report_sel.report_month_parse(requested) if requested else report_sel.report_last_full_month()
        except DomainError as exc:
            return _report_error_page(request, exc, policy)
        return HttpResponseRedirect(reverse("reports:report", args=[p.slug, first.strftime("%Y-%m")]))


class ReportsRoot(DashboardAccess, View):
    """/reports/: the first policy's last full month (or the dashboards' "no policy" state)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        policies = sel.policy_choices()
        if not policies:
            return HttpResponseRedirect(reverse("dashboards:overview"))
        return HttpResponseRedirect(reverse("reports:index", args=[policies[0].slug]))


# The per task type / per route tables show these metrics (all of them are in the CSV and JSON).
REPORT_BREAKDOWN_COLUMNS = (
    "cost_usd",
    "requests",
    "cost_per_request_usd",
    "escalation_rate",
    "pass_rate",
    "p95_ms",
    "unpriced",
)


class ReportPage(DashboardAccess, TemplateView):
    """The month against the previous month, policy changes, alerts, movers, recommendations."""

    template_name = "metrics/report.html"

    def get(self, request: HttpRequest, *args: Any, policy: str = "", month: str = "", **kwargs: Any) -> HttpResponse:
        try:
            p, first = _report_target(policy, month)
        except DomainError as exc:
            return _report_error_page(request, exc, policy)
        return self.render_to_response(self.report_context(p, first))

    def report_context(self, policy: Any, first: date, **extra: Any) -> dict[str, Any]:
        report = report_sel.monthly_report(policy, first)
        markers = report["markers"]
        figures: dict[str, Any] = {}
        if report["has_data"]:
            daily = report["daily"]
            figures = {
                "daily_spend": charts.cost_over_time(
                    {"days": daily["days"], "over_time": daily["cost_by_task_type"]}, markers
                ),
                "spend_change": charts.report_spend_change(report),
                "escalation_daily": charts.escalation_daily(
                    {"daily": daily, "advisory_rate": report_sel.DIRECT_ROUTE_ADVISORY_RATE}, markers
                ),
                "pass_rate_daily": charts.quality_daily(
                    {"daily": daily, "marks": {"good": sel.PASS_RATE_GOOD, "poor": sel.PASS_RATE_POOR}}, markers
                ),
            }
        slug, key = policy.slug, report["month"]
        last_full = report_sel.report_last_full_month()
        next_month = report_sel.month_next(first)
        f = sel.DashboardFilters(policy=policy, start=first, end=report_sel.month_end(first))
        return {
            "report": report,
            "policy": policy,
            "f": f,
            "pages": PAGES,
            "page": "report",
            "page_title": f"Monthly report · {report['month_label']}",
            "querystring": f.querystring(),
            "figures": [
                {"id": f"fig-{name}", "name": name, "figure": charts.figure_json(fig)} for name, fig in figures.items()
            ],
            "figure_ids": {name: f"fig-{name}" for name in figures},
            "previous_url": reverse("reports:report", args=[slug, report["previous_month"]]),
            "next_url": (
                reverse("reports:report", args=[slug, next_month.strftime("%Y-%m")])
                if next_month <= _utc_today()
                else None
            ),
            "next_label": next_month.strftime("%B %Y"),
            "breakdown_columns": [
                (key, unit) for key, _, unit in report_sel.METRICS if key in REPORT_BREAKDOWN_COLUMNS
            ],
            "movers": [
                ("absolute", report["movers"]["absolute"], "Biggest changes in dollars"),
                ("relative", report["movers"]["relative"], "Biggest changes in percent"),
            ],
            "index_url": reverse("reports:index", args=[slug]),
            "json_url": reverse("reports:json", args=[slug, key]),
            "review_url": reverse("reports:review", args=[slug, key]),
            "csv": {name: reverse("reports:csv", args=[slug, key, name]) for name in report_sel.TABLES},
            "can_review": can_mark_reviewed(self.request.user),
            "last_full_month": last_full.strftime("%Y-%m"),
            "latest_data_month": (None if report["has_data"] else report_sel.report_latest_month_with_data(policy)),
            **extra,
        }


def _utc_today() -> date:
    return timezone.now().astimezone(UTC).date()


class ReportReviewMark(DashboardAccess, View):
    """POST: mark the month's report reviewed (editor role or above), then back to the report."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, policy: str, month: str) -> HttpResponse:
        try:
            p, first = _report_target(policy, month)
        except DomainError as exc:
            return _report_error_page(request, exc, policy)
        note = request.POST.get("note", "")
        try:
            services.report_review_mark(policy=p, month=first, user=request.user, note=note)
        except NotAllowed as exc:
            return _report_error_page(request, exc, policy)
        except DomainError as exc:
            page = ReportPage(request=request, args=(), kwargs={})
            context = page.report_context(p, first, review_error=exc.message, review_note=note)
            return TemplateResponse(request, ReportPage.template_name, context, status=exc.status_code)
        return HttpResponseRedirect(reverse("reports:report", args=[p.slug, first.strftime("%Y-%m")]) + "#review")


class ReportJson(DashboardAccess, View):
    """report.json: the whole report, the numbers of the page."""

    def get(self, request: HttpRequest, policy: str, month: str) -> HttpResponse:
        try:
            p, first = _report_target(policy, month)
        except DomainError as exc:
            return _report_error_json(exc)
        response = JsonResponse(report_sel.monthly_report(p, first))
        response["Content-Disposition"] = f'inline; filename="signalbox-{p.slug}-{first:%Y-%m}-report.json"'
        return response


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """None as an empty cell; text that a spreadsheet would run as a formula, quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class ReportCsv(DashboardAccess, View):
    """<table>.csv: one of the report's tables."""

    def get(self, request: HttpRequest, policy: str, month: str, table: str) -> HttpResponse:
        try:
            p, first = _report_target(policy, month)
            report_sel.report_table_check(table)
        except DomainError as exc:
            return _report_error_json(exc)
        header, rows = report_sel.report_table(report_sel.monthly_report(p, first), table)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="signalbox-{p.slug}-{first:%Y-%m}-{table}.csv"'
        writer = csv.writer(response)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
        return response


REPORT_VIEWS: dict[str, Callable[..., Any]] = {
    "root": ReportsRoot.as_view(),
    "index": ReportIndex.as_view(),
    "report": ReportPage.as_view(),
    "json": ReportJson.as_view(),
    "csv": ReportCsv.as_view(),
    "review": ReportReviewMark.as_view(),
}
