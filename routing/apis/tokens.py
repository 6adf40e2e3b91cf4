"""The API token API: list your tokens and make one (its key answered once), revoke one."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import NotFound
from routing import selectors, services
from routing.apis.common import PAGE_PARAMETERS, CanViewPolicies, StrictSerializer, page_of, paginate
from routing.models import SLUG_RE, ApiToken, Policy
from routing.roles import ROLES


class ApiTokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    user = serializers.CharField(source="user.get_username")
    role = serializers.CharField()
    policies = serializers.SerializerMethodField(help_text="The policies it may reach; empty: every policy.")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="Recorded to the minute.")

    def get_policies(self, token: ApiToken) -> list[str]:
        return sorted(p.slug for p in token.policies.all())


class ApiTokenListApi(APIView):
    permission_classes = [CanViewPolicies]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "ApiTokenCreate"

        name = serializers.CharField(max_length=200)
        role = serializers.ChoiceField(choices=list(ROLES), required=False, help_text="Default: your own role.")
        policies = serializers.ListField(
            child=serializers.CharField(max_length=63), required=False, default=list, max_length=500
        )
        expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

        def validate_policies(self, value: list[str]) -> list[Policy]:
            found = {p.slug: p for p in Policy.objects.filter(slug__in=value)}
            missing = [slug for slug in value if slug not in found]
            if missing:
                shown = [slug for slug in missing if SLUG_RE.match(slug)]
                raise serializers.ValidationError(
                    f"unknown policies: {', '.join(shown) or f'{len(missing)} values that are not policy slugs'}"
                )
            return list(found.values())

    @extend_schema(parameters=PAGE_PARAMETERS, responses=page_of(ApiTokenOutput), operation_id="tokens_list")
    def get(self, request: Request) -> Response:
        return paginate(request, self, selectors.api_token_list(request.user), ApiTokenOutput)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "ApiTokenCreated",
                {"token": ApiTokenOutput(), "key": serializers.CharField(help_text="Shown once; store it now.")},
            )
        },
        operation_id="tokens_create",
        description="Make a token for yourself, of at most your own role; the key is answered once.",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.api_token_create(user=request.user, **data.validated_data)
        token = selectors.api_token_list(request.user).get(pk=token.pk)
        return Response({"token": ApiTokenOutput(token).data, "key": key}, status=201)


class ApiTokenRevokeApi(APIView):
    permission_classes = [CanViewPolicies]

    class InputSerializer(StrictSerializer):
        class Meta:
            ref_name = "ApiTokenRevoke"

        comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    @extend_schema(request=InputSerializer, responses=ApiTokenOutput, operation_id="tokens_revoke")
    def post(self, request: Request, token_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = selectors.api_token_list(request.user).filter(pk=token_id).first()
        if token is None:  # someone else's token reads as absent
            raise NotFound(f"No API token {token_id}.", {"token": ["not found"]})
        services.api_token_revoke(token=token, user=request.user, **data.validated_data)
        return Response(ApiTokenOutput(selectors.api_token_list(request.user).get(pk=token.pk)).data)
