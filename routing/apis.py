"""The management API (DRF): policies, versions, the draft, publish, rollback, diff, preview,
catalog, SDK keys and audit. One view per resource URL, each method with its own nested
serializers; writes go through `routing.services`, reads through `routing.selectors`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import InvalidInput, TooLarge
from routing import selectors, services
from routing.diff import document_diff
from routing.models import SLUG_RE, AuditEntry, Policy, SdkKey
from signalbox_client import engine


class StrictSerializer(serializers.Serializer):
    """Rejects fields it doesn't know, naming them, instead of silently ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


def can(perm: str) -> type[BasePermission]:
    """A permission class that needs `perm` (an app-label permission such as routing.view_policy)."""

    class _Can(BasePermission):
        message = "You do not have permission to do this."

        def has_permission(self, request: Request, view: Any) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user.has_perm(perm))

    _Can.__name__ = f"Can_{perm.replace('.', '_')}"
    return _Can


CanViewPolicies = can("routing.view_policy")
CanViewCatalog = can("routing.view_catalogmodel")
CanViewKeys = can("routing.view_sdkkey")
CanViewAudit = can("routing.view_auditentry")


def check_body_size(request: Request) -> None:
    """Refuse a body whose Content-Length is past the policy document limit (plus 64 KiB), before
    it is read: a JSON 413 naming the field, not Django's HTML 400."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidInput("The Content-Length header is not a number.", {"body": ["invalid Content-Length"]}) from None
    limit = settings.POLICY_DOCUMENT_MAX_BYTES + 64 * 1024
    if length > limit:
        raise TooLarge(f"The request body is {length:,} bytes; the limit is {limit:,}.", {"document": ["too large"]})


MAX_PAGE_LIMIT = 1000
MAX_PAGE_OFFSET = 1_000_000_000


def _page_bound(request: Request, name: str, low: int, high: int) -> None:
    """Refuse a `limit`/`offset` that is not a whole number in [low, high] (instead of ignoring it)."""
    values = request.query_params.getlist(name)
    if not values:
        return
    if len(values) > 1:
        raise InvalidInput(f"Give '{name}' once.", {name: ["given more than once"]})
    value = values[0]
    if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
        raise InvalidInput(
            f"'{name}' must be a whole number from {low} to {high:,}.", {name: [f"a whole number from {low} to {high}"]}
        )


def _text_param(request: Request, name: str, *, max_length: int = 200) -> str | None:
    """A free-text query parameter, refused by name when too long or holding a NUL byte."""
    value = request.query_params.get(name)
    if value is not None and (len(value) > max_length or "\x00" in value):
        raise InvalidInput(f"Invalid '{name}'.", {name: [f"at most {max_length} characters, no NUL bytes"]})
    return value


def paginate(request: Request, view: APIView, queryset: Any, serializer: type[serializers.Serializer]) -> Response:
    """A LimitOffsetPagination page of `queryset` through `serializer`; a bad `limit`/`offset` is a 400."""
    _page_bound(request, "limit", 1, MAX_PAGE_LIMIT)
    _page_bound(request, "offset", 0, MAX_PAGE_OFFSET)
    paginator = LimitOffsetPagination()
    page: list[Any] | None = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_LIMIT},
        description="Number of results to return per page.",
    ),
    OpenApiParameter(
        "offset",
        {"type": "integer", "minimum": 0, "maximum": MAX_PAGE_OFFSET},
        description="The initial index from which to return the results.",
    ),
]


def page_of(serializer: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of a `paginate` response: a LimitOffsetPagination page of `serializer`."""
    name = serializer.__name__.removesuffix("Output")
    return inline_serializer(
        f"Paginated{name}List",
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer(many=True),
        },
    )


# --- output shapes shared by several views -------------------------------------------------------


class VersionOutput(serializers.Serializer):
    number = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    comment = serializers.CharField()
    author = serializers.CharField(source="author.get_username", allow_null=True, default=None)
    base_number = serializers.IntegerField(allow_null=True)
    revision = serializers.IntegerField()
    rollback_of = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    published_at = serializers.DateTimeField(allow_null=True)


class VersionDetailOutput(VersionOutput):
    document = serializers.JSONField()


class PolicyOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField(source="owner.get_username", allow_null=True, default=None)
    live_version = serializers.IntegerField(source="live_version.number", allow_null=True, default=None)
    live_published_at = serializers.DateTimeField(source="live_version.published_at", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ChangeOutput(serializers.Serializer):
    op = serializers.ChoiceField(choices=["added", "removed", "changed"])
    path = serializers.CharField()
    old = serializers.JSONField(required=False)
    new = serializers.JSONField(required=False)


# --- policies ------------------------------------------------------------------------------------


class PolicyListApi(APIView):
    permission_classes = [CanViewPolicies]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "PolicyCreate"

        slug = serializers.CharField(max_length=63)
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        document = serializers.JSONField(required=False)

    @extend_schema(parameters=PAGE_PARAMETERS, responses=page_of(PolicyOutput), operation_id="policies_list")
    def get(self, request: Request) -> Response:
        return paginate(request, self, selectors.policy_list(), PolicyOutput)

    @extend_schema(request=InputSerializer, responses={201: PolicyOutput}, operation_id="policies_create")
    def post(self, request: Request) -> Response:
        check_body_size(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy = services.policy_create(user=request.user, **data.validated_data)
        return Response(PolicyOutput(selectors.policy_get(policy.slug)).data, status=201)


class PolicyDetailApi(APIView):
    permission_classes = [CanViewPolicies]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "PolicyUpdate"

        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(responses=PolicyOutput, operation_id="policies_retrieve")
    def get(self, request: Request, slug: str) -> Response:
        return Response(PolicyOutput(selectors.policy_get(slug)).data)

    @extend_schema(request=InputSerializer, responses=PolicyOutput, operation_id="policies_update")
    def patch(self, request: Request, slug: str) -> Response:
        policy = selectors.policy_get(slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.policy_update(policy=policy, user=request.user, **data.validated_data)
        return Response(PolicyOutput(selectors.policy_get(slug)).data)


class PolicyVersionListApi(APIView):
    permission_classes = [CanViewPolicies]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=page_of(VersionOutput), operation_id="policies_versions_list")
    def get(self, request: Request, slug: str) -> Response:
        policy = selectors.policy_get(slug)
        return paginate(request, self, selectors.policy_versions(policy), VersionOutput)


class PolicyVersionDetailApi(APIView):
    permission_classes = [CanViewPolicies]

    @extend_schema(
        responses=VersionDetailOutput,
        operation_id="policies_versions_retrieve",
        description="A version by number, or `live` / `draft`.",
    )
    def get(self, request: Request, slug: str, ref: str) -> Response:
        policy = selectors.policy_get(slug)
        return Response(VersionDetailOutput(selectors.policy_version_get(policy, ref)).data)


class PolicyDraftApi(APIView):
    permission_classes = [CanViewPolicies]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "DraftSave"

        document = serializers.JSONField()
        expected_revision = serializers.IntegerField(required=False, allow_null=True, min_value=0)
        rebase = serializers.BooleanField(required=False, default=False)

    @extend_schema(responses=VersionDetailOutput, operation_id="policies_draft_retrieve")
    def get(self, request: Request, slug: str) -> Response:
        policy = selectors.policy_get(slug)
        return Response(VersionDetailOutput(selectors.policy_version_get(policy, "draft")).data)

    @extend_schema(
        request=InputSerializer,
        responses=VersionDetailOutput,
        operation_id="policies_draft_save",
        description="Validate and save the draft. 400 names each invalid path; 409 when "
        "`expected_revision` is not the draft's current revision.",
    )
    def put(self, request: Request, slug: str) -> Response:
        check_body_size(request)
        policy = selectors.policy_get(slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        draft = services.draft_save(policy=policy, user=request.user, **data.validated_data)
        return Response(VersionDetailOutput(draft).data)

    @extend_schema(responses={204: None}, operation_id="policies_draft_discard")
    def delete(self, request: Request, slug: str) -> Response:
        services.draft_discard(policy=selectors.policy_get(slug), user=request.user)
        return Response(status=204)


class PolicyPublishApi(APIView):
    permission_classes = [CanViewPolicies]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "PolicyPublish"

        comment = serializers.CharField(allow_blank=True, max_length=2000)
        expected_revision = serializers.IntegerField(required=False, allow_null=True, min_value=0)

    @extend_schema(
        request=InputSerializer,
        responses={201: VersionDetailOutput},
        operation_id="policies_publish",
        description="Publish the draft as the next version. 409 with `changes` when the "
        "draft's base is no longer live.",
    )
    def post(self, request: Request, slug: str) -> Response:
        policy = selectors.policy_get(slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.policy_publish(policy=policy, user=request.user, **data.validated_data)
        return Response(VersionDetailOutput(version).data, status=201)


class PolicyRollbackApi(APIView):
    permission_classes = [CanViewPolicies]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "PolicyRollback"

        to_version = serializers.IntegerField(min_value=1)
        comment = serializers.CharField(allow_blank=True, max_length=2000)

    @extend_schema(
        request=InputSerializer,
        responses={201: VersionDetailOutput},
        operation_id="policies_rollback",
        description="Publish a new version whose document equals `to_version`.",
    )
    def post(self, request: Request, slug: str) -> Response:
        policy = selectors.policy_get(slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.policy_rollback(
            policy=policy,
            user=request.user,
            to_number=data.validated_data["to_version"],
            comment=data.validated_data["comment"],
        )
        return Response(VersionDetailOutput(version).data, status=201)


class PolicyDiffApi(APIView):
    permission_classes = [CanViewPolicies]

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, description="version number, `live` or `draft` (default: live)"),
            OpenApiParameter("to", str, description="version number, `live` or `draft` (default: draft)"),
        ],
        responses=inline_serializer(
            "PolicyDiff",
            {"from": serializers.CharField(), "to": serializers.CharField(), "changes": ChangeOutput(many=True)},
        ),
        operation_id="policies_diff",
    )
    def get(self, request: Request, slug: str) -> Response:
        policy = selectors.policy_get(slug)
        ref_from = request.query_params.get("from", "live")
        ref_to = request.query_params.get("to", "draft")
        old = selectors.policy_version_get(policy, ref_from)
        new = selectors.policy_version_get(policy, ref_to)
        return Response({"from": old.label, "to": new.label, "changes": document_diff(old.document, new.document)})


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


class PreviewOutcomeSerializer(StrictSerializer):
    class Meta:
        ref_name = "PreviewOutcome"

    outcome = serializers.ChoiceField(choices=sorted(engine.OUTCOMES))
    confidence = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    elapsed_ms = serializers.FloatField(min_value=0, max_value=86_400_000, required=False, default=0.0)


class PolicyPreviewApi(APIView):
    """Try one request against a version (the draft by default) and see the decision and its reason."""

    permission_classes = [CanViewPolicies]

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
        description="Run the engine on one request against a version and explain the "
        "decision; `outcomes` plays attempts forward through the cascade "
        "and fallbacks.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy = selectors.policy_get(slug)
        try:
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

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "DocumentValidate"

        document = serializers.JSONField()

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer("ValidationResult", {"valid": serializers.BooleanField()}),
        operation_id="policy_document_validate",
    )
    def post(self, request: Request) -> Response:
        check_body_size(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.document_check(data.validated_data["document"])
        return Response({"valid": True})


# --- catalog -------------------------------------------------------------------------------------


class PriceOutput(serializers.Serializer):
    input_per_mtok = serializers.DecimalField(max_digits=14, decimal_places=6, coerce_to_string=False)
    output_per_mtok = serializers.DecimalField(max_digits=14, decimal_places=6, coerce_to_string=False)
    effective_from = serializers.DateTimeField()
    # A declared field named like Field.source (the stubs see the attribute, DRF a field): the API's name.
    source = serializers.CharField()  # type: ignore[assignment]


class CatalogModelOutput(serializers.Serializer):
    model_id = serializers.CharField()
    provider = serializers.CharField()
    tier = serializers.IntegerField()
    mode = serializers.CharField()
    context_window = serializers.IntegerField(allow_null=True)
    max_output_tokens = serializers.IntegerField(allow_null=True)
    supports_vision = serializers.BooleanField()
    supports_tools = serializers.BooleanField()
    supports_response_schema = serializers.BooleanField()
    supports_reasoning = serializers.BooleanField()
    prices = PriceOutput(many=True)


class CatalogModelListApi(APIView):
    permission_classes = [CanViewCatalog]

    @extend_schema(
        parameters=[OpenApiParameter("provider", str), OpenApiParameter("search", str), *PAGE_PARAMETERS],
        responses=page_of(CatalogModelOutput),
        operation_id="catalog_list",
    )
    def get(self, request: Request) -> Response:
        qs = selectors.catalog_list(provider=_text_param(request, "provider"), search=_text_param(request, "search"))
        return paginate(request, self, qs, CatalogModelOutput)


class CatalogModelDetailApi(APIView):
    permission_classes = [CanViewCatalog]

    @extend_schema(responses=CatalogModelOutput, operation_id="catalog_retrieve")
    def get(self, request: Request, model_id: str) -> Response:
        return Response(CatalogModelOutput(selectors.catalog_model_get(model_id)).data)


# --- SDK keys ------------------------------------------------------------------------------------


class SdkKeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    policies = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.get_username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)

    def get_policies(self, key: SdkKey) -> list[str]:
        return [p.slug for p in key.policies.all()]


class SdkKeyListApi(APIView):
    permission_classes = [CanViewKeys]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "SdkKeyCreate"

        name = serializers.CharField(max_length=200)
        policies = serializers.ListField(child=serializers.CharField(max_length=63), min_length=1, max_length=500)

        def validate_policies(self, value: list[str]) -> list[Policy]:
            found = {p.slug: p for p in Policy.objects.filter(slug__in=value)}
            missing = [slug for slug in value if slug not in found]
            if missing:
                # Only slug-shaped values are echoed: a secret pasted into this field stays out of
                # the answer (and of whatever logs it).
                shown = [slug for slug in missing if SLUG_RE.match(slug)]
                hidden = len(missing) - len(shown)
                parts = [", ".join(shown)] if shown else []
                if hidden:
                    parts.append(
                        f"{hidden} value{'s' if hidden > 1 else ''} that {'are' if hidden > 1 else 'is'} "
                        "not a policy slug"
                    )
                raise serializers.ValidationError(f"unknown policies: {'; '.join(parts)}")
            return list(found.values())

    @extend_schema(parameters=PAGE_PARAMETERS, responses=page_of(SdkKeyOutput), operation_id="keys_list")
    def get(self, request: Request) -> Response:
        return paginate(request, self, selectors.sdk_key_list(), SdkKeyOutput)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "SdkKeyCreated",
                {"key": SdkKeyOutput(), "secret": serializers.CharField(help_text="Shown once; store it now.")},
            )
        },
        operation_id="keys_create",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, secret = services.sdk_key_create(user=request.user, **data.validated_data)
        return Response({"key": SdkKeyOutput(key).data, "secret": secret}, status=201)


