"""Every write to routing's models. Services check the actor's permission themselves, so no path
(admin, API, command) can skip it, and write an audit entry for each change."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin, User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.errors import Conflict, InvalidInput, NotAllowed, NotFound, TooLarge
from routing import live, selectors
from routing.diff import document_diff
from routing.models import ApiToken, AuditEntry, CatalogModel, ModelPrice, Policy, PolicyVersion, SdkKey
from routing.roles import (
    PERM_CREATE_POLICY,
    PERM_EDIT_CATALOG,
    PERM_EDIT_DRAFT,
    PERM_EDIT_POLICY,
    PERM_MANAGE_KEYS,
    PERM_PUBLISH,
)
from signalbox_client import engine

Actor = AbstractBaseUser | AnonymousUser | None

SDK_KEY_PREFIX = "sbx_"
API_TOKEN_PREFIX = "sbt_"  # noqa: S105 - the public start of every token, not a secret


# --- helpers -------------------------------------------------------------------------------------


def _require(user: Actor, perm: str, what: str) -> None:
    """`user=None` is the system itself (management commands, the demo loader)."""
    if user is None:
        return
    if (
        not getattr(user, "is_active", False)
        or not isinstance(user, PermissionsMixin | AnonymousUser)
        or not user.has_perm(perm)
    ):
        raise NotAllowed(f"You do not have permission to {what}.")


def _saved_user(user: Actor) -> User | None:
    """The stored user behind an actor; None for the system and for anonymous visitors."""
    if not getattr(user, "pk", None):
        return None
    return cast(User, user)  # a saved user is an AUTH_USER_MODEL row


def _actor_label(user: Actor) -> str:
    if user is None:
        return "system"
    return getattr(user, "get_username", lambda: "anonymous")()


def _audit(
    *,
    user: Actor,
    action: str,
    target: str,
    policy: Policy | None = None,
    comment: str = "",
    diff: list[dict[str, Any]] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=_saved_user(user),
        actor_label=_actor_label(user),
        action=action,
        policy=policy,
        target=target,
        comment=comment,
        diff=diff or [],
    )


def _require_comment(comment: str | None, what: str) -> str:
    comment = (comment or "").strip()
    if not comment:
        raise InvalidInput(f"A comment is required to {what}.", {"comment": ["This field is required."]})
    return _comment_checked(comment)


def _comment_checked(comment: str) -> str:
    if len(comment) > 2000:
        raise InvalidInput("The comment is too long.", {"comment": ["At most 2000 characters."]})
    if "\x00" in comment:
        raise InvalidInput("The comment holds a NUL character.", {"comment": ["the NUL character is not allowed"]})
    return comment


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


def _nul_path(value: Any, path: str = "") -> str | None:
    """The path of the first key or string holding U+0000, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return child
            found = _nul_path(item, child)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


