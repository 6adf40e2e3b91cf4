"""JSON endpoints of the dashboards (management API, /api/v1/metrics/…): one per page, the same
numbers the page shows, computed by the same `metrics.dashboard_selectors` function.

Every endpoint takes the page's filters as query parameters (policy, route, task_type, model,
start, end); an unknown policy is a 404 and a malformed date a 400, where a page would fall back
to its defaults and say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import InvalidInput, NotFound
from metrics import dashboard_selectors as sel
from routing.apis import CanViewPolicies

FILTER_PARAMETERS = [
    OpenApiParameter("policy", str, description="Policy slug (default: the first policy by slug)."),
    OpenApiParameter("route", str, description="Only this route."),
    OpenApiParameter("task_type", str, description="Only this task type."),
    OpenApiParameter("model", str, description="Only this model."),
    OpenApiParameter("start", str, description="First day, YYYY-MM-DD (UTC; default: 29 days before end)."),
    OpenApiParameter("end", str, description="Last day, inclusive, YYYY-MM-DD (UTC; default: today)."),
]

F = serializers.FloatField
I = serializers.IntegerField  # noqa: E741 - a short alias keeps the shapes below readable
S = serializers.CharField


def _nullable(field: serializers.Field) -> serializers.Field:
    field.allow_null = True
    return field


def _shape(name: str, **fields: serializers.Field) -> serializers.Serializer:
    """A named nested serializer, so the OpenAPI schema documents every field."""
    return type(name, (serializers.Serializer,), fields)()


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
    return _shape(name, cost_usd=F(), requests=I(), ok=I(), escalations=I(),
                  pass_rate=_nullable(F(help_text="ok attempts / requests")),
                  escalation_rate=_nullable(F(help_text="escalated attempts / requests")),
                  cost_per_request_usd=_nullable(F()))


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
                raise InvalidInput("Invalid filters.", {name: [
                    f"expected a date, YYYY-MM-DD, from {sel.FIRST_DATE} to {sel.LAST_DATE}"]})
        for name in sel.TEXT_FILTERS:
            if sel.filter_text_parse(request.query_params.get(name)) is None:
                raise InvalidInput("Invalid filters.", {name: [
                    f"at most {sel.MAX_TEXT_FILTER} characters, no NUL bytes"]})
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
        previous_period = _shape("OverviewPreviousPeriod", start=serializers.DateField(),
                                 end=serializers.DateField())
        current = _totals("OverviewCurrent")
        previous = _totals("OverviewPrevious")
        budget = _shape("OverviewBudget", scope=S(), monthly_usd=_nullable(F()), daily_usd=_nullable(F()),
                        downgrade_at=_nullable(F()), month=S(), month_label=S(), month_to_date_usd=F(),
                        month_end=serializers.DateField(), fraction=_nullable(F()))
        open_alerts = I()
        movers = _list("OverviewMover", task_type=S(), cost_usd=F(), previous_cost_usd=F(),
                       cost_change_usd=F(), cost_change_pct=_nullable(F()), requests=I(),
                       previous_requests=I(), requests_change=I(), pass_rate=_nullable(F()),
                       previous_pass_rate=_nullable(F()), pass_rate_change=_nullable(F()))
        daily = _shape("OverviewDaily", days=serializers.ListField(child=serializers.DateField()),
                       cost_usd=serializers.ListField(child=F()), requests=serializers.ListField(child=I()))

    @extend_schema(operation_id="metrics_overview", parameters=FILTER_PARAMETERS, responses=OutputSerializer,
                   summary="Overview: spend vs budget, requests, rates, biggest movers")
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
        per_request = _list("CostPerRequest", route=S(), task_type=S(), cost_usd=F(), requests=I(),
                            decisions=I(), unpriced=I(), cost_per_request_usd=_nullable(F()),
                            max_cost_per_request_usd=_nullable(F()), upper_tier_cost_share=_nullable(F()),
                            routing_failure=serializers.BooleanField())
        by_model = _list("CostByModel", provider=S(), model=S(), tier=I(), cost_usd=F(), decisions=I(),
                         unpriced=I())
        by_provider = _list("CostByProvider", provider=S(), cost_usd=F(), share=_nullable(F()))

    @extend_schema(operation_id="metrics_cost", parameters=FILTER_PARAMETERS, responses=OutputSerializer,
                   summary="Cost per task type over time, per request, by model and provider")
    def get(self, request: Request) -> Response:
        return super().get(request)


def _steps(name: str) -> serializers.ListField:
    return _list(name, from_tier=I(), to_tier=I(), reached=I(), escalated=I(), rate=_nullable(F()),
                 band=_shape(f"{name}Band", min=F(), max=F(), source=S()), status=S(required=False))


class MetricsEscalationApi(MetricsApi):
    selector = staticmethod(sel.dashboard_escalation)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsEscalation"

        filters = FiltersSerializer()
        overall = _list("EscalationOverall", from_tier=I(), to_tier=I(), reached=I(), escalated=I(),
                        rate=_nullable(F()))
        routes = _list("EscalationRoute", route=S(), requests=I(), steps=_steps("EscalationStep"))
        task_types = _list("EscalationTaskType", route=S(), task_type=S(), requests_at_tier_1=I(),
                           escalated_to_tier_2=I(), rate=_nullable(F()))
        advisories = _list("EscalationAdvisory", route=S(), task_type=S(), requests_at_tier_1=I(),
                           escalated_to_tier_2=I(), rate=F(), message=S())
        funnel = _list("EscalationFunnelStage", stage=S(), tier=I(), count=I())
        daily = _shape("EscalationDaily", days=serializers.ListField(child=serializers.DateField()),
                       tier_1_to_2=serializers.ListField(child=_nullable(F())),
                       tier_2_to_3=serializers.ListField(child=_nullable(F())))
        advisory_rate = F()

    @extend_schema(operation_id="metrics_escalation", parameters=FILTER_PARAMETERS,
                   responses=OutputSerializer, summary="Escalation rates per route against their bands")
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsQualityApi(MetricsApi):
    selector = staticmethod(sel.dashboard_quality)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsQuality"

        filters = FiltersSerializer()
        cells = _list("QualityCell", task_type=S(), tier=I(), attempts=I(), ok=I(), pass_rate=_nullable(F()),
                      band=_nullable(S()))
        task_types = serializers.ListField(child=S())
        tiers = serializers.ListField(child=I())
        marks = _shape("QualityMarks", good=F(), poor=F())
        requests = I()
        ok = I()
        pass_rate = _nullable(F())
        cells_good = I(help_text="cells at or above 95%")
        cells_poor = I(help_text="cells below 75%")
        daily = _shape("QualityDaily", days=serializers.ListField(child=serializers.DateField()),
                       pass_rate=serializers.ListField(child=_nullable(F())))

    @extend_schema(operation_id="metrics_quality", parameters=FILTER_PARAMETERS, responses=OutputSerializer,
                   summary="Pass rate by task type and tier")
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsLatencyApi(MetricsApi):
    selector = staticmethod(sel.dashboard_latency)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsLatency"

        filters = FiltersSerializer()
        rows = _list("LatencyRow", route=S(), model=S(), attempts=I(), mean_ms=_nullable(F()),
                     p50=_nullable(F()), p95=_nullable(F()), p99=_nullable(F()),
                     p95_budget_ms=_nullable(F()), latency_budget_ms=_nullable(F()),
                     over_budget=serializers.BooleanField())
        days = serializers.ListField(child=serializers.DateField())
        daily = _list("LatencyDaily", route=S(), p95=serializers.ListField(child=_nullable(F())),
                      p95_budget_ms=_nullable(F()))
        bounds_ms = serializers.ListField(child=I())

    @extend_schema(operation_id="metrics_latency", parameters=FILTER_PARAMETERS, responses=OutputSerializer,
                   summary="p50/p95/p99 latency by route and model against the route's budget")
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsBudgetApi(MetricsApi):
    selector = staticmethod(sel.dashboard_budget)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsBudget"

        filters = FiltersSerializer()
        budget = _shape("BudgetScope", scope=S(), monthly_usd=_nullable(F()), daily_usd=_nullable(F()),
                        downgrade_at=_nullable(F()))
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
        forecast = _nullable(_shape("BudgetForecast", method=S(), projected_usd=F(), daily_rate_usd=F(),
                                    fraction=_nullable(F())))
        runway_days = _nullable(F(help_text="null: no budget, or no spend to run it down"))
        days_left = F(help_text="days from now to the end of the month")
        thresholds = _list("BudgetThreshold", fraction=F(), amount_usd=_nullable(F()),
                           crossed_on=_nullable(serializers.DateField()))
        routes = _list("BudgetRoute", route=S(), spent_usd=F(), monthly_usd=_nullable(F()),
                       fraction=_nullable(F()), downgrade_at=_nullable(F()))

    @extend_schema(operation_id="metrics_budget", parameters=FILTER_PARAMETERS, responses=OutputSerializer,
                   summary="Budget burn of the month holding `end`: spend, forecast, runway")
    def get(self, request: Request) -> Response:
        return super().get(request)


class MetricsWorksheetApi(MetricsApi):
    selector = staticmethod(sel.dashboard_worksheet)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsWorksheet"

        filters = FiltersSerializer()
        requests = I()
        rows = _list("WorksheetRow", task_type=S(), route=S(), requests=I(), traffic_share=_nullable(F()),
                     quality_threshold=_nullable(F()), primary_model=_nullable(S()),
                     fallback_model=_nullable(S()), avg_tokens_in=_nullable(F()),
                     avg_tokens_out=_nullable(F()), validation_rule=_nullable(serializers.BooleanField()),
                     pass_rate=_nullable(F()), p50_ms=_nullable(F()), p95_ms=_nullable(F()),
                     cost_per_request_usd=_nullable(F()), last_review=_nullable(serializers.DateField()))

    @extend_schema(operation_id="metrics_worksheet", parameters=FILTER_PARAMETERS,
                   responses=OutputSerializer, summary="Routing worksheet: one row per task type")
    def get(self, request: Request) -> Response:
        return super().get(request)
