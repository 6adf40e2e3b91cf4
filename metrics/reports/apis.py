"""The monthly report API (/api/v1/metrics/reports/<policy>/<month>/)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics.reports import selectors as report_selectors
from metrics.reports.sums import METRIC_KEYS
from metrics.shapes import F, I, S, list_of, nullable, shape
from routing import selectors as routing_selectors
from routing.apis import (
    CanViewPolicies,
)


def _report_delta(name: str) -> serializers.Serializer:
    return shape(
        name,
        current=nullable(F()),
        previous=nullable(F()),
        change=nullable(F(help_text="current − previous (for rates: a difference of fractions)")),
        change_pct=nullable(F(help_text="change / previous; null when previous is 0 or missing")),
    )


def _report_metrics(name: str) -> serializers.Serializer:
    return shape(name, **{key: _report_delta(f"{name}{key.title().replace('_', '')}") for key in METRIC_KEYS})


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
            {  # a field called "name": no shape()
                "slug": S(),
                "name": S(),
                "live_version": nullable(I()),
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
        summary = list_of(
            "ReportSummaryRow",
            metric=S(),
            label=S(),
            unit=S(help_text="usd, usd_per_request, count, rate or ms"),
            current=nullable(F()),
            previous=nullable(F()),
            change=nullable(F()),
            change_pct=nullable(F()),
        )
        task_types = list_of("ReportTaskType", task_type=S(), metrics=_report_metrics("ReportTaskTypeMetrics"))
        routes = list_of("ReportRoute", route=S(), metrics=_report_metrics("ReportRouteMetrics"))
        movers = shape(
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
                            "change_pct": nullable(F()),
                        },
                    )()
                )
                for ranking in ("absolute", "relative")
            },
        )
        changes = list_of(
            "ReportChange",
            version=I(),
            previous_version=nullable(I()),
            action=S(),
            rollback_of=nullable(I()),
            at=serializers.DateTimeField(),
            by=S(),
            comment=S(),
            changed_paths=serializers.ListField(child=S()),
            changed_count=I(),
        )
        alerts = list_of(
            "ReportAlert",
            opened_at=serializers.DateTimeField(),
            raised_in_month=serializers.BooleanField(help_text="false: opened before the month"),
            route=S(),
            detector=S(),
            severity=S(),
            status=S(),
            summary=S(),
            resolved_at=nullable(serializers.DateTimeField()),
        )
        recommendations = shape(
            "ReportRecommendations",
            items=list_of(
                "ReportRecommendation",
                kind=S(help_text="tier1_sufficient, over_band or direct_route"),
                route=S(),
                task_type=nullable(S()),
                transition=nullable(S()),
                observed_rate=nullable(F()),
                threshold=nullable(F()),
                affected_requests=nullable(F()),
                cost_per_request_from_usd=nullable(F()),
                cost_per_request_to_usd=nullable(F()),
                estimated_monthly_savings_usd=nullable(F(help_text="null: an advisory, not estimated")),
                message=S(),
            ),
            total_savings_usd=F(),
            whatif=nullable(serializers.DictField(help_text="the what-if replay's estimate, when available")),
        )
        reviews = list_of("ReportReview", reviewed_by=S(), reviewed_at=serializers.DateTimeField(), note=S())
        by_dimension = serializers.ListField(
            child=serializers.DictField(),
            help_text="per declared dimension: its 10 costliest values this month and everything else summed "
            "(a row with rest: true), each against the previous month (dimension, values, total, folded, "
            "previous_period and rows shaped as the attribution API's, with previous, change per metric)",
        )
        canaries = serializers.ListField(
            child=serializers.DictField(),
            help_text="the live version's splits judged over the month: the items of the canary API's "
            "`splits` (MetricsCanary), without `hourly`",
        )
        daily = shape(
            "ReportDaily",
            days=serializers.ListField(child=serializers.DateField()),
            cost_by_task_type=list_of("ReportDailyCost", task_type=S(), cost_usd=serializers.ListField(child=F())),
            cost_usd=serializers.ListField(child=F()),
            requests=serializers.ListField(child=I()),
            tier_1_to_2=serializers.ListField(child=nullable(F())),
            tier_2_to_3=serializers.ListField(child=nullable(F())),
            pass_rate=serializers.ListField(child=nullable(F())),
        )
        markers = list_of(
            "ReportMarker",
            version=I(),
            at=serializers.DateTimeField(),
            rollback_of=nullable(I()),
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
