"""The policy document API: trying a request against a version (preview), the document's JSON
Schema, and validating a document without saving it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import compute
from controlplane.errors import InvalidInput
from controlplane.openapi import COMPUTE_EXTENSION
from controlplane.throttles import COMPUTE_THROTTLES
from routing import selectors, services
from routing.apis.common import CanViewPolicies, StrictSerializer, check_body_size
from signalbox_client import engine


class PreviewRequestSerializer(StrictSerializer):
    class Meta:
        ref_name = "PreviewRequest"

    task_type = serializers.CharField(max_length=200)
    prompt_tokens = serializers.IntegerField(min_value=0, max_value=100_000_000, default=0)
    context_tokens = serializers.IntegerField(min_value=0, max_value=100_000_000, required=False, allow_null=True)
    text = serializers.CharField(max_length=100_000, required=False, allow_null=True, allow_blank=True)
    user_id = serializers.CharField(max_length=200, required=False, allow_null=True)
    request_id = serializers.CharField(max_length=200, required=False, allow_null=True)
    user_tier = serializers.CharField(max_length=100, required=False, allow_null=True)
    risk = serializers.CharField(max_length=100, required=False, allow_null=True)
    use_case = serializers.CharField(max_length=100, required=False, allow_null=True)
    needs_tools = serializers.BooleanField(default=False)
    needs_vision = serializers.BooleanField(default=False)
    needs_code = serializers.BooleanField(default=False)
    latency_class = serializers.ChoiceField(choices=["interactive", "batch"], required=False, allow_null=True)
    score = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    critical = serializers.BooleanField(default=False)
    attributes = serializers.DictField(child=serializers.JSONField(), required=False, default=dict)

    def validate_attributes(self, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k, v in value.items() if not isinstance(v, str | int | float | bool) or v is None]
        if bad:
            raise serializers.ValidationError(f"values must be strings, numbers or booleans: {', '.join(bad)}")
        return value


class PreviewFractionSerializer(StrictSerializer):
    class Meta:
        ref_name = "PreviewBudgetFraction"

    daily = serializers.FloatField(min_value=0, max_value=100, required=False, allow_null=True)
    monthly = serializers.FloatField(min_value=0, max_value=100, required=False, allow_null=True)


class PreviewStateSerializer(StrictSerializer):
    class Meta:
        ref_name = "PreviewState"

    policy = PreviewFractionSerializer(required=False, allow_null=True)
    routes = serializers.DictField(child=PreviewFractionSerializer(), required=False, default=dict)
    dimensions = serializers.DictField(
        child=serializers.DictField(child=PreviewFractionSerializer()),
        required=False,
        default=dict,
        help_text="dimension key -> attribute value -> fractions (the budgets of dimension_budgets)",
    )


class PreviewOutcomeSerializer(StrictSerializer):
    class Meta:
        ref_name = "PreviewOutcome"

    outcome = serializers.ChoiceField(choices=sorted(engine.OUTCOMES))
    confidence = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    elapsed_ms = serializers.FloatField(min_value=0, max_value=86_400_000, required=False, default=0.0)


class PolicyPreviewApi(APIView):
    """Try one request against a version (the draft by default) and see the decision and its reason."""

    permission_classes = [CanViewPolicies]
    throttle_classes = COMPUTE_THROTTLES

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "PolicyPreview"

        version = serializers.CharField(
            required=False, default="draft", help_text="a version number, `live` or `draft`"
        )
        request = PreviewRequestSerializer()
        state = PreviewStateSerializer(required=False, allow_null=True)
        # many=True hands max_length to the ListSerializer it builds; the stubs type only the child's kwargs.
        outcomes = PreviewOutcomeSerializer(many=True, required=False, default=list, max_length=20)  # type: ignore[call-arg]

    @extend_schema(
        request=InputSerializer,
        responses={200: dict},
        operation_id="policies_preview",
        extensions=COMPUTE_EXTENSION,
        description="Run the engine on one request against a version and explain the "
        "decision; `outcomes` plays attempts forward through the cascade "
        "and fallbacks.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy = selectors.policy_get(slug)
        try:
            with compute.bounded("preview", field="request"):
                result = selectors.policy_preview(
                    policy,
                    data.validated_data["version"],
                    request=data.validated_data["request"],
                    state=data.validated_data.get("state"),
                    outcomes=data.validated_data["outcomes"],
                )
        except engine.PolicyError as exc:
            raise InvalidInput(
                "This version's document is invalid; fix it before previewing.",
                {e.path or "(root)": [e.message] for e in exc.errors},
            ) from exc
        return Response(result)


class PolicyDocumentSchemaApi(APIView):
    permission_classes = [CanViewPolicies]
    policy_scope = "none"  # how a policy-scoped token meets it (routing.authentication)

    @extend_schema(
        responses={200: dict},
        operation_id="policy_document_schema",
        description="The JSON Schema every policy document is validated against.",
    )
    def get(self, request: Request) -> Response:
        return Response(engine.SCHEMA)


class PolicyValidateApi(APIView):
    """Validate a document without saving it (editors call it while typing)."""

    permission_classes = [CanViewPolicies]
    throttle_classes = COMPUTE_THROTTLES
    policy_scope = "none"  # how a policy-scoped token meets it (routing.authentication)

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "DocumentValidate"

        document = serializers.JSONField()

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer("ValidationResult", {"valid": serializers.BooleanField()}),
        operation_id="policy_document_validate",
        extensions=COMPUTE_EXTENSION,
    )
    def post(self, request: Request) -> Response:
        check_body_size(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with compute.bounded("validation", field="document"):
            services.document_check(data.validated_data["document"])
        return Response({"valid": True})
