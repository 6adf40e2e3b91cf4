"""The what-if API (POST /api/v1/metrics/whatif/)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import compute
from controlplane.errors import InvalidInput
from controlplane.openapi import COMPUTE_EXTENSION
from controlplane.throttles import COMPUTE_THROTTLES
from metrics.shapes import F, I, S, list_of, nullable, shape
from metrics.whatif import replay as whatif
from routing import selectors as routing_selectors
from routing.apis import (
    CanViewPolicies,
    StrictSerializer,
    check_body_size,
)


def _whatif_measures(name: str) -> serializers.Serializer:
    return shape(
        name,
        requests=I(),
        attempts=F(),
        cost_usd=F(help_text="priced attempts only"),
        complete=serializers.BooleanField(help_text="false: some attempts have no price"),
        unpriced_attempts=F(),
        cost_per_request_usd=nullable(F()),
        escalations=F(),
        escalation_rate=nullable(F(help_text="escalated attempts / requests")),
        p50_ms=nullable(F(help_text="per attempt")),
        p95_ms=nullable(F(help_text="per attempt")),
    )


def _whatif_comparison(name: str) -> dict[str, serializers.Field]:
    return {
        "actual": _whatif_measures(f"{name}Actual"),
        "draft": _whatif_measures(f"{name}Draft"),
        "live_modelled_cost_usd": nullable(F(help_text="the same model applied to the live version")),
        "delta_cost_usd": nullable(F(help_text="draft − actual; null when either side has unpriced attempts")),
        "savings_usd": nullable(F()),
        "savings_pct": nullable(F()),
        "delta_escalation_rate": nullable(F()),
        "delta_p50_ms": nullable(F()),
        "delta_p95_ms": nullable(F()),
    }


class MetricsWhatIfApi(APIView):
    """Replay a period's logged traffic through a draft document and compare it with what
    happened (the expected-value model of docs/whatif.md)."""

    permission_classes = [CanViewPolicies]
    throttle_classes = COMPUTE_THROTTLES
    policy_scope = "body"  # how a policy-scoped token meets it (routing.authentication)

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
        period = shape("WhatIfPeriod", start=serializers.DateField(), end=serializers.DateField(), days=I())
        priced_at = serializers.DateTimeField(help_text="Catalog prices in force at this instant are used.")
        empty = serializers.BooleanField()
        message = S()
        requests = I()
        total = shape("WhatIfTotal", **_whatif_comparison("WhatIfTotal"))
        task_types = list_of(
            "WhatIfTaskType",
            task_type=S(),
            share=F(),
            avg_tokens_in=F(),
            avg_tokens_out=F(),
            **_whatif_comparison("WhatIfTaskType"),
            paths=list_of(
                "WhatIfPath",
                route=S(),
                arm=nullable(S()),
                probability=F(),
                reason=serializers.DictField(),
                steps=list_of(
                    "WhatIfStep",
                    tier=I(),
                    model=S(),
                    reach=F(),
                    cost_usd=nullable(F()),
                    next_rate=nullable(F()),
                    next_rate_source=nullable(S()),
                ),
            ),
        )
        assumptions = serializers.ListField(child=S())
        unpriced_models = serializers.ListField(child=S())

    @extend_schema(
        operation_id="metrics_whatif",
        extensions=COMPUTE_EXTENSION,
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
            with compute.bounded("what-if", field="document"):
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
