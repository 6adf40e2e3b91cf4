"""The model catalog API: the models with their price history (read-only)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routing import selectors
from routing.apis.common import PAGE_PARAMETERS, CanViewCatalog, page_of, paginate, text_param


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
    policy_scope = "none"  # how a policy-scoped token meets it (routing.authentication)

    @extend_schema(
        parameters=[OpenApiParameter("provider", str), OpenApiParameter("search", str), *PAGE_PARAMETERS],
        responses=page_of(CatalogModelOutput),
        operation_id="catalog_list",
    )
    def get(self, request: Request) -> Response:
        qs = selectors.catalog_list(provider=text_param(request, "provider"), search=text_param(request, "search"))
        return paginate(request, self, qs, CatalogModelOutput)


class CatalogModelDetailApi(APIView):
    permission_classes = [CanViewCatalog]
    policy_scope = "none"  # how a policy-scoped token meets it (routing.authentication)

    @extend_schema(responses=CatalogModelOutput, operation_id="catalog_retrieve")
    def get(self, request: Request, model_id: str) -> Response:
        return Response(CatalogModelOutput(selectors.catalog_model_get(model_id)).data)
