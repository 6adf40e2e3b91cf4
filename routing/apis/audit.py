"""The audit log API: every change, filtered by policy and action."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import InvalidInput
from routing import selectors
from routing.apis.common import PAGE_PARAMETERS, CanViewAudit, ChangeOutput, page_of, paginate
from routing.models import AuditEntry


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
