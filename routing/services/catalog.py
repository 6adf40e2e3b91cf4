"""The model catalog: importing LiteLLM's price-map format (prices kept as history) and the tier people
set by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.errors import InvalidInput
from routing.diff import document_diff
from routing.models import AuditEntry, CatalogModel, ModelPrice
from routing.roles import (
    PERM_EDIT_CATALOG,
)
from routing.services.common import (
    Actor,
    _audit,
    _require,
)

# --- catalog -------------------------------------------------------------------------------------


# Tier a newly imported model gets from its input price (USD per 1M tokens); admins may change it.
TIER_BY_INPUT_PRICE = ((Decimal("0.5"), 1), (Decimal("5"), 2))
_MTOK = Decimal(1_000_000)
_PRICE_QUANTUM = Decimal("0.000001")


@dataclass
class CatalogImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    prices_added: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _per_mtok(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        per_token = Decimal(str(value))
    except InvalidOperation:
        return None
    if not per_token.is_finite() or per_token < 0:
        return None
    price = (per_token * _MTOK).quantize(_PRICE_QUANTUM)
    return price if price < Decimal("100000000") else None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return int(value) if 0 < value < 2**31 else None


def _facts(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "provider": str(entry.get("litellm_provider") or "")[:100],
        "mode": str(entry.get("mode"))[:40],
        "context_window": _positive_int(entry.get("max_input_tokens")) or _positive_int(entry.get("max_tokens")),
        "max_output_tokens": _positive_int(entry.get("max_output_tokens")),
        "supports_vision": entry.get("supports_vision") is True,
        "supports_tools": entry.get("supports_function_calling") is True,
        "supports_response_schema": entry.get("supports_response_schema") is True,
        "supports_reasoning": entry.get("supports_reasoning") is True,
    }


@transaction.atomic
def catalog_import(
    *, entries: Any, source: str, user: Actor, effective_from: datetime | None = None, dry_run: bool = False
) -> CatalogImportReport:
    """Import chat models with prices from a LiteLLM-format price map.

    New models are created with a tier from their input price; known models get their facts
    updated; a price period is added only where the price differs from the one in force. Entries
    that are not chat models, lack either price, or are malformed are skipped and counted by reason.
    """
    _require(user, PERM_EDIT_CATALOG, "import the catalog")
    if not isinstance(entries, Mapping):
        raise InvalidInput("A price map is a JSON object keyed by model id.", {"(root)": ["not an object"]})
    when = effective_from or timezone.now()
    report = CatalogImportReport()
    wanted: dict[str, tuple[dict[str, Any], Decimal, Decimal]] = {}
    for model_id, entry in entries.items():
        if model_id == "sample_spec":
            report.skip("documentation entry")
        elif not isinstance(entry, Mapping):
            report.skip("not an object")
        elif not isinstance(model_id, str) or not model_id.strip() or len(model_id) > 255:
            report.skip("bad model id")
        elif entry.get("mode") != "chat":
            report.skip(f"mode {entry.get('mode') or 'missing'}")
        else:
            inp = _per_mtok(entry.get("input_cost_per_token"))
            out = _per_mtok(entry.get("output_cost_per_token"))
            facts = _facts(entry)
            if entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
                report.skip("no price")
            elif inp is None or out is None:
                report.skip("malformed price")
            elif not facts["provider"]:
                report.skip("no provider")
            else:
                wanted[model_id] = (facts, inp, out)

    existing = {m.model_id: m for m in CatalogModel.objects.filter(model_id__in=list(wanted))}
    in_force: dict[int, tuple[Decimal, Decimal]] = {}
    for price in ModelPrice.objects.filter(model__in=list(existing.values()), effective_from__lte=when).order_by(
        "model_id", "-effective_from"
    ):
        in_force.setdefault(price.model_id, (price.input_per_mtok, price.output_per_mtok))

    to_create: list[CatalogModel] = []
    to_update: list[CatalogModel] = []
    new_prices: list[tuple[str, Decimal, Decimal]] = []
    for model_id, (facts, inp, out) in wanted.items():
        model = existing.get(model_id)
        if model is None:
            tier = next((t for limit, t in TIER_BY_INPUT_PRICE if inp <= limit), 3)
            to_create.append(CatalogModel(model_id=model_id, tier=tier, **facts))
            new_prices.append((model_id, inp, out))
            report.created += 1
            continue
        changed = [name for name, value in facts.items() if getattr(model, name) != value]
        for name in changed:
            setattr(model, name, facts[name])
        if changed:
            to_update.append(model)
        price_changed = in_force.get(model.pk) != (inp, out)
        if price_changed:
            new_prices.append((model_id, inp, out))
        if changed or price_changed:
            report.updated += 1
        else:
            report.unchanged += 1
    report.prices_added = len(new_prices)
    if dry_run:
        transaction.set_rollback(True)
        return report
    CatalogModel.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        CatalogModel.objects.bulk_update(to_update, list(_facts({}).keys()), batch_size=1000)
    ids = dict(CatalogModel.objects.filter(model_id__in=[m for m, _, _ in new_prices]).values_list("model_id", "pk"))
    ModelPrice.objects.bulk_create(
        [
            ModelPrice(model_id=ids[m], input_per_mtok=i, output_per_mtok=o, effective_from=when, source=source[:200])
            for m, i, o in new_prices
        ],
        batch_size=1000,
        ignore_conflicts=False,
    )
    _audit(
        user=user,
        action=AuditEntry.Action.CATALOG_IMPORT,
        target=source[:255],
        comment=(
            f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.prices_added} price periods added, {report.skipped_total} skipped"
        ),
    )
    return report


@transaction.atomic
def catalog_model_update(*, model: CatalogModel, tier: int, user: Actor) -> CatalogModel:
    """Change a catalog model's tier (the one catalog fact people set by hand)."""
    _require(user, PERM_EDIT_CATALOG, "edit the catalog")
    if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= 5:
        raise InvalidInput("The tier must be a whole number from 1 to 5.", {"tier": ["must be 1-5"]})
    stored = CatalogModel.objects.select_for_update().get(pk=model.pk)
    if stored.tier == tier:
        return stored
    diff = document_diff({"tier": stored.tier}, {"tier": tier})
    stored.tier = tier
    stored.save(update_fields=["tier", "updated_at"])
    _audit(user=user, action=AuditEntry.Action.CATALOG_UPDATE, target=stored.model_id, diff=diff)
    return stored
