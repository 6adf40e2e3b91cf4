"""Policies, drafts and versions: create, update, draft save and discard, publish, roll back; the
catalog snapshot a version carries and the document check before any save."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane import compute
from controlplane.errors import Conflict, InvalidInput, NotFound, TooLarge
from routing import live, selectors
from routing.diff import document_diff
from routing.models import AuditEntry, Policy, PolicyVersion
from routing.roles import (
    PERM_CREATE_POLICY,
    PERM_EDIT_DRAFT,
    PERM_EDIT_POLICY,
    PERM_PUBLISH,
)
from routing.selectors import models_snapshot
from routing.services.common import (
    Actor,
    _audit,
    _require,
    _require_comment,
    _saved_user,
)
from signalbox_client import engine


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
    with compute.interruptible():
        errors = engine.validate_document(document)
    snapshot: dict[str, dict[str, Any]] = {}
    if not errors:
        snapshot = models_snapshot(engine.referenced_models(document))
        with compute.interruptible():
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
    what changed). Saving the draft's own document again changes nothing (no revision, no audit).
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
        if draft.document == document and (not rebase or draft.base_number == live_number):
            return draft  # the same content again (a repeated `signalbox push`): no new revision
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
    return _publish_audited(policy=policy, version=draft, user=user, comment=comment)[0]


def _publish_audited(
    *, policy: Policy, version: PolicyVersion, user: Actor, comment: str, action: str = AuditEntry.Action.PUBLISH
) -> tuple[PolicyVersion, AuditEntry]:
    """Check `version`'s document, make it the live version and write the publish audit entry
    with the diff against what was live (the policy row already locked)."""
    snapshot = document_check(version.document)
    diff = document_diff(selectors.live_document(policy) or {}, version.document)
    version = _publish_locked(policy=policy, version=version, snapshot=snapshot, user=user, comment=comment)
    entry = _audit(
        user=user,
        action=action,
        target=f"{policy.slug}:v{version.number}",
        policy=policy,
        comment=comment,
        diff=diff,
    )
    return version, entry


# Who the audit log names for a version the control plane publishes on its own (a guardrail stop).
CONTROL_PLANE_ACTOR = "signalbox control plane"


@transaction.atomic
def policy_publish_document(
    *, policy: Policy, document: Any, user: Actor, comment: str, expected_live: int, actor_label: str = ""
) -> PolicyVersion:
    """Publish `document` as the next version, without going through the draft (which stays as it
    is: based on the version live before, its next publish answers 409 with what changed, as after
    any publish). The control plane's automatic publishes take this path; they are checked,
    numbered, made live and audited exactly like a person's publish.

    `expected_live` is the live number the document was derived from: 409 when another publish
    came first. `actor_label` names a non-user actor in the audit log (default: the user's name).
    """
    _require(user, PERM_PUBLISH, "publish policies")
    comment = _require_comment(comment, "publish")
    policy = _locked_policy(policy)
    live_number = _live_number(policy)
    if live_number != expected_live:
        raise Conflict(
            f"v{live_number} is live now, not v{expected_live}.", {"expected_live": [f"live is v{live_number}"]}
        )
    version = PolicyVersion(policy=policy, document=document, base_number=live_number)
    version, entry = _publish_audited(policy=policy, version=version, user=user, comment=comment)
    if actor_label:
        entry.actor_label = actor_label[:150]
        entry.save(update_fields=["actor_label"])
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
    version = PolicyVersion(policy=policy, document=target.document, rollback_of=to_number, base_number=live_number)
    return _publish_audited(
        policy=policy,
        version=version,
        user=user,
        comment=f"rollback to v{to_number}: {comment}",
        action=AuditEntry.Action.ROLLBACK,
    )[0]
