"""The dashboards' JSON API (/api/v1/metrics/<page>/): one APIView per page, returning the page's
selector output as documented in the OpenAPI schema."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import InvalidInput
from metrics.dashboards import selectors as sel
from metrics.shapes import FILTER_PARAMETERS, F, FiltersSerializer, I, S, list_of, nullable, nullable_shape, shape
from routing.apis import (
    CanViewPolicies,
)


def _totals(name: str) -> serializers.Serializer:
    return shape(
        name,
        cost_usd=F(),
        requests=I(),
        ok=I(),
        escalations=I(),
        pass_rate=nullable(F(help_text="ok attempts / requests")),
        escalation_rate=nullable(F(help_text="escalated attempts / requests")),
        cost_per_request_usd=nullable(F()),
    )


class MetricsApi(APIView):
    """Base: parse the filters, call the page's selector, return its data."""

    permission_classes = [CanViewPolicies]
    selector: ClassVar[sel.DashboardSelector]

    def get(self, request: Request) -> Response:
        return self.respond(request, type(self).selector)

    def respond(self, request: Request, selector: Any) -> Response:
        """The filters parsed and checked (400/404 naming the parameter), then `selector`'s data."""
        f = sel.dashboard_filters_strict(request.query_params, sel.policy_choices())
        return Response(selector(f))


