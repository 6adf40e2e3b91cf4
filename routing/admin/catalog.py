"""The model catalog admin: models with their current price and price history; only the tier is
editable (prices come from catalog imports)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString

from routing import selectors, services
from routing.admin.base import badge
from routing.models import CatalogModel, ModelPrice


class ModelPriceInline(admin.TabularInline):
    model = ModelPrice
    fields = readonly_fields = ("effective_from", "input_per_mtok", "output_per_mtok", "source", "created_at")
    ordering = ["-effective_from"]
    extra = 0
    can_delete = False
    verbose_name = "price period"
    verbose_name_plural = "Price history (USD per 1M tokens, newest first)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _current_price(model: CatalogModel) -> ModelPrice | None:
    now = timezone.now()
    return next((p for p in model.prices.all() if p.effective_from <= now), None)


def _money(value: Any) -> str:
    if value is None:
        return "—"
    whole, _, fraction = f"{value:.6f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


_CATALOG_FIELDS = (
    "model_id",
    "provider",
    "tier",
    "mode",
    "context_window",
    "max_output_tokens",
    "supports_vision",
    "supports_tools",
    "supports_response_schema",
    "supports_reasoning",
    "created_at",
    "updated_at",
)


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = [
        "model_id",
        "provider",
        "tier_column",
        "context_column",
        "vision_column",
        "tools_column",
        "price_in",
        "price_out",
    ]
    list_filter = ["provider", "tier", "supports_vision", "supports_tools"]
    search_fields = ["model_id", "provider"]
    list_per_page = 100
    fields = _CATALOG_FIELDS
    inlines = [ModelPriceInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f for f in _CATALOG_FIELDS if f != "tier"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CatalogModel]:
        return selectors.catalog_list()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the catalog comes from `manage.py catalog_import`

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # published versions and decision logs refer to models by id

    def save_model(self, request: HttpRequest, obj: CatalogModel, form: Any, change: bool) -> None:
        services.catalog_model_update(model=obj, tier=obj.tier, user=request.user)

    @admin.display(description="Tier", ordering="tier")
    def tier_column(self, obj: CatalogModel) -> SafeString:
        return badge(f"tier {obj.tier}", f"tier{min(max(obj.tier, 1), 3)}")

    @admin.display(description="Vision", boolean=True, ordering="supports_vision")
    def vision_column(self, obj: CatalogModel) -> bool:
        return obj.supports_vision

    @admin.display(description="Tools", boolean=True, ordering="supports_tools")
    def tools_column(self, obj: CatalogModel) -> bool:
        return obj.supports_tools

    @admin.display(description="Context", ordering="context_window")
    def context_column(self, obj: CatalogModel) -> str:
        return f"{obj.context_window:,}" if obj.context_window else "—"

    @admin.display(description="In / 1M")
    def price_in(self, obj: CatalogModel) -> str:
        price = _current_price(obj)
        return _money(price.input_per_mtok if price else None)

    @admin.display(description="Out / 1M")
    def price_out(self, obj: CatalogModel) -> str:
        price = _current_price(obj)
        return _money(price.output_per_mtok if price else None)
