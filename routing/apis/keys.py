"""The SDK key API: list and create keys (the secret answered once), revoke a key."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routing import selectors, services
from routing.apis.common import PAGE_PARAMETERS, CanViewKeys, StrictSerializer, page_of, paginate
from routing.models import SLUG_RE, Policy, SdkKey


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