class SdkKeyRevokeApi(APIView):
    permission_classes = [CanViewKeys]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "SdkKeyRevoke"

        comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    @extend_schema(request=InputSerializer, responses=SdkKeyOutput, operation_id="keys_revoke")
    def post(self, request: Request, key_id: int) -> Response:
        key = SdkKey.objects.filter(pk=key_id).first()
        if key is None:
            from controlplane.errors import NotFound

            raise NotFound(f"No SDK key {key_id}.", {"key": ["not found"]})
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = services.sdk_key_revoke(key=key, user=request.user, **data.validated_data)
        return Response(SdkKeyOutput(selectors.sdk_key_list().get(pk=key.pk)).data)


# --- audit ---------------------------------------------------------------------------------------


class AuditOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_label")
    action = serializers.CharField()
    policy = serializers.CharField(source="policy.slug", allow_null=True, default=None)
    target = serializers.CharField()
    comment = serializers.CharField()
    diff = ChangeOutput(many=True)


class AuditListApi(APIView):
    permission_classes = [CanViewAudit]

    @extend_schema(
        parameters=[
            OpenApiParameter("policy", str),
            OpenApiParameter("action", str, enum=[a.value for a in AuditEntry.Action]),
            *PAGE_PARAMETERS,
        ],
        responses=page_of(AuditOutput),
        operation_id="audit_list",
    )
    def get(self, request: Request) -> Response:
        slug = request.query_params.get("policy")
        action = request.query_params.get("action")
        if action is not None and action not in AuditEntry.Action.values:
            raise InvalidInput(f"Unknown action '{action}'.", {"action": ["not a known action"]})
        policy = selectors.policy_get(slug) if slug else None
        return paginate(request, self, selectors.audit_list(policy=policy, action=action), AuditOutput)
