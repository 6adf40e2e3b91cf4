"""The monthly report: its page, JSON, CSV tables, the index and the "Mark reviewed" form."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, date
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView, View

from controlplane.errors import DomainError, NotAllowed, json_error
from metrics.dashboards import charts
from metrics.dashboards import selectors as sel
from metrics.dashboards.definitions import csv_cell
from metrics.dashboards.views import PAGES, DashboardAccess
from metrics.reports import selectors as report_sel
from metrics.reports import services as report_services
from metrics.reports import sums as report_sums
from metrics.reports import tables as report_tables
from metrics.rules.periods import month_end, month_next
from routing import selectors as routing_selectors
from routing.roles import PERM_EDIT_POLICY

# --------------------------------------------------------------------------------------------
# The monthly review report: /reports/<policy>/<yyyy-mm>/ with its CSV tables, report.json and
# the "Mark reviewed" form. Numbers come from `metrics.reports.selectors.monthly_report`.


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
                    {"daily": daily, "advisory_rate": sel.DIRECT_ROUTE_ADVISORY_RATE}, markers
                ),
                "pass_rate_daily": charts.quality_daily(
                    {"daily": daily, "marks": {"good": sel.PASS_RATE_GOOD, "poor": sel.PASS_RATE_POOR}}, markers
                ),
            }
        slug, key = policy.slug, report["month"]
        last_full = report_sel.report_last_full_month()
        next_month = month_next(first)
        f = sel.DashboardFilters(policy=policy, start=first, end=month_end(first))
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
                (key, unit) for key, _, unit in report_sums.METRICS if key in REPORT_BREAKDOWN_COLUMNS
            ],
            "movers": [
                ("absolute", report["movers"]["absolute"], "Biggest changes in dollars"),
                ("relative", report["movers"]["relative"], "Biggest changes in percent"),
            ],
            "index_url": reverse("reports:index", args=[slug]),
            "json_url": reverse("reports:json", args=[slug, key]),
            "review_url": reverse("reports:review", args=[slug, key]),
            "csv": {name: reverse("reports:csv", args=[slug, key, name]) for name in report_tables.TABLES},
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
            report_services.report_review_mark(policy=p, month=first, user=request.user, note=note)
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


_csv_cell = csv_cell  # the one definition: metrics.dashboards.definitions


class ReportCsv(DashboardAccess, View):
    """<table>.csv: one of the report's tables."""

    def get(self, request: HttpRequest, policy: str, month: str, table: str) -> HttpResponse:
        try:
            p, first = _report_target(policy, month)
            report_tables.report_table_check(table)
        except DomainError as exc:
            return _report_error_json(exc)
        header, rows = report_tables.report_table(report_sel.monthly_report(p, first), table)
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
