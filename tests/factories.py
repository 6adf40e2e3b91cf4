"""Builders for test data, through the services wherever a service exists."""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from routing import services
from routing.models import CatalogModel, ModelPrice, Policy, PolicyVersion, SdkKey

CATALOG = {
    # model id: (provider, tier, context window, input $/1M, output $/1M, vision, tools)
    "gpt-4o-mini": ("openai", 1, 128_000, "0.15", "0.60", True, True),
    "gpt-4o": ("openai", 2, 128_000, "2.50", "10.00", True, True),
    "o1": ("openai", 3, 200_000, "15.00", "60.00", True, True),
    "claude-3-5-haiku-20241022": ("anthropic", 1, 200_000, "0.80", "4.00", False, True),
    "claude-3-5-sonnet-20241022": ("anthropic", 2, 200_000, "3.00", "15.00", True, True),
    "gemini-1.5-flash": ("gemini", 1, 1_000_000, "0.075", "0.30", True, True),
    "small-8k": ("local", 1, 8_192, "0.01", "0.02", False, False),
}

BASE_DOCUMENT: dict[str, Any] = {
    "schema_version": 1,
    "default_route": "general",
    "task_types": {"extraction": "extraction", "chat": "general"},
    "rules": [
        {
            "id": "long-context",
            "when": {"field": "context_tokens", "op": "gt", "value": 150000},
            "route": "long_context",
        },
    ],
    "routes": {
        "general": {
            "tiers": [{"model": "gpt-4o-mini", "fallbacks": ["claude-3-5-haiku-20241022"]}, {"model": "gpt-4o"}],
            "escalate": {"min_confidence": 0.6, "on_validation_failure": True, "max_depth": 1},
        },
        "extraction": {
            "description": "Structured field extraction",
            "tiers": [
                {"model": "gpt-4o-mini", "fallbacks": ["claude-3-5-haiku-20241022"]},
                {"model": "gpt-4o", "fallbacks": ["claude-3-5-sonnet-20241022"]},
                {"model": "o1"},
            ],
            "escalate": {"min_confidence": 0.7, "on_validation_failure": True, "max_depth": 2},
            "latency_budget_ms": 10000,
            "budget": {"daily_usd": 50, "monthly_usd": 1200, "downgrade_at": 0.8},
            "expectations": {
                "escalation_bands": [{"min": 0.2, "max": 0.3}, {"min": 0.05, "max": 0.1}],
                "min_pass_rate": 0.95,
                "max_cost_per_request_usd": 0.01,
                "latency_p95_ms": 4000,
            },
        },
        "long_context": {"tiers": [{"model": "gemini-1.5-flash"}]},
    },
}


def document(**changes: Any) -> dict[str, Any]:
    """A valid policy document; keyword arguments replace top-level fields."""
    doc = copy.deepcopy(BASE_DOCUMENT)
    doc.update(changes)
    return doc


def catalog(models: dict[str, tuple] | None = None, *, effective_from: datetime | None = None) -> None:
    """Put these models (the test catalog by default) in the catalog, each with a price from
    `effective_from` (400 days ago by default): facts of models already there are updated, a price
    already there is kept. Four queries whatever the number of models (many tests start with it)."""
    start = effective_from or timezone.now() - timezone.timedelta(days=400)
    wanted = {
        model_id: (
            {
                "provider": provider,
                "tier": tier,
                "context_window": ctx,
                "supports_vision": vision,
                "supports_tools": tools,
            },
            (Decimal(inp), Decimal(out)),
        )
        for model_id, (provider, tier, ctx, inp, out, vision, tools) in (models or CATALOG).items()
    }
    existing = {m.model_id: m for m in CatalogModel.objects.filter(model_id__in=wanted)}
    changed = []
    for model_id, (facts, _) in wanted.items():
        model = existing.get(model_id)
        if model is not None and any(getattr(model, k) != v for k, v in facts.items()):
            for k, v in facts.items():
                setattr(model, k, v)
            changed.append(model)
    if changed:
        CatalogModel.objects.bulk_update(changed, list(next(iter(wanted.values()))[0]))
    created = CatalogModel.objects.bulk_create(
        [
            CatalogModel(model_id=model_id, **facts)
            for model_id, (facts, _) in wanted.items()
            if model_id not in existing
        ]
    )
    by_id = {**existing, **{m.model_id: m for m in created}}
    priced = set(
        ModelPrice.objects.filter(model__in=by_id.values(), effective_from=start).values_list("model_id", flat=True)
    )
    ModelPrice.objects.bulk_create(
        [
            ModelPrice(
                model=by_id[model_id], effective_from=start, input_per_mtok=inp, output_per_mtok=out, source="tests"
            )
            for model_id, (_, (inp, out)) in wanted.items()
            if by_id[model_id].pk not in priced
        ]
    )


def policy(
    slug: str = "checkout", *, doc: dict[str, Any] | None = None, publish: bool = True, user: Any = None
) -> Policy:
    """A policy with a draft of `doc` (the base document by default), published unless told not to."""
    if not CatalogModel.objects.exists():
        catalog()
    p = services.policy_create(slug=slug, name=slug.title(), user=user, document=doc or document())
    if publish:
        services.policy_publish(policy=p, user=user, comment="first version")
    p.refresh_from_db()
    return p


def publish(p: Policy, doc: dict[str, Any], *, comment: str = "change", user: Any = None) -> PolicyVersion:
    services.draft_save(policy=p, document=doc, user=user, rebase=True)
    return services.policy_publish(policy=p, user=user, comment=comment)


def api_token(user: Any, *, role: str | None = None, policies: Any = (), **options: Any) -> str:
    """A management API token key for `user` (the Authorization: Token value), made by the system:
    of `role` (default: the user's own), scoped to `policies` when given."""
    return services.api_token_create(user=None, owner=user, role=role, policies=policies, **options)[1]


def sdk_key(*policies: Policy, name: str = "app") -> tuple[SdkKey, str]:
    return services.sdk_key_create(name=name, policies=policies, user=None)
