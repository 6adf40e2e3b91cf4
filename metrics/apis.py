"""JSON endpoints of the dashboards (management API, /api/v1/metrics/…): one per page, the same
numbers the page shows, computed by the same `metrics.dashboard_selectors` function.

Every endpoint takes the page's filters as query parameters (policy, route, task_type, model,
start, end); an unknown policy is a 404 and a malformed date a 400, where a page would fall back
to its defaults and say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import InvalidInput, NotFound
from metrics import alerts as alerts_service
from metrics import dashboard_selectors as sel
from metrics import report_selectors, whatif
from metrics import selectors as metrics_selectors
from metrics.models import Alert, NotificationChannel, Severity
from routing import selectors as routing_selectors
from routing.apis import (
    PAGE_PARAMETERS,
    CanViewPolicies,
    StrictSerializer,
    can,
    check_body_size,
    page_of,
    paginate,
)

FILTER_PARAMETERS = [
    OpenApiParameter("policy", str, description="Policy slug (default: the first policy by slug)."),
    OpenApiParameter("route", str, description="Only this route."),
    OpenApiParameter("task_type", str, description="Only this task type."),
    OpenApiParameter("model", str, description="Only this model."),
    OpenApiParameter(
        "start", OpenApiTypes.DATE, description="First day, YYYY-MM-DD (UTC; default: 29 days before end)."
    ),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, inclusive, YYYY-MM-DD (UTC; default: today)."),
]

F = serializers.FloatField
I = serializers.IntegerField  # noqa: E741 - a short alias keeps the shapes below readable
S = serializers.CharField


def _nullable(field: serializers.Field) -> serializers.Field:
    # Rebuilt from its arguments: a serializer deep-copies its declared fields that way, which
    # would drop an attribute set on the instance (and the schema would say "not nullable").
    return type(field)(*field._args, **{**field._kwargs, "allow_null": True})


def _shape(name: str, **fields: serializers.Field) -> serializers.Serializer:
    """A named nested serializer, so the OpenAPI schema documents every field."""
    return type(name, (serializers.Serializer,), fields)()


def _nullable_shape(name: str, help_text: str = "", **fields: serializers.Field) -> serializers.Serializer:
    """A named nested serializer whose value may be null."""
    return type(name, (serializers.Serializer,), fields)(allow_null=True, help_text=help_text)


def _list(name: str, **fields: serializers.Field) -> serializers.ListField:
    return serializers.ListField(child=type(name, (serializers.Serializer,), fields)())


class FiltersSerializer(serializers.Serializer):
    policy = _nullable(S())
    route = _nullable(S())
    task_type = _nullable(S())
    model = _nullable(S())
    start = serializers.DateField()
    end = serializers.DateField()


def _totals(name: str) -> serializers.Serializer:
    return _shape(
        name,
        cost_usd=F(),
        requests=I(),
        ok=I(),
        escalations=I(),
        pass_rate=_nullable(F(help_text="ok attempts / requests")),
        escalation_rate=_nullable(F(help_text="escalated attempts / requests")),
        cost_per_request_usd=_nullable(F()),
    )


class MetricsApi(APIView):
    """Base: parse the filters, call the page's selector, return its data."""

    permission_classes = [CanViewPolicies]
    selector: ClassVar[Callable[[sel.DashboardFilters], dict[str, Any]]]

    def get(self, request: Request) -> Response:
        policies = sel.policy_choices()
        slug = request.query_params.get("policy")
        if slug and slug not in {p.slug for p in policies}:
            raise NotFound(f"No policy '{slug}'.", {"policy": ["not found"]})
        for name in ("start", "end"):
            value = request.query_params.get(name)
            if value and sel.filter_date_parse(value) is None:
                raise InvalidInput(
                    "Invalid filters.",
                    {name: [f"expected a date, YYYY-MM-DD, from {sel.FIRST_DATE} to {sel.LAST_DATE}"]},
                )
        for name in sel.TEXT_FILTERS:
            if sel.filter_text_parse(request.query_params.get(name)) is None:
                raise InvalidInput(
                    "Invalid filters.", {name: [f"at most {sel.MAX_TEXT_FILTER} characters, no NUL bytes"]}
                )
        f, _ = sel.dashboard_filters_parse(request.query_params, policies)
        if f.policy is None:
            raise NotFound("No policy exists yet.", {"policy": ["not found"]})
        return Response(type(self).selector(f))


