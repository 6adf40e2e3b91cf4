"""SDK keys: create (the secret shown once, stored as a hash), revoke, last use."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from functools import partial

from django.db import transaction
from django.utils import timezone

from controlplane.errors import Conflict, InvalidInput
from routing import live
from routing.credentials import SDK_KEY_PREFIX
from routing.credentials import secret_hash as sdk_key_hash
from routing.models import AuditEntry, Policy, SdkKey
from routing.roles import (
    PERM_MANAGE_KEYS,
)
from routing.services.common import (
    Actor,
    _audit,
    _comment_checked,
    _require,
    _saved_user,
)

# --- SDK keys ------------------------------------------------------------------------------------


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
