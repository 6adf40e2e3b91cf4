"""The demo's routing data: a small real catalog and two realistic policies, loaded through the
services exactly as a platform engineer would create them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from routing import services
from routing.models import Policy, SdkKey

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_PRICE_MAP = Path(__file__).resolve().parents[2] / "shared" / "data" / "model_prices_litellm.json"


def _expect(
    band: tuple[float, float], pass_rate: float, max_cost: float, p95: int, *, tiers: int = 2
) -> dict[str, Any]:
    """Route expectations; a 3-tier route also expects 5-10% of tier 2 to reach tier 3."""
    bands = [{"min": band[0], "max": band[1]}, {"min": 0.05, "max": 0.1}][: tiers - 1]
    return {
        "escalation_bands": bands,
        "min_pass_rate": pass_rate,
        "max_cost_per_request_usd": max_cost,
        "latency_p95_ms": p95,
    }


SUPPORT_ASSISTANT: dict[str, Any] = {
    "schema_version": 1,
    "default_route": "general",
    "task_types": {
        "faq": "faq",
        "troubleshooting": "troubleshooting",
        "billing": "billing",
        "refund": "billing",
        "smalltalk": "general",
    },
    "rules": [
        {
            "id": "long-context",
            "when": {"field": "context_tokens", "op": "gt", "value": 120000},
            "route": "long_context",
        },
        {
            "id": "screenshots",
            "when": {"field": "needs_vision", "op": "eq", "value": True},
            "route": "troubleshooting",
            "tier": 2,
        },
        {
            "id": "risky-enterprise",
            "when": {
                "and": [
                    {"field": "user_tier", "op": "eq", "value": "enterprise"},
                    {"field": "risk", "op": "in", "value": ["high", "critical"]},
                ]
            },
            "route": "billing",
        },
        {
            "id": "money-words",
            "when": {"field": "text", "op": "contains_any", "value": ["refund", "chargeback", "invoice"]},
            "route": "billing",
        },
    ],
    "routes": {
        "general": {
            "description": "Small talk and anything unclassified",
            "tiers": [{"model": "gpt-4o-mini", "fallbacks": ["mistral/mistral-small-latest"]}, {"model": "gpt-4o"}],
            "escalate": {"min_confidence": 0.55, "on_validation_failure": False, "max_depth": 1},
            "latency_budget_ms": 6000,
            "expectations": _expect((0.05, 0.15), 0.9, 0.002, 3000),
        },
        "faq": {
            "description": "Answers from the help centre",
            "tiers": [
                {"model": "gpt-4o-mini", "fallbacks": ["claude-haiku-4-5"], "expected_latency_ms": 900},
                {"model": "gpt-4o", "fallbacks": ["claude-sonnet-4-5"], "expected_latency_ms": 2500},
            ],
            "escalate": {"min_confidence": 0.7, "on_validation_failure": True, "max_depth": 1},
            "latency_budget_ms": 8000,
            "budget": {"daily_usd": 2, "monthly_usd": 45, "downgrade_at": 0.8},
            "expectations": _expect((0.2, 0.3), 0.95, 0.003, 3500),
        },
        "troubleshooting": {
            "description": "Multi-step diagnosis, sometimes with screenshots",
            "tiers": [
                {"model": "gpt-4.1-mini", "fallbacks": ["claude-haiku-4-5"]},
                {"model": "gpt-4.1", "fallbacks": ["claude-sonnet-4-5"]},
                {"model": "o1"},
            ],
            "score": {"source": "auto", "thresholds": [0.45, 0.8]},
            "escalate": {"min_confidence": 0.7, "on_validation_failure": True, "max_depth": 2},
            "latency_budget_ms": 20000,
            "budget": {"daily_usd": 8, "monthly_usd": 180, "downgrade_at": 0.85},
            "expectations": _expect((0.2, 0.3), 0.9, 0.02, 9000, tiers=3),
        },
        "billing": {
            "description": "Refunds, invoices, disputes: never downgraded",
            "critical": True,
            "tiers": [{"model": "claude-sonnet-4-5", "fallbacks": ["gpt-4.1"]}, {"model": "o1"}],
            "escalate": {"min_confidence": 0.8, "on_validation_failure": True, "max_depth": 1},
            "latency_budget_ms": 15000,
            "budget": {"daily_usd": 7, "monthly_usd": 160, "downgrade_at": 0.9},
            "expectations": _expect((0.1, 0.2), 0.97, 0.03, 8000),
        },
        "long_context": {
            "description": "Whole ticket histories",
            "tiers": [
                {"model": "gemini/gemini-2.5-flash", "fallbacks": ["gpt-4.1-mini"]},
                {"model": "gemini/gemini-2.5-pro"},
            ],
            "escalate": {"min_confidence": 0.6, "on_validation_failure": True, "max_depth": 1},
            "latency_budget_ms": 30000,
            "expectations": _expect((0.1, 0.25), 0.9, 0.05, 20000),
        },
    },
    "budget": {"daily_usd": 20, "monthly_usd": 420, "downgrade_at": 0.9},
    "dimensions": ["team", "tenant"],
    "dimension_budgets": [
        {"dimension": "team", "value": "search", "monthly_usd": 150},
        {"dimension": "tenant", "value": "acme", "daily_usd": 4, "downgrade_at": 0.8},
    ],
}

DOCUMENT_PIPELINE: dict[str, Any] = {
    "schema_version": 1,
    "default_route": "classification",
    "task_types": {
        "extraction": "extraction",
        "summarization": "summarization",
        "classification": "classification",
        "translation": "translation",
    },
    "rules": [
        {
            "id": "batch-summaries",
            "when": {
                "and": [
                    {"field": "task_type", "op": "eq", "value": "summarization"},
                    {"field": "latency_class", "op": "eq", "value": "batch"},
                ]
            },
            "route": "summarization",
        },
    ],
    "routes": {
        "extraction": {
            "description": "Invoice and contract field extraction (JSON schema output)",
            "tiers": [
                {"model": "gpt-4.1-mini", "fallbacks": ["claude-haiku-4-5"]},
                {"model": "gpt-4.1", "fallbacks": ["claude-sonnet-4-5"]},
                {"model": "o1"},
            ],
            "escalate": {"min_confidence": 0.75, "on_validation_failure": True, "max_depth": 2},
            "latency_budget_ms": 30000,
            "budget": {"daily_usd": 80, "monthly_usd": 2000, "downgrade_at": 0.8},
            "expectations": _expect((0.2, 0.3), 0.95, 0.01, 12000, tiers=3),
        },
        "summarization": {
            "description": "Document summaries",
            "tiers": [
                {"model": "gemini/gemini-2.5-flash", "fallbacks": ["gpt-4o-mini"]},
                {"model": "gemini/gemini-2.5-pro"},
            ],
            "escalate": {"min_confidence": 0.6, "on_validation_failure": False, "max_depth": 1},
            "latency_budget_ms": 20000,
            "budget": {"daily_usd": 30, "monthly_usd": 800, "downgrade_at": 0.8},
            "expectations": _expect((0.05, 0.15), 0.9, 0.004, 8000),
        },
        "classification": {
            "description": "Routing documents to queues",
            "tiers": [
                {"model": "mistral/mistral-small-latest", "fallbacks": ["gpt-4o-mini"]},
                {"model": "gpt-4o-mini"},
            ],
            "escalate": {"min_confidence": 0.8, "on_validation_failure": True, "max_depth": 1},
            "latency_budget_ms": 4000,
            "split": {
                "key": "request_id",
                "salt": "deepseek-canary",
                "arms": [
                    {"name": "control", "weight": 90},
                    {"name": "deepseek", "weight": 10, "model": "deepseek/deepseek-chat"},
                ],
            },
            "expectations": _expect((0.1, 0.2), 0.97, 0.0005, 1500),
        },
        "translation": {
            "description": "Customer-facing translations",
            "tiers": [
                {"model": "deepseek/deepseek-chat", "fallbacks": ["gpt-4o-mini"]},
                {"model": "claude-sonnet-4-5"},
            ],
            "escalate": {"min_confidence": 0.7, "on_validation_failure": True, "max_depth": 1},
            "latency_budget_ms": 10000,
            "expectations": _expect((0.15, 0.3), 0.95, 0.004, 5000),
        },
    },
    "budget": {"daily_usd": 200, "monthly_usd": 5000, "downgrade_at": 0.9},
    "dimensions": ["team", "tenant"],
}

DEMO_POLICIES = {
    "support-assistant": (
        "Support assistant",
        "Customer support chat: FAQ, troubleshooting, billing.",
        SUPPORT_ASSISTANT,
    ),
    "document-pipeline": ("Document pipeline", "Back-office extraction, summaries and translation.", DOCUMENT_PIPELINE),
}


def demo_catalog_path() -> Path:
    """The full shared price map when it is beside the project, else the bundled subset."""
    return SHARED_PRICE_MAP if SHARED_PRICE_MAP.exists() else FIXTURES / "demo_catalog.json"


def demo_routing_load() -> tuple[services.CatalogImportReport, list[Policy]]:
    """Import the catalog and create the demo policies (published) unless they exist."""
    path = demo_catalog_path()
    report = services.catalog_import(entries=json.loads(path.read_text()), source=path.name, user=None)
    policies = []
    for slug, (name, description, document) in DEMO_POLICIES.items():
        policy = Policy.objects.filter(slug=slug).first()
        if policy is None:
            policy = services.policy_create(slug=slug, name=name, description=description, user=None, document=document)
            services.policy_publish(policy=policy, user=None, comment="Initial routing policy (demo)")
        policies.append(policy)
    return report, policies


def demo_sdk_key(policies: list[Policy]) -> tuple[SdkKey, str]:
    """A fresh demo key for these policies (the secret exists only in this return value)."""
    for old in SdkKey.objects.filter(name="demo", revoked_at__isnull=True):
        services.sdk_key_revoke(key=old, user=None, comment="replaced by a new demo key")
    return services.sdk_key_create(name="demo", policies=policies, user=None)