def document_check(document: Any) -> dict[str, dict[str, Any]]:
    """Validate a policy document against the schema and the catalog.

    Return the models snapshot it needs; raise TooLarge over the size limit and InvalidInput with
    every error keyed by its path.
    """
    try:
        size = len(json.dumps(document, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidInput("The document is not valid JSON.", {"document": [str(exc)]}) from exc
    nul = _nul_path(document)
    if nul is not None:  # PostgreSQL's jsonb can't store U+0000
        raise InvalidInput(
            f"Invalid policy document: {nul or '(root)'}: the NUL character is not allowed",
            {nul or "(root)": ["the NUL character (\\u0000) is not allowed"]},
        )
    limit = settings.POLICY_DOCUMENT_MAX_BYTES
    if size > limit:
        raise TooLarge(
            f"The document is {size:,} bytes; the limit is {limit:,}.",
            {"document": [f"larger than {limit:,} bytes"]},
        )
    errors = engine.validate_document(document)
    snapshot: dict[str, dict[str, Any]] = {}
    if not errors:
        snapshot = models_snapshot(engine.referenced_models(document))
        errors = engine.validate_document(document, snapshot)
    if errors:
        by_path: dict[str, list[str]] = {}
        for error in errors:
            by_path.setdefault(error.path or "(root)", []).append(error.message)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(f"Invalid policy document: {first}{more}", by_path)
    return snapshot


# --- policies and versions -----------------------------------------------------------------------


@transaction.atomic
def policy_create(
    *,
    slug: str,
    name: str,
    description: str = "",
    user: Actor,
    owner: Actor = None,
    document: dict[str, Any] | None = None,
) -> Policy:
    """Create a policy, and its first draft when a document is given."""
    _require(user, PERM_CREATE_POLICY, "create policies")
    policy = Policy(
        slug=slug,
        name=name,
        description=description,
        owner=_saved_user(owner) or _saved_user(user),
    )
    try:
        policy.full_clean(exclude=["live_version", "owner"], validate_unique=False)
    except DjangoValidationError as exc:
        raise InvalidInput("Invalid policy.", exc.message_dict) from exc
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError as exc:
        raise Conflict(f"A policy with the slug '{slug}' exists.", {"slug": ["already exists"]}) from exc
    _audit(user=user, action=AuditEntry.Action.POLICY_CREATE, target=slug, policy=policy, comment=description[:2000])
    if document is not None:
        draft_save(policy=policy, document=document, user=user)
    return policy


@transaction.atomic
def policy_update(*, policy: Policy, user: Actor, name: str | None = None, description: str | None = None) -> Policy:
    """Change a policy's name or description (the slug never changes: clients fetch by it)."""
    _require(user, PERM_EDIT_POLICY, "edit policies")
    before = {"name": policy.name, "description": policy.description}
    if name is not None:
        if not name.strip():
            raise InvalidInput("The name can't be empty.", {"name": ["This field may not be blank."]})
        policy.name = name.strip()[:200]
    if description is not None:
        policy.description = description
    policy.save(update_fields=["name", "description", "updated_at"])
    after = {"name": policy.name, "description": policy.description}
    _audit(
        user=user,
        action=AuditEntry.Action.POLICY_UPDATE,
        target=policy.slug,
        policy=policy,
        diff=document_diff(before, after),
    )
    return policy


def _locked_policy(policy: Policy) -> Policy:
    return Policy.objects.select_for_update().get(pk=policy.pk)


def _live_number(policy: Policy) -> int | None:
    if policy.live_version_id is None:
        return None
    return PolicyVersion.objects.values_list("number", flat=True).get(pk=policy.live_version_id)


@transaction.atomic
def draft_save(
    *, policy: Policy, document: Any, user: Actor, expected_revision: int | None = None, rebase: bool = False
) -> PolicyVersion:
    """Validate and save the policy's single draft, creating it from the live version if needed.

    `expected_revision` guards against overwriting another editor's save (409 when it differs);
    `rebase=True` moves the draft's base to the current live version (after the editor has seen
    what changed).
    """
    _require(user, PERM_EDIT_DRAFT, "edit drafts")
    document_check(document)
    policy = _locked_policy(policy)
    live_number = _live_number(policy)
    draft = selectors.policy_draft(policy)
    if draft is None:
        if expected_revision not in (None, 0):
            raise Conflict(
                "The draft you edited was published or discarded meanwhile.", {"expected_revision": ["no draft exists"]}
            )
        draft = PolicyVersion(
            policy=policy,
            document=document,
            author=_saved_user(user),
            base_number=live_number,
            revision=1,
        )
        try:
            with transaction.atomic():
                draft.save()
        except IntegrityError as exc:  # another editor created the draft first
            raise Conflict("Another editor created a draft meanwhile; reload it.", {}) from exc
        diff = document_diff(selectors.live_document(policy) or {}, document)
    else:
        if expected_revision is not None and expected_revision != draft.revision:
            raise Conflict(
                f"The draft was saved by someone else meanwhile (revision {draft.revision}, "
                f"you edited revision {expected_revision}).",
                {"expected_revision": [f"current revision is {draft.revision}"]},
                extra={"current_revision": draft.revision},
            )
        diff = document_diff(draft.document, document)
        draft.document = document
        draft.revision += 1
        draft.author = _saved_user(user) or draft.author
        if rebase:
            draft.base_number = live_number
        draft.save()
    _audit(user=user, action=AuditEntry.Action.DRAFT_SAVE, target=f"{policy.slug}:draft", policy=policy, diff=diff)
    return draft


@transaction.atomic
def draft_discard(*, policy: Policy, user: Actor) -> None:
    """Delete the policy's draft."""
    _require(user, PERM_EDIT_DRAFT, "discard drafts")
    policy = _locked_policy(policy)
    draft = selectors.policy_draft(policy)
    if draft is None:
        raise NotFound("This policy has no draft.")
    draft.delete()
    _audit(user=user, action=AuditEntry.Action.DRAFT_DISCARD, target=f"{policy.slug}:draft", policy=policy)


def _publish_locked(
    *, policy: Policy, version: PolicyVersion, snapshot: dict[str, Any], user: Actor, comment: str
) -> PolicyVersion:
    policy.last_number += 1
    version.status = PolicyVersion.Status.PUBLISHED
    version.number = policy.last_number
    version.published_at = timezone.now()
    version.models_snapshot = snapshot
    version.comment = comment
    if author := _saved_user(user):
        version.author = author
    version.save()
    policy.live_version = version
    policy.save(update_fields=["last_number", "live_version", "updated_at"])
    transaction.on_commit(partial(live.invalidate, policy.slug))
    return version


@transaction.atomic
def policy_publish(*, policy: Policy, user: Actor, comment: str, expected_revision: int | None = None) -> PolicyVersion:
    """Publish the draft as the next version and make it live.

    Refused with 409 when the draft was based on a version that is no longer live (another
    publish or rollback happened since), with the changes made meanwhile.
    """
    _require(user, PERM_PUBLISH, "publish policies")
    comment = _require_comment(comment, "publish")
    policy = _locked_policy(policy)
    draft = selectors.policy_draft(policy)
    if draft is None and expected_revision is not None:  # published or discarded by someone else
        raise Conflict(
            "The draft you reviewed was published or discarded meanwhile.", {"expected_revision": ["no draft exists"]}
        )
    if draft is None:
        raise NotFound("There is no draft to publish.", {"draft": ["no draft exists"]})
    if expected_revision is not None and expected_revision != draft.revision:
        raise Conflict(
            f"The draft changed since you reviewed it (revision {draft.revision}, you reviewed {expected_revision}).",
            {"expected_revision": [f"current revision is {draft.revision}"]},
            extra={"current_revision": draft.revision},
        )
    live_number = _live_number(policy)
    if draft.base_number != live_number:
        base_doc = (
            PolicyVersion.objects.values_list("document", flat=True)
            .filter(policy=policy, number=draft.base_number)
            .first()
            if draft.base_number
            else {}
        )
        changed = document_diff(base_doc or {}, selectors.live_document(policy) or {})
        raise Conflict(
            f"The draft is based on v{draft.base_number or 0} but v{live_number} is live now; "
            "review what changed, then save the draft again on the new base.",
            {"base_number": [f"stale: v{draft.base_number or 0}, live is v{live_number}"]},
            extra={"base_number": draft.base_number, "live_number": live_number, "changes": changed},
        )
    snapshot = document_check(draft.document)
    diff = document_diff(selectors.live_document(policy) or {}, draft.document)
    version = _publish_locked(policy=policy, version=draft, snapshot=snapshot, user=user, comment=comment)
    _audit(
        user=user,
        action=AuditEntry.Action.PUBLISH,
        target=f"{policy.slug}:v{version.number}",
        policy=policy,
        comment=comment,
        diff=diff,
    )
    return version


@transaction.atomic
def policy_rollback(*, policy: Policy, to_number: int, user: Actor, comment: str) -> PolicyVersion:
    """Publish a new version whose document equals version `to_number`; history stays append-only."""
    _require(user, PERM_PUBLISH, "roll back policies")
    comment = _require_comment(comment, "roll back")
    policy = _locked_policy(policy)
    target = PolicyVersion.objects.filter(
        policy=policy, number=to_number, status=PolicyVersion.Status.PUBLISHED
    ).first()
    if target is None:
        raise NotFound(
            f"Version {to_number} of '{policy.slug}' does not exist.",
            {"to_version": [f"no published version {to_number}"]},
        )
    live_number = _live_number(policy)
    if live_number == to_number:
        raise Conflict(f"v{to_number} is already live.", {"to_version": ["already live"]})
    # The catalog may have changed since; the old document must still be valid against it.
    snapshot = document_check(target.document)
    diff = document_diff(selectors.live_document(policy) or {}, target.document)
    version = PolicyVersion(policy=policy, document=target.document, rollback_of=to_number, base_number=live_number)
    version = _publish_locked(
        policy=policy, version=version, snapshot=snapshot, user=user, comment=f"rollback to v{to_number}: {comment}"
    )
    _audit(
        user=user,
        action=AuditEntry.Action.ROLLBACK,
        target=f"{policy.slug}:v{version.number}",
        policy=policy,
        comment=f"rollback to v{to_number}: {comment}",
        diff=diff,
    )
    return version


# --- SDK keys ------------------------------------------------------------------------------------


def sdk_key_hash(secret: str) -> str:
    """SHA-256 of the whole key. Keys carry 190+ random bits, so a fast hash is the right one."""
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def sdk_key_create(*, name: str, policies: Iterable[Policy], user: Actor) -> tuple[SdkKey, str]:
    """Create a key scoped to `policies`; return it with its secret (shown once, never stored)."""
    _require(user, PERM_MANAGE_KEYS, "create SDK keys")
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A key needs a name.", {"name": ["This field is required."]})
    policies = list(policies)
    if not policies:
        raise InvalidInput("A key must be scoped to at least one policy.", {"policies": ["at least one"]})
    prefix = secrets.token_hex(4)
    secret = f"{SDK_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = SdkKey.objects.create(
        name=name[:200],
        prefix=prefix,
        hashed_secret=sdk_key_hash(secret),
        created_by=_saved_user(user),
    )
    key.policies.set(policies)
    _audit(
        user=user,
        action=AuditEntry.Action.KEY_CREATE,
        target=f"key {prefix}",
        comment=f"{name}; policies: {', '.join(p.slug for p in policies)}",
    )
    return key, secret


@transaction.atomic
def sdk_key_revoke(*, key: SdkKey, user: Actor, comment: str = "") -> SdkKey:
    """Revoke a key. Web processes stop accepting it within SDK_KEY_CACHE_SECONDS."""
    _require(user, PERM_MANAGE_KEYS, "revoke SDK keys")
    comment = _comment_checked((comment or "").strip())
    key = SdkKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is not None:
        raise Conflict("This key is already revoked.", {"key": ["already revoked"]})
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    transaction.on_commit(partial(live.forget_key, key.hashed_secret))
    _audit(user=user, action=AuditEntry.Action.KEY_REVOKE, target=f"key {key.prefix}", comment=comment)
    return key


def sdk_key_touch(*, key_id: int) -> None:
    """Record that a key was used (called at most once per key cache period per process)."""
    SdkKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


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


# --- management API tokens -----------------------------------------------------------------------


def api_token_hash(key: str) -> str:
    """SHA-256 of the whole token (tokens carry 190+ random bits: a fast hash is the right one)."""
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user: Any) -> tuple[ApiToken, str]:
    """Make a management API token for `user`; return it with its key (shown once, never stored)."""
    prefix = secrets.token_hex(4)
    key = f"{API_TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(user=user, prefix=prefix, hashed_key=api_token_hash(key))
    return token, key
