"""Every read the routing views, APIs and tasks need, with related rows fetched up front."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from controlplane import compute
from controlplane.errors import NotFound
from controlplane.memory import ProcessCache
from routing.models import ApiToken, AuditEntry, CatalogModel, ModelPrice, Policy, PolicyVersion, SdkKey


def policy_list() -> QuerySet[Policy]:
    return Policy.objects.select_related("live_version", "live_version__author", "owner").order_by("slug")


def policy_list_with_draft_revision() -> QuerySet[Policy]:
    """Return `policy_list()` with each policy's draft revision as `draft_revision` (None without a draft)."""
    draft = PolicyVersion.objects.filter(policy=OuterRef("pk"), status=PolicyVersion.Status.DRAFT)
    return policy_list().annotate(draft_revision=Subquery(draft.values("revision")[:1]))


def policy_get(slug: str) -> Policy:
    # No slug holds a NUL byte, and PostgreSQL refuses one in a query parameter.
    policy = (
        None if "\x00" in slug else (Policy.objects.select_related("live_version", "owner").filter(slug=slug).first())
    )
    if policy is None:
        raise NotFound(f"No policy '{slug}'.", {"policy": ["not found"]})
    return policy


def policy_draft(policy: Policy) -> PolicyVersion | None:
    return (
        PolicyVersion.objects.select_related("author").filter(policy=policy, status=PolicyVersion.Status.DRAFT).first()
    )


def policy_versions(policy: Policy) -> QuerySet[PolicyVersion]:
    return (
        PolicyVersion.objects.select_related("author")
        .filter(policy=policy, status=PolicyVersion.Status.PUBLISHED)
        .order_by("-number")
    )


def policy_version_get(policy: Policy, ref: str | int) -> PolicyVersion:
    """A version by number, or 'live' / 'draft'."""
    qs = PolicyVersion.objects.select_related("author").filter(policy=policy)
    version: PolicyVersion | None
    if ref == "draft":
        version = qs.filter(status=PolicyVersion.Status.DRAFT).first()
    elif ref == "live":
        version = qs.filter(pk=policy.live_version_id).first() if policy.live_version_id else None
    elif isinstance(ref, int) or (ref.isascii() and ref.isdigit()):  # int() also takes "+1", "1_0"
        # Version numbers fit in 10 digits; int() refuses strings over 4300.
        version = qs.filter(number=int(ref)).first() if len(str(ref)) <= 10 else None
    else:
        raise NotFound(
            f"'{ref}' is not a version: use a number, 'live' or 'draft'.", {"version": ["not a version reference"]}
        )
    if version is None:
        raise NotFound(f"Policy '{policy.slug}' has no version '{ref}'.", {"version": ["not found"]})
    return version


def policy_last_change(policy_ids: list[int]) -> dict[int, AuditEntry]:
    """The newest audit entry of each policy, in one query (on PostgreSQL and SQLite alike)."""
    newest = AuditEntry.objects.filter(policy_id=OuterRef("policy_id")).order_by("-created_at", "-id").values("pk")[:1]
    entries = AuditEntry.objects.filter(policy_id__in=policy_ids, pk=Subquery(newest))
    return {entry.policy_id: entry for entry in entries if entry.policy_id is not None}


def catalog_list(*, provider: str | None = None, search: str | None = None) -> QuerySet[CatalogModel]:
    qs = CatalogModel.objects.prefetch_related(
        Prefetch("prices", queryset=ModelPrice.objects.order_by("-effective_from"))
    )
    if provider:
        qs = qs.filter(provider=provider)
    if search:
        qs = qs.filter(model_id__icontains=search)
    return qs.order_by("provider", "model_id")


def catalog_model_get(model_id: str) -> CatalogModel:
    model = None if "\x00" in model_id else catalog_list().filter(model_id=model_id).first()
    if model is None:
        raise NotFound(f"No model '{model_id}' in the catalog.", {"model_id": ["not found"]})
    return model


def sdk_key_list() -> QuerySet[SdkKey]:
    return SdkKey.objects.select_related("created_by").prefetch_related("policies").order_by("-created_at")


def audit_list(*, policy: Policy | None = None, action: str | None = None) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.select_related("actor", "policy")
    if policy is not None:
        qs = qs.filter(policy=policy)
    if action:
        qs = qs.filter(action=action)
    return qs.order_by("-created_at", "-id")


def live_document(policy: Policy) -> dict[str, Any] | None:
    if policy.live_version_id is None:
        return None
    return PolicyVersion.objects.values_list("document", flat=True).get(pk=policy.live_version_id)


