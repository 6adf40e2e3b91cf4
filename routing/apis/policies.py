"""The policy API: policies, their versions, the draft, publish, rollback and the diff between
two versions."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routing import selectors, services
from routing.apis.common import (
    PAGE_PARAMETERS,
    CanViewPolicies,
    ChangeOutput,
    PolicyOutput,
    StrictSerializer,
    VersionDetailOutput,
    VersionOutput,
    check_body_size,
    page_of,
    paginate,
)
from routing.authentication import request_token
from routing.diff import document_diff
from routing.selectors import token_policy_slugs


class PolicyListApi(APIView):
    permission_classes = [CanViewPolicies]
    policy_scope = "list"  # how a policy-scoped token meets it (routing.authentication)

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "PolicyCreate"

        slug = serializers.CharField(max_length=63)
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        document = serializers.JSONField(required=False)

    @extend_schema(parameters=PAGE_PARAMETERS, responses=page_of(PolicyOutput), operation_id="policies_list")
    def get(self, request: Request) -> Response:
        policies = selectors.policy_list()
        scope = token_policy_slugs(request_token(request))
        if scope is not None:
            policies = policies.filter(slug__in=scope)
        return paginate(request, self, policies, PolicyOutput)

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