class MetricsOverviewApi(MetricsApi):
    selector = staticmethod(sel.dashboard_overview)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsOverview"

        filters = FiltersSerializer()
        period = shape("OverviewPeriod", start=serializers.DateField(), end=serializers.DateField(), days=I())
        previous_period = shape("OverviewPreviousPeriod", start=serializers.DateField(), end=serializers.DateField())
        current = _totals("OverviewCurrent")
        previous = _totals("OverviewPrevious")
        budget = shape(
            "OverviewBudget",
            scope=S(),
            monthly_usd=nullable(F()),
            daily_usd=nullable(F()),
            downgrade_at=nullable(F()),
            month=S(),
            month_label=S(),
            month_to_date_usd=F(),
            month_end=serializers.DateField(),
            fraction=nullable(F()),
        )
        open_alerts = I()
        movers = list_of(
            "OverviewMover",
            task_type=S(),
            cost_usd=F(),
            previous_cost_usd=F(),
            cost_change_usd=F(),
            cost_change_pct=nullable(F()),
            requests=I(),
            previous_requests=I(),
            requests_change=I(),
            pass_rate=nullable(F()),
            previous_pass_rate=nullable(F()),
            pass_rate_change=nullable(F()),
        )
        daily = shape(
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
        over_time = list_of("CostSeries", task_type=S(), cost_usd=serializers.ListField(child=F()))
        per_request = list_of(
            "CostPerRequest",
            route=S(),
            task_type=S(),
            cost_usd=F(),
            requests=I(),
            decisions=I(),
            unpriced=I(),
            cost_per_request_usd=nullable(F()),
            max_cost_per_request_usd=nullable(F()),
            upper_tier_cost_share=nullable(F()),
            routing_failure=serializers.BooleanField(),
        )
        by_model = list_of("CostByModel", provider=S(), model=S(), tier=I(), cost_usd=F(), decisions=I(), unpriced=I())
        by_provider = list_of("CostByProvider", provider=S(), cost_usd=F(), share=nullable(F()))

    @extend_schema(
        operation_id="metrics_cost",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Cost per task type over time, per request, by model and provider",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


def _steps(name: str) -> serializers.ListField:
    return list_of(
        name,
        from_tier=I(),
        to_tier=I(),
        reached=I(),
        escalated=I(),
        rate=nullable(F()),
        band=nullable_shape(
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
        overall = list_of(
            "EscalationOverall", from_tier=I(), to_tier=I(), reached=I(), escalated=I(), rate=nullable(F())
        )
        routes = list_of("EscalationRoute", route=S(), requests=I(), steps=_steps("EscalationStep"))
        task_types = list_of(
            "EscalationTaskType",
            route=S(),
            task_type=S(),
            requests_at_tier_1=I(),
            escalated_to_tier_2=I(),
            rate=nullable(F()),
        )
        advisories = list_of(
            "EscalationAdvisory",
            route=S(),
            task_type=S(),
            requests_at_tier_1=I(),
            escalated_to_tier_2=I(),
            rate=F(),
            message=S(),
        )
        funnel = list_of("EscalationFunnelStage", stage=S(), tier=I(), count=I())
        daily = shape(
            "EscalationDaily",
            days=serializers.ListField(child=serializers.DateField()),
            tier_1_to_2=serializers.ListField(child=nullable(F())),
            tier_2_to_3=serializers.ListField(child=nullable(F())),
        )
        advisory_rate = F()
        transitions = list_of("EscalationTransition", from_tier=I(), to_tier=I())
        default_bands = list_of("EscalationDefaultBand", from_tier=I(), to_tier=I(), min=F(), max=F())

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
        cells = list_of(
            "QualityCell", task_type=S(), tier=I(), attempts=I(), ok=I(), pass_rate=nullable(F()), band=nullable(S())
        )
        task_types = serializers.ListField(child=S())
        tiers = serializers.ListField(child=I())
        marks = shape("QualityMarks", good=F(), poor=F())
        requests = I()
        ok = I()
        pass_rate = nullable(F())
        cells_good = I(help_text="cells at or above 95%")
        cells_poor = I(help_text="cells below 75%")
        daily = shape(
            "QualityDaily",
            days=serializers.ListField(child=serializers.DateField()),
            pass_rate=serializers.ListField(child=nullable(F())),
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
        rows = list_of(
            "LatencyRow",
            route=S(),
            model=S(),
            attempts=I(),
            mean_ms=nullable(F()),
            p50=nullable(F()),
            p95=nullable(F()),
            p99=nullable(F()),
            p95_budget_ms=nullable(F()),
            latency_budget_ms=nullable(F()),
            over_budget=serializers.BooleanField(),
        )
        days = serializers.ListField(child=serializers.DateField())
        daily = list_of(
            "LatencyDaily", route=S(), p95=serializers.ListField(child=nullable(F())), p95_budget_ms=nullable(F())
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
        budget = shape(
            "BudgetScope", scope=S(), monthly_usd=nullable(F()), daily_usd=nullable(F()), downgrade_at=nullable(F())
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
        fraction = nullable(F())
        today_usd = F()
        forecast = nullable(
            shape("BudgetForecast", method=S(), projected_usd=F(), daily_rate_usd=F(), fraction=nullable(F()))
        )
        runway_days = nullable(F(help_text="null: no budget, or no spend to run it down"))
        days_left = F(help_text="days from now to the end of the month")
        thresholds = list_of(
            "BudgetThreshold", fraction=F(), amount_usd=nullable(F()), crossed_on=nullable(serializers.DateField())
        )
        routes = list_of(
            "BudgetRoute",
            route=S(),
            spent_usd=F(),
            monthly_usd=nullable(F()),
            fraction=nullable(F()),
            downgrade_at=nullable(F()),
        )
        dimensions = list_of(
            "BudgetDimensionValue",
            dimension=S(help_text="a declared dimension (attribute key)"),
            value=S(help_text="the attribute value the budget is for"),
            spent_usd=F(help_text="this month, the value's records on every route"),
            monthly_usd=nullable(F()),
            fraction=nullable(F(help_text="spent / monthly budget")),
            today_usd=F(),
            daily_usd=nullable(F()),
            daily_fraction=nullable(F(help_text="spent today / daily budget")),
            downgrade_at=F(),
            projected_usd=nullable(F(help_text="month-end forecast of the value's spend")),
            forecast_fraction=nullable(F()),
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
        rows = list_of(
            "WorksheetRow",
            task_type=S(),
            route=S(),
            requests=I(),
            traffic_share=nullable(F()),
            quality_threshold=nullable(F()),
            primary_model=nullable(S()),
            fallback_model=nullable(S()),
            avg_tokens_in=nullable(F()),
            avg_tokens_out=nullable(F()),
            validation_rule=nullable(serializers.BooleanField()),
            pass_rate=nullable(F()),
            p50_ms=nullable(F()),
            p95_ms=nullable(F()),
            cost_per_request_usd=nullable(F()),
            last_review=nullable(serializers.DateField()),
        )

    @extend_schema(
        operation_id="metrics_worksheet",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Routing worksheet: one row per task type",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


def _list_of_fields(
    name: str, named: dict[str, serializers.Field], **fields: serializers.Field
) -> serializers.ListField:
    """`list_of` for a shape with a field called `name`."""
    return serializers.ListField(child=type(name, (serializers.Serializer,), {**named, **fields})())


def _pair_field() -> serializers.Field:
    return serializers.ListField(child=F(), min_length=2, max_length=2, allow_null=True, help_text="[low, high]")


class MetricsCanaryApi(MetricsApi):
    selector = staticmethod(sel.dashboard_canary)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsCanary"

        filters = FiltersSerializer()
        splits = list_of(
            "CanarySplit",
            route=S(),
            key=S(),
            control=S(),
            versions=serializers.ListField(child=I(), help_text="versions that ran this split, newest first"),
            guardrails=serializers.DictField(),
            arms=_list_of_fields(
                "CanaryArm",
                {"name": S()},
                kind=serializers.ChoiceField(choices=["control", "route", "model"]),
                target=nullable(S()),
                weight=I(),
                share=nullable(F(help_text="the arm's share of the split's requests")),
                requests=I(),
                cost_usd=F(),
                cost_per_request_usd=nullable(F()),
                pass_rate=nullable(F()),
                escalation_rate=nullable(F()),
                error_rate=nullable(F()),
                latency_mean_ms=nullable(F()),
                latency_p50_ms=nullable(F()),
                latency_p95_ms=nullable(F()),
                hours=I(),
                is_control=serializers.BooleanField(),
            ),
            srm=shape(
                "CanarySrm",
                mismatch=serializers.BooleanField(help_text="the arm counts do not fit the weights: no verdict"),
                statistic=nullable(F()),
                p_value=F(),
                alpha=F(),
                observed=serializers.ListField(child=I()),
                expected=serializers.ListField(child=F()),
            ),
            comparisons=list_of(
                "CanaryComparison",
                arm=S(),
                metrics=list_of(
                    "CanaryMetric",
                    metric=S(),
                    label=S(),
                    control=nullable(F()),
                    arm=nullable(F()),
                    difference=nullable(F(help_text="arm − control")),
                    relative=nullable(F(help_text="difference / control")),
                    interval=_pair_field(),
                    sequence=_pair_field(),
                    verdict=serializers.ChoiceField(
                        choices=["better", "worse", "no difference yet", "blocked", "too little data"]
                    ),
                    sample_needed=nullable(I(help_text="requests per arm at which the sequence would resolve τ")),
                    method=S(),
                ),
            ),
            hourly=serializers.DictField(
                child=serializers.ListField(child=serializers.DictField()),
                help_text="per arm, per hour: requests and cost",
            ),
        )
        method = shape("CanaryMethod", alpha=F(), metric_alpha=F(), srm_alpha=F(), min_requests=I(), min_hours=I())

    @extend_schema(
        operation_id="metrics_canary",
        parameters=FILTER_PARAMETERS,
        responses=OutputSerializer,
        summary="Every split of the live policy: each arm against the control, with SRM and sequential verdicts",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


ATTRIBUTION_PARAMETERS = [
    *FILTER_PARAMETERS,
    OpenApiParameter("dimension", str, description="arm, client, or an attribute key the live version declares"),
    OpenApiParameter("sort", str, description=f"one of {', '.join(sel.ATTRIBUTION_SORTS)} (default cost_usd)"),
    OpenApiParameter("top", int, description="the first N rows in the sort order; the rest summed in one row"),
    OpenApiParameter("provider", str, description="only this provider"),
    OpenApiParameter("tier", int, description="only attempts at this tier"),
    OpenApiParameter("version", int, description="only decisions of this policy version"),
    OpenApiParameter(
        "where_dimension",
        str,
        description="with where_value: only decisions whose value of this other dimension is where_value "
        f"(read from the raw decisions: ranges of at most {sel.ATTRIBUTION_RAW_MAX_DAYS} days, values uncapped)",
    ),
    OpenApiParameter("where_value", str, description="the value of where_dimension to keep"),
]

_COMPARED_METRIC = shape(
    "AttributionDelta",
    current=nullable(F()),
    previous=nullable(F()),
    change=nullable(F(help_text="absolute; points for rates")),
    change_pct=nullable(F(help_text="change / previous")),
)


def _attribution_numbers(name: str, **more: Any) -> serializers.Serializer:
    return shape(
        name,
        cost_usd=F(),
        requests=I(),
        escalations=I(),
        ok=I(help_text="ok attempts"),
        unpriced=I(),
        cost_per_request_usd=nullable(F()),
        escalation_rate=nullable(F()),
        pass_rate=nullable(F()),
        **more,
    )


def _attribution_change(name: str) -> serializers.Serializer:
    return shape(name, **dict.fromkeys(sel.ATTRIBUTION_COMPARED, _COMPARED_METRIC))


_ATTRIBUTION_COMPARED_FIELDS = {
    "previous": _attribution_numbers("AttributionPrevious"),
    "change": _attribution_change("AttributionChange"),
    "previous_cost_usd": F(),
    "cost_change_usd": nullable(F()),
    "cost_change_pct": nullable(F()),
    "previous_requests": I(),
    "requests_change_pct": nullable(F()),
    "previous_pass_rate": nullable(F()),
    "pass_rate_change": nullable(F()),
}


class MetricsAttributionApi(MetricsApi):
    """Cost, requests, cost per request, escalation and pass rate per value of one dimension,
    against the compared period (month over month for a month)."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MetricsAttribution"

        filters = FiltersSerializer()
        attribution_filters = shape(
            "AttributionFilters",
            provider=nullable(S()),
            tier=nullable(I()),
            version=nullable(I()),
            where_dimension=nullable(S()),
            where_value=nullable(S()),
            top=nullable(I()),
        )
        dimension = S()
        dimensions = serializers.ListField(child=S())
        sort = S()
        read_from = serializers.ChoiceField(
            choices=["rollups", "raw"], help_text="raw: two dimensions combined, read from the raw decisions"
        )
        period = shape("AttributionPeriod", start=serializers.DateField(), end=serializers.DateField(), days=I())
        previous_period = shape(
            "AttributionPreviousPeriod",
            start=serializers.DateField(),
            end=serializers.DateField(),
            days=I(),
        )
        rows = serializers.ListField(
            child=_attribution_numbers(
                "AttributionRow",
                value=S(),
                rest=serializers.BooleanField(help_text="the row summing the values past `top`"),
                cost_share=nullable(F()),
                **_ATTRIBUTION_COMPARED_FIELDS,
            )
        )
        values = I(help_text="values before the cut at `top`")
        total = _attribution_numbers("AttributionTotal", **_ATTRIBUTION_COMPARED_FIELDS)
        total_cost_usd = F()
        total_requests = I()
        folded = serializers.BooleanField(help_text="some values past the daily cap count under (other)")
        cap_per_day = I()
        none_label = S()
        other_label = S()
        raw_max_days = I()

    @extend_schema(
        operation_id="metrics_attribution",
        parameters=ATTRIBUTION_PARAMETERS,
        responses=OutputSerializer,
        summary="Cost and quality by the values of one dimension (team, tenant, arm, client app...), "
        "against the previous period",
    )
    def get(self, request: Request) -> Response:
        def selector(f: sel.DashboardFilters) -> dict[str, Any]:
            query, errors = sel.attribution_query_parse(request.query_params, f)
            if errors:
                raise InvalidInput("Invalid attribution parameters.", errors)
            return sel.dashboard_attribution(f, query)

        return self.respond(request, selector)