class MetricsOverviewApi(MetricsApi):
    selector = staticmethod(sel.dashboard_overview)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsOverview"

        filters = FiltersSerializer()
        period = _shape("OverviewPeriod", start=serializers.DateField(), end=serializers.DateField(), days=I())
        previous_period = _shape("OverviewPreviousPeriod", start=serializers.DateField(), end=serializers.DateField())
        current = _totals("OverviewCurrent")
        previous = _totals("OverviewPrevious")
        budget = _shape(
            "OverviewBudget",
            scope=S(),
            monthly_usd=_nullable(F()),
            daily_usd=_nullable(F()),
            downgrade_at=_nullable(F()),
            month=S(),
            month_label=S(),
            month_to_date_usd=F(),
            month_end=serializers.DateField(),
            fraction=_nullable(F()),
        )
        open_alerts = I()
        movers = _list(
            "OverviewMover",
            task_type=S(),
            cost_usd=F(),
            previous_cost_usd=F(),
            cost_change_usd=F(),
            cost_change_pct=_nullable(F()),
            requests=I(),
            previous_requests=I(),
            requests_change=I(),
            pass_rate=_nullable(F()),
            previous_pass_rate=_nullable(F()),
            pass_rate_change=_nullable(F()),
        )
        daily = _shape(
            "OverviewDaily",
            days=serializers.ListField(child=serializers.DateField()),
            cost_usd=serializers.ListField(child=F()),
            requests=serializers.ListField(child=I()),
        )

    @extend_schema(
        operation_id="metrics_overview",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Overview: spend vs budget, requests, rates, biggest movers",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsCostApi(MetricsApi):
    selector = staticmethod(sel.dashboard_cost)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsCost"

        filters = FiltersSerializer()
        total_cost_usd = F()
        requests = I()
        unpriced = I(help_text="Decisions whose model had no price: cost missing, not zero.")
        routing_failures = I()
        days = serializers.ListField(child=serializers.DateField())
        over_time = _list("CostSeries", task_type=S(), cost_usd=serializers.ListField(child=F()))
        per_request = _list(
            "CostPerRequest",
            route=S(),
            task_type=S(),
            cost_usd=F(),
            requests=I(),
            decisions=I(),
            unpriced=I(),
            cost_per_request_usd=_nullable(F()),
            max_cost_per_request_usd=_nullable(F()),
            upper_tier_cost_share=_nullable(F()),
            routing_failure=serializers.BooleanField(),
        )
        by_model = _list("CostByModel", provider=S(), model=S(), tier=I(), cost_usd=F(), decisions=I(), unpriced=I())
        by_provider = _list("CostByProvider", provider=S(), cost_usd=F(), share=_nullable(F()))

    @extend_schema(
        operation_id="metrics_cost",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Cost per task type over time, per request, by model and provider",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


def _steps(name: str) -> serializers.ListField:
    return _list(
        name,
        from_tier=I(),
        to_tier=I(),
        reached=I(),
        escalated=I(),
        rate=_nullable(F()),
        band=_nullable_shape(
            f"{name}Band",
            help_text="the transition's expected band; null where it has none (metrics.rules.bands)",
            min=F(),
            max=F(),
            source=S(help_text="policy or default"),
        ),
        status=S(required=False, help_text="in band, below band, above band, no data, no band or no tier N"),
    )


class MetricsEscalationApi(MetricsApi):
    selector = staticmethod(sel.dashboard_escalation)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsEscalation"

        filters = FiltersSerializer()
        overall = _list(
            "EscalationOverall", from_tier=I(), to_tier=I(), reached=I(), escalated=I(), rate=_nullable(F())
        )
        routes = _list("EscalationRoute", route=S(), requests=I(), steps=_steps("EscalationStep"))
        task_types = _list(
            "EscalationTaskType",
            route=S(),
            task_type=S(),
            requests_at_tier_1=I(),
            escalated_to_tier_2=I(),
            rate=_nullable(F()),
        )
        advisories = _list(
            "EscalationAdvisory",
            route=S(),
            task_type=S(),
            requests_at_tier_1=I(),
            escalated_to_tier_2=I(),
            rate=F(),
            message=S(),
        )
        funnel = _list("EscalationFunnelStage", stage=S(), tier=I(), count=I())
        daily = _shape(
            "EscalationDaily",
            days=serializers.ListField(child=serializers.DateField()),
            tier_1_to_2=serializers.ListField(child=_nullable(F())),
            tier_2_to_3=serializers.ListField(child=_nullable(F())),
        )
        advisory_rate = F()
        transitions = _list("EscalationTransition", from_tier=I(), to_tier=I())
        default_bands = _list("EscalationDefaultBand", from_tier=I(), to_tier=I(), min=F(), max=F())

    @extend_schema(
        operation_id="metrics_escalation",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Escalation rates per route against their bands",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsQualityApi(MetricsApi):
    selector = staticmethod(sel.dashboard_quality)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsQuality"

        filters = FiltersSerializer()
        cells = _list(
            "QualityCell", task_type=S(), tier=I(), attempts=I(), ok=I(), pass_rate=_nullable(F()), band=_nullable(S())
        )
        task_types = serializers.ListField(child=S())
        tiers = serializers.ListField(child=I())
        marks = _shape("QualityMarks", good=F(), poor=F())
        requests = I()
        ok = I()
        pass_rate = _nullable(F())
        cells_good = I(help_text="cells at or above 95%")
        cells_poor = I(help_text="cells below 75%")
        daily = _shape(
            "QualityDaily",
            days=serializers.ListField(child=serializers.DateField()),
            pass_rate=serializers.ListField(child=_nullable(F())),
        )

    @extend_schema(
        operation_id="metrics_quality",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Pass rate by task type and tier",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsLatencyApi(MetricsApi):
    selector = staticmethod(sel.dashboard_latency)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsLatency"

        filters = FiltersSerializer()
        rows = _list(
            "LatencyRow",
            route=S(),
            model=S(),
            attempts=I(),
            mean_ms=_nullable(F()),
            p50=_nullable(F()),
            p95=_nullable(F()),
            p99=_nullable(F()),
            p95_budget_ms=_nullable(F()),
            latency_budget_ms=_nullable(F()),
            over_budget=serializers.BooleanField(),
        )
        days = serializers.ListField(child=serializers.DateField())
        daily = _list(
            "LatencyDaily", route=S(), p95=serializers.ListField(child=_nullable(F())), p95_budget_ms=_nullable(F())
        )
        bounds_ms = serializers.ListField(child=I())

    @extend_schema(
        operation_id="metrics_latency",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="p50/p95/p99 latency by route and model against the route's budget",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsBudgetApi(MetricsApi):
    selector = staticmethod(sel.dashboard_budget)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsBudget"

        filters = FiltersSerializer()
        budget = _shape(
            "BudgetScope", scope=S(), monthly_usd=_nullable(F()), daily_usd=_nullable(F()), downgrade_at=_nullable(F())
        )
        month = S()
        month_label = S()
        month_start = serializers.DateField()
        month_end = serializers.DateField()
        period_days = F()
        elapsed_days = F()
        days = serializers.ListField(child=serializers.DateField())
        daily_spend_usd = serializers.ListField(child=F())
        cumulative_usd = serializers.ListField(child=F())
        spent_usd = F()
        fraction = _nullable(F())
        today_usd = F()
        forecast = _nullable(
            _shape("BudgetForecast", method=S(), projected_usd=F(), daily_rate_usd=F(), fraction=_nullable(F()))
        )
        runway_days = _nullable(F(help_text="null: no budget, or no spend to run it down"))
        days_left = F(help_text="days from now to the end of the month")
        thresholds = _list(
            "BudgetThreshold", fraction=F(), amount_usd=_nullable(F()), crossed_on=_nullable(serializers.DateField())
        )
        routes = _list(
            "BudgetRoute",
            route=S(),
            spent_usd=F(),
            monthly_usd=_nullable(F()),
            fraction=_nullable(F()),
            downgrade_at=_nullable(F()),
        )

    @extend_schema(
        operation_id="metrics_budget",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Budget burn of the month holding `end`: spend, forecast, runway",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsWorksheetApi(MetricsApi):
    selector = staticmethod(sel.dashboard_worksheet)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsWorksheet"

        filters = FiltersSerializer()
        requests = I()
        rows = _list(
            "WorksheetRow",
            task_type=S(),
            route=S(),
            requests=I(),
            traffic_share=_nullable(F()),
            quality_threshold=_nullable(F()),
            primary_model=_nullable(S()),
            fallback_model=_nullable(S()),
            avg_tokens_in=_nullable(F()),
            avg_tokens_out=_nullable(F()),
            validation_rule=_nullable(serializers.BooleanField()),
            pass_rate=_nullable(F()),
            p50_ms=_nullable(F()),
            p95_ms=_nullable(F()),
            cost_per_request_usd=_nullable(F()),
            last_review=_nullable(serializers.DateField()),
        )

    @extend_schema(
        operation_id="metrics_worksheet",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Routing worksheet: one row per task type",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


def _whatif_measures(name: str) -> serializers.Serializer:
    return _shape(
        name,
        requests=I(),
        attempts=F(),
        cost_usd=F(help_text="priced attempts only"),
        complete=serializers.BooleanField(help_text="false: some attempts have no price"),
        unpriced_attempts=F(),
        cost_per_request_usd=_nullable(F()),
        escalations=F(),
        escalation_rate=_nullable(F(help_text="escalated attempts / requests")),
        p50_ms=_nullable(F(help_text="per attempt")),
        p95_ms=_nullable(F(help_text="per attempt")),
    )


def _whatif_comparison(name: str) -> dict[str, serializers.Field]:
    return {
        "actual": _whatif_measures(f"{name}Actual"),
        "draft": _whatif_measures(f"{name}Draft"),
        "live_modelled_cost_usd": _nullable(F(help_text="the same model applied to the live version")),
        "delta_cost_usd": _nullable(F(help_text="draft − actual; null when either side has unpriced attempts")),
        "savings_usd": _nullable(F()),
        "savings_pct": _nullable(F()),
        "delta_escalation_rate": _nullable(F()),
        "delta_p50_ms": _nullable(F()),
        "delta_p95_ms": _nullable(F()),
    }


class MetricsWhatIfApi(APIView):
    """Replay a period's logged traffic through a draft document and compare it with what
    happened (the expected-value model of docs/whatif.md)."""

    permission_classes = [CanViewPolicies]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "MetricsWhatIfInput"

        policy = S(max_length=63, help_text="Policy slug.")
        document = serializers.JSONField(
            required=False, help_text="The draft document to replay (default: the policy's saved draft)."
        )
        start = serializers.DateField(help_text="First day, YYYY-MM-DD (UTC).")
        end = serializers.DateField(help_text=f"Last day, inclusive (UTC); at most {whatif.MAX_DAYS} days in all.")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsWhatIf"

        policy = S()
        period = _shape("WhatIfPeriod", start=serializers.DateField(), end=serializers.DateField(), days=I())
        priced_at = serializers.DateTimeField(help_text="Catalog prices in force at this instant are used.")
        empty = serializers.BooleanField()
        message = S()
        requests = I()
        total = _shape("WhatIfTotal", **_whatif_comparison("WhatIfTotal"))
        task_types = _list(
            "WhatIfTaskType",
            task_type=S(),
            share=F(),
            avg_tokens_in=F(),
            avg_tokens_out=F(),
            **_whatif_comparison("WhatIfTaskType"),
            paths=_list(
                "WhatIfPath",
                route=S(),
                arm=_nullable(S()),
                probability=F(),
                reason=serializers.DictField(),
                steps=_list(
                    "WhatIfStep",
                    tier=I(),
                    model=S(),
                    reach=F(),
                    cost_usd=_nullable(F()),
                    next_rate=_nullable(F()),
                    next_rate_source=_nullable(S()),
                ),
            ),
        )
        assumptions = serializers.ListField(child=S())
        unpriced_models = serializers.ListField(child=S())

    @extend_schema(
        operation_id="metrics_whatif",
        request=InputSerializer,
        responses=OutputSerializer,
        summary="What-if: a draft's cost, escalation and latency on a past period's traffic",
    )
    def post(self, request: Request) -> Response:
        check_body_size(request)  # before the body is read: a JSON 413, not Django's HTML 400
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        policy = routing_selectors.policy_get(values["policy"])
        start, end = whatif.whatif_period(values["start"], values["end"])
        if "document" in values:
            document = values["document"]
        else:
            draft = routing_selectors.policy_draft(policy)
            if draft is None:
                raise InvalidInput(
                    f"Policy '{policy.slug}' has no draft: send the document to replay.",
                    {"document": ["required: the policy has no draft"]},
                )
            document = draft.document
        try:
            result = whatif.whatif_estimate(policy=policy, document=document, start=start, end=end)
        except InvalidInput as exc:  # the document's own paths, under the request's `document` field
            raise InvalidInput(
                exc.message,
                {
                    "document" if path in ("(root)", "document") else f"document.{path}": reasons
                    for path, reasons in exc.errors.items()
                },
            ) from exc
        return Response(result.to_dict())


def _report_delta(name: str) -> serializers.Serializer:
    return _shape(
        name,
        current=_nullable(F()),
        previous=_nullable(F()),
        change=_nullable(F(help_text="current − previous (for rates: a difference of fractions)")),
        change_pct=_nullable(F(help_text="change / previous; null when previous is 0 or missing")),
    )


def _report_metrics(name: str) -> serializers.Serializer:
    return _shape(
        name, **{key: _report_delta(f"{name}{key.title().replace('_', '')}") for key in report_selectors.METRIC_KEYS}
    )


class MetricsReportApi(APIView):
    """The monthly review report of one policy: the same data as /reports/<policy>/<yyyy-mm>/,
    its CSV tables and report.json."""

    permission_classes = [CanViewPolicies]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsReport"

        policy = type(
            "ReportPolicy",
            (serializers.Serializer,),
            {  # a field called "name": no _shape()
                "slug": S(),
                "name": S(),
                "live_version": _nullable(I()),
            },
        )()
        month = S(help_text="YYYY-MM")
        month_label = S()
        start = serializers.DateField()
        end = serializers.DateField()
        previous_month = S()
        previous_month_label = S()
        previous_start = serializers.DateField()
        previous_end = serializers.DateField()
        complete = serializers.BooleanField(help_text="false while the month is still running")
        has_data = serializers.BooleanField(help_text="any decision recorded in the month")
        previous_has_data = serializers.BooleanField()
        summary = _list(
            "ReportSummaryRow",
            metric=S(),
            label=S(),
            unit=S(help_text="usd, usd_per_request, count, rate or ms"),
            current=_nullable(F()),
            previous=_nullable(F()),
            change=_nullable(F()),
            change_pct=_nullable(F()),
        )
        task_types = _list("ReportTaskType", task_type=S(), metrics=_report_metrics("ReportTaskTypeMetrics"))
        routes = _list("ReportRoute", route=S(), metrics=_report_metrics("ReportRouteMetrics"))
        movers = _shape(
            "ReportMovers",
            **{
                ranking: serializers.ListField(
                    child=type(
                        f"ReportMover{ranking.title()}",
                        (serializers.Serializer,),
                        {
                            "dimension": S(help_text="task_type or model"),
                            "name": S(),
                            "cost_usd": F(),
                            "previous_cost_usd": F(),
                            "change_usd": F(),
                            "change_pct": _nullable(F()),
                        },
                    )()
                )
                for ranking in ("absolute", "relative")
            },
        )
        changes = _list(
            "ReportChange",
            version=I(),
            previous_version=_nullable(I()),
            action=S(),
            rollback_of=_nullable(I()),
            at=serializers.DateTimeField(),
            by=S(),
            comment=S(),
            changed_paths=serializers.ListField(child=S()),
            changed_count=I(),
        )
        alerts = _list(
            "ReportAlert",
            opened_at=serializers.DateTimeField(),
            raised_in_month=serializers.BooleanField(help_text="false: opened before the month"),
            route=S(),
            detector=S(),
            severity=S(),
            status=S(),
            summary=S(),
            resolved_at=_nullable(serializers.DateTimeField()),
        )
        recommendations = _shape(
            "ReportRecommendations",
            items=_list(
                "ReportRecommendation",
                kind=S(help_text="tier1_sufficient, over_band or direct_route"),
                route=S(),
                task_type=_nullable(S()),
                transition=_nullable(S()),
                observed_rate=_nullable(F()),
                threshold=_nullable(F()),
                affected_requests=_nullable(F()),
                cost_per_request_from_usd=_nullable(F()),
                cost_per_request_to_usd=_nullable(F()),
                estimated_monthly_savings_usd=_nullable(F(help_text="null: an advisory, not estimated")),
                message=S(),
            ),
            total_savings_usd=F(),
            whatif=_nullable(serializers.DictField(help_text="the what-if replay's estimate, when available")),
        )
        reviews = _list("ReportReview", reviewed_by=S(), reviewed_at=serializers.DateTimeField(), note=S())
        daily = _shape(
            "ReportDaily",
            days=serializers.ListField(child=serializers.DateField()),
            cost_by_task_type=_list("ReportDailyCost", task_type=S(), cost_usd=serializers.ListField(child=F())),
            cost_usd=serializers.ListField(child=F()),
            requests=serializers.ListField(child=I()),
            tier_1_to_2=serializers.ListField(child=_nullable(F())),
            tier_2_to_3=serializers.ListField(child=_nullable(F())),
            pass_rate=serializers.ListField(child=_nullable(F())),
        )
        markers = _list(
            "ReportMarker",
            version=I(),
            at=serializers.DateTimeField(),
            rollback_of=_nullable(I()),
            label=S(),
            comment=S(),
        )

    @extend_schema(
        operation_id="metrics_report",
        responses=OutputSerializer,
        parameters=[
            OpenApiParameter("policy", str, OpenApiParameter.PATH, description="Policy slug."),
            OpenApiParameter("month", str, OpenApiParameter.PATH, description="The month, YYYY-MM (UTC)."),
        ],
        summary="Monthly review report: the month against the previous one, changes, alerts, recommendations",
    )
    def get(self, request: Request, policy: str, month: str) -> Response:
        p = routing_selectors.policy_get(policy)
        return Response(report_selectors.monthly_report(p, report_selectors.report_month_parse(month)))


# --- alerts and notification channels (metrics.alerts) -------------------------------------------
# Viewers read alerts, editors acknowledge and resolve them, publishers manage the channels.

CanViewAlerts = can(alerts_service.PERM_ALERTS_VIEW)
CanHandleAlerts = can(alerts_service.PERM_ALERTS_HANDLE)
CanManageChannels = can(alerts_service.PERM_CHANNELS_MANAGE)


class AlertOutput(serializers.Serializer):
    id = I()
    policy = S(source="policy.slug")
    route = S(help_text='"" = the whole policy (its budget)')
    detector = S()
    severity = S(help_text="page, ticket or info: the highest seen while active")
    status = S(help_text="open, acknowledged or resolved")
    summary = S()
    evidence = serializers.JSONField(
        help_text="test, window, baseline, statistic, p_value, interval, numbers, "
        "check (the check that fired) and checks (each check's status)"
    )
    opened_at = serializers.DateTimeField()
    last_evaluated_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)


class DeliveryOutput(serializers.Serializer):
    channel = S(source="channel.name")
    channel_id = I()
    status = S(help_text="pending, sent, failed (will retry) or given_up")
    attempts = I()
    response_status = I(allow_null=True)
    last_error = S()
    sent_at = serializers.DateTimeField(allow_null=True)


class AlertEventOutput(serializers.Serializer):
    id = I()
    kind = S(help_text="opened, escalated, acknowledged, resolved or reopened")
    at = serializers.DateTimeField()
    actor = S(source="actor_label", help_text='username, or "system" for the evaluator')
    note = S()
    severity = S()
    summary = S()
    deliveries = DeliveryOutput(many=True)


class AlertDetailOutput(AlertOutput):
    events = AlertEventOutput(many=True, help_text="the alert's history, oldest first")


def _alert_detail(alert_id: int) -> Response:
    return Response(AlertDetailOutput(metrics_selectors.alert_get(alert_id)).data)


class AlertListApi(APIView):
    permission_classes = [CanViewAlerts]

    class FilterSerializer(serializers.Serializer):
        policy = S(required=False, max_length=63, help_text="Policy slug.")
        status = serializers.ChoiceField(choices=Alert.Status.values, required=False)
        detector = serializers.ChoiceField(choices=alerts_service.DETECTORS, required=False)
        route = S(
            required=False,
            allow_blank=True,
            max_length=200,
            trim_whitespace=False,
            help_text='Route name; "" for policy-wide alerts.',
        )
        severity = serializers.ChoiceField(choices=Severity.values, required=False)
        since = serializers.DateTimeField(required=False, help_text="Active at or after this moment (ISO 8601).")
        until = serializers.DateTimeField(required=False, help_text="Opened before this moment (ISO 8601).")

    @extend_schema(
        operation_id="alerts_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses=page_of(AlertOutput),
        summary="Alerts, newest first",
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        values = dict(filters.validated_data)
        if "policy" in values:
            values["policy"] = routing_selectors.policy_get(values["policy"])
        if values.get("since") and values.get("until") and values["until"] <= values["since"]:
            raise InvalidInput("'until' must be after 'since'.", {"until": ["must be after since"]})
        return paginate(request, self, metrics_selectors.alert_list(**values), AlertOutput)


class AlertDetailApi(APIView):
    permission_classes = [CanViewAlerts]

    @extend_schema(
        operation_id="alerts_read",
        responses=AlertDetailOutput,
        summary="One alert with its history and the deliveries of each step",
    )
    def get(self, request: Request, alert_id: int) -> Response:
        return _alert_detail(alert_id)


class AlertAcknowledgeApi(APIView):
    permission_classes = [CanHandleAlerts]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "AlertAcknowledgeInput"

        note = S(max_length=alerts_service.MAX_NOTE, help_text="Required: who is on it, what is being done.")

    @extend_schema(
        operation_id="alerts_acknowledge",
        request=InputSerializer,
        responses=AlertDetailOutput,
        summary="Acknowledge an open alert (editor)",
    )
    def post(self, request: Request, alert_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = metrics_selectors.alert_get(alert_id)
        alerts_service.alert_acknowledge(alert=alert, user=request.user, note=data.validated_data["note"])
        return _alert_detail(alert_id)


class AlertResolveApi(APIView):
    permission_classes = [CanHandleAlerts]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "AlertResolveInput"

        note = S(max_length=alerts_service.MAX_NOTE, required=False, allow_blank=True)

    @extend_schema(
        operation_id="alerts_resolve",
        request=InputSerializer,
        responses=AlertDetailOutput,
        summary="Resolve an open or acknowledged alert by hand (editor)",
    )
    def post(self, request: Request, alert_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = metrics_selectors.alert_get(alert_id)
        alerts_service.alert_resolve(alert=alert, user=request.user, note=data.validated_data.get("note", ""))
        return _alert_detail(alert_id)


class ChannelOutput(serializers.Serializer):
    id = I()
    name = S()
    kind = S(help_text="webhook or email")
    url = S()
    secret = S(help_text="the HMAC-SHA256 key of the X-Signalbox-Signature header (webhooks)")
    emails = serializers.ListField(child=S())
    enabled = serializers.BooleanField()
    min_severity = S()
    policy = S(source="policy.slug", allow_null=True, default=None, help_text="null: every policy")
    consecutive_failures = I()
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_reason = S(help_text="why it is disabled (by hand, or after repeated failures)")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _channel(channel_id: int) -> NotificationChannel:
    channel = metrics_selectors.channel_list().filter(pk=channel_id).first()
    if channel is None:
        raise NotFound(f"No notification channel {channel_id}.", {"channel": ["not found"]})
    return channel


def _policy_or_none(slug: str | None) -> Any:
    return routing_selectors.policy_get(slug) if slug else None


class ChannelListApi(APIView):
    permission_classes = [CanManageChannels]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "ChannelCreateInput"

        name = S(max_length=200)
        kind = serializers.ChoiceField(choices=NotificationChannel.Kind.values)
        url = S(required=False, allow_blank=True, max_length=2000, help_text="webhook: http(s) URL")
        secret = S(required=False, allow_blank=True, max_length=200, help_text="webhook: empty makes a random one")
        emails = serializers.ListField(child=S(max_length=254), required=False, max_length=alerts_service.MAX_EMAILS)
        min_severity = serializers.ChoiceField(choices=Severity.values, default=Severity.TICKET)
        enabled = serializers.BooleanField(default=True)
        policy = S(required=False, allow_null=True, max_length=63, help_text="policy slug; null: every policy")

    @extend_schema(
        operation_id="channels_list",
        parameters=PAGE_PARAMETERS,
        responses=page_of(ChannelOutput),
        summary="Notification channels (publisher)",
    )
    def get(self, request: Request) -> Response:
        return paginate(request, self, metrics_selectors.channel_list(), ChannelOutput)

    @extend_schema(
        operation_id="channels_create",
        request=InputSerializer,
        responses={201: ChannelOutput},
        summary="Create a webhook or email channel (publisher)",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["policy"] = _policy_or_none(values.get("policy"))
        channel = alerts_service.channel_create(user=request.user, **values)
        return Response(ChannelOutput(_channel(channel.pk)).data, status=201)


class ChannelDetailApi(APIView):
    permission_classes = [CanManageChannels]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "ChannelUpdateInput"

        name = S(max_length=200, required=False)
        url = S(required=False, allow_blank=True, max_length=2000)
        secret = S(required=False, allow_blank=True, max_length=200, help_text="empty makes a new random one")
        emails = serializers.ListField(child=S(max_length=254), required=False, max_length=alerts_service.MAX_EMAILS)
        min_severity = serializers.ChoiceField(choices=Severity.values, required=False)
        enabled = serializers.BooleanField(
            required=False, help_text="true re-enables a disabled channel and resets its failure count"
        )
        policy = S(required=False, allow_null=True, max_length=63)

    @extend_schema(operation_id="channels_read", responses=ChannelOutput, summary="One notification channel")
    def get(self, request: Request, channel_id: int) -> Response:
        return Response(ChannelOutput(_channel(channel_id)).data)

    @extend_schema(
        operation_id="channels_update",
        request=InputSerializer,
        responses=ChannelOutput,
        summary="Change a channel; enabled=true re-enables it (publisher)",
    )
    def patch(self, request: Request, channel_id: int) -> Response:
        channel = _channel(channel_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "policy" in values:
            values["policy"] = _policy_or_none(values["policy"])
        alerts_service.channel_update(channel=channel, user=request.user, **values)
        return Response(ChannelOutput(_channel(channel_id)).data)

    @extend_schema(operation_id="channels_delete", responses={204: None}, summary="Delete a channel (publisher)")
    def delete(self, request: Request, channel_id: int) -> Response:
        alerts_service.channel_delete(channel=_channel(channel_id), user=request.user)
        return Response(status=204)


class ChannelTestApi(APIView):
    permission_classes = [CanManageChannels]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChannelTestResult"

        ok = serializers.BooleanField()
        status = I(allow_null=True, help_text="the webhook's HTTP status")
        error = S()

    @extend_schema(
        operation_id="channels_test",
        request=None,
        responses=OutputSerializer,
        summary="Send a test notification now and report how it went (publisher)",
    )
    def post(self, request: Request, channel_id: int) -> Response:
        result = alerts_service.channel_test(channel=_channel(channel_id), user=request.user)
        return Response(self.OutputSerializer(result).data)