def model_price_at(model_id: str, when: Any) -> ModelPrice | None:
    """The price period of `model_id` in force at `when` (None before its first period)."""
    return (
        ModelPrice.objects.filter(model__model_id=model_id, effective_from__lte=when)
        .order_by("-effective_from")
        .first()
    )


# The compiled versions previews ran on, per process (routing.selectors.policy_preview).
_preview_compiled: ProcessCache[tuple[int, int, str], Any] = ProcessCache("routing.preview-compiled", 32)


def policy_preview(
    policy: Policy,
    ref: str | int,
    *,
    request: dict[str, Any],
    state: dict[str, Any] | None = None,
    outcomes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the engine on one request against a version (a draft too) and explain the result.

    `outcomes` plays attempts forward: each `{"outcome", "confidence", "elapsed_ms"}` is fed to
    `next_step`, and the steps taken are returned in order, as the client SDK would take them.
    """
    from signalbox_client import engine

    version = policy_version_get(policy, ref)
    snapshot = (
        version.models_snapshot if not version.is_draft else models_snapshot(engine.referenced_models(version.document))
    )
    # Compiling validates the whole document again (tens of ms at the document limits); a version
    # never changes, a draft's every save bumps its revision, and the catalog facts are in the key.
    key = (version.pk, version.revision, json.dumps(snapshot, sort_keys=True, default=str))
    compiled = _preview_compiled.get(key)
    if compiled is None:
        with compute.interruptible():
            compiled = engine.compile_policy(version.document, snapshot)
        _preview_compiled.set(key, compiled)
    with compute.interruptible():
        return _preview_play(version.label, compiled, request, state, outcomes)


def _preview_play(
    label: str,
    compiled: Any,
    request: dict[str, Any],
    state: dict[str, Any] | None,
    outcomes: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The decision and the attempts `outcomes` play forward (pure: no query, no cache)."""
    from signalbox_client import engine

    decision = engine.decide(compiled, engine.Request.from_dict(request), engine.State.from_dict(state))
    steps: list[dict[str, Any]] = [
        {"attempt": 1, "kind": "first", **decision.step.to_dict(), "reason": decision.reason}
    ]
    current = decision.step
    for attempt, played in enumerate(outcomes or [], start=1):
        nxt = engine.next_step(
            compiled,
            decision,
            attempt=attempt,
            outcome=played["outcome"],
            confidence=played.get("confidence"),
            elapsed_ms=played.get("elapsed_ms", 0.0),
            current=current,
        )
        steps[-1]["outcome"] = played["outcome"]
        if nxt is None:
            break
        current = nxt.step
        steps.append({"attempt": attempt + 1, "kind": nxt.kind, **nxt.step.to_dict(), "reason": nxt.reason})
    return {"version": label, "decision": decision.to_dict(), "steps": steps}


def api_token_list(user: Any) -> QuerySet[ApiToken]:
    """The API tokens `user` may see: their own; a superuser's, everyone's."""
    qs = ApiToken.objects.select_related("user").prefetch_related("policies").order_by("-created_at", "-id")
    if getattr(user, "is_superuser", False):
        return qs
    return qs.filter(user_id=user.pk) if getattr(user, "pk", None) else qs.none()


def models_snapshot(model_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The catalog facts the engine needs for these models, with the price in force now."""
    now = timezone.now()
    snapshot: dict[str, dict[str, Any]] = {}
    rows = CatalogModel.objects.filter(model_id__in=set(model_ids)).prefetch_related("prices")
    for row in rows:
        price = next((p for p in row.prices.all() if p.effective_from <= now), None)
        snapshot[row.model_id] = {
            "provider": row.provider,
            "tier": row.tier,
            "context_window": row.context_window,
            "supports_vision": row.supports_vision,
            "supports_tools": row.supports_tools,
            "input_cost_per_mtok": float(price.input_per_mtok) if price else None,
            "output_cost_per_mtok": float(price.output_per_mtok) if price else None,
        }
    return snapshot


def token_policy_slugs(token: Any) -> list[str] | None:
    """The policies a token is scoped to, or None when it may reach every policy (or no token)."""
    if token is None or not getattr(token, "scope_count", 1):
        return None
    cached = getattr(token, "_scope_slugs", None)  # a request asks for every permission check: one query
    if cached is None:
        cached = token._scope_slugs = sorted(token.policies.values_list("slug", flat=True))
    return cached or None
