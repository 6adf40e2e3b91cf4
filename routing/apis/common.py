"""What every management API view shares: strict input serializers, permission classes, the body
size check, pagination (bounds, OpenAPI parameters and page schemas), and the output shapes several
views return. metrics' API builds on the same pieces."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.errors import InvalidInput, TooLarge
from routing.authentication import token_scope_check


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
            if not (user and user.is_authenticated and user.has_perm(perm)):
                return False
            token_scope_check(request, view)  # a policy-scoped token stays within its policies
            return True

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


def text_param(request: Request, name: str, *, max_length: int = 200) -> str | None:
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
