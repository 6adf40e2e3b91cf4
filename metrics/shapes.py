"""The building blocks of the metrics API's OpenAPI shapes: short field aliases, named nested
serializers (so the schema documents every field), and the dashboards' filter parameters."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

FILTER_PARAMETERS = [
    OpenApiParameter("policy", str, description="Policy slug (default: the first policy by slug)."),
    OpenApiParameter("route", str, description="Only this route."),
    OpenApiParameter("task_type", str, description="Only this task type."),
    OpenApiParameter("model", str, description="Only this model."),
    OpenApiParameter(
        "start", OpenApiTypes.DATE, description="First day, YYYY-MM-DD (UTC; default: 29 days before end)."
    ),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, inclusive, YYYY-MM-DD (UTC; default: today)."),
]

F = serializers.FloatField
I = serializers.IntegerField  # noqa: E741 - a short alias keeps the shapes below readable
S = serializers.CharField


def nullable(field: serializers.Field) -> serializers.Field:
    # Rebuilt from its arguments: a serializer deep-copies its declared fields that way, which
    # would drop an attribute set on the instance (and the schema would say "not nullable").
    return type(field)(*field._args, **{**field._kwargs, "allow_null": True})  # type: ignore[attr-defined]  # set by Field.__new__, not in the stubs


def shape(name: str, **fields: serializers.Field) -> serializers.Serializer:
    """A named nested serializer, so the OpenAPI schema documents every field."""
    return type(name, (serializers.Serializer,), fields)()


def nullable_shape(name: str, help_text: str = "", **fields: serializers.Field) -> serializers.Serializer:
    """A named nested serializer whose value may be null."""
    return type(name, (serializers.Serializer,), fields)(allow_null=True, help_text=help_text)


def list_of(name: str, **fields: serializers.Field) -> serializers.ListField:
    """A list of a named nested serializer."""
    return serializers.ListField(child=type(name, (serializers.Serializer,), fields)())


class FiltersSerializer(serializers.Serializer):
    policy = nullable(S())
    route = nullable(S())
    task_type = nullable(S())
    model = nullable(S())
    start = serializers.DateField()
    end = serializers.DateField()
