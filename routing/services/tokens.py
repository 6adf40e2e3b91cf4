"""Management API tokens: create (the key shown once, stored as a SHA-256 hash) with a name, a
role, an optional policy scope and an expiry; revoke. A token acts as its owner narrowed to its
role and scope (routing.authentication)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.errors import Conflict, InvalidInput, NotAllowed
from routing.credentials import API_TOKEN_PREFIX
from routing.credentials import secret_hash as api_token_hash
from routing.models import ApiToken, AuditEntry, Policy
from routing.roles import ROLES, VIEWER, role_of
from routing.selectors import token_policy_slugs
from routing.services.common import Actor, _audit, _comment_checked, _saved_user

# --- management API tokens -----------------------------------------------------------------------


def _token_label(token: ApiToken) -> str:
    return f"token {token.name or '(unnamed)'} {token.prefix}"


@transaction.atomic
def api_token_create(
    *,
    user: Actor,
    owner: Any = None,
    name: str = "",
    role: str | None = None,
    policies: Iterable[Policy] = (),
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Make a management API token; return it with its key (shown once, never stored).

    The token acts as `owner` (default: `user`, who makes it), narrowed to `role` (default: the
    owner's own) and, when given, to `policies`. A person can make a token of at most their own
    role (`user=None`, the system, such as `manage.py api_token_create`, any role)."""
    owner = _saved_user(owner) or _saved_user(user)
    if owner is None:
        raise NotAllowed("Sign in to make API tokens.")
    if user is not None:
        if not getattr(user, "is_active", False) or _saved_user(user) != owner:
            raise NotAllowed("You can make API tokens for yourself only.")
        if token_policy_slugs(getattr(user, "api_token", None)) is not None:
            raise NotAllowed("A policy-scoped token can't make tokens.", {"policy": ["scoped token"]})
    ceiling = role_of(user if user is not None else owner)
    if user is not None and ceiling is None:
        raise NotAllowed("You need a role (viewer, editor or publisher) to make API tokens.")
    role = role or ceiling or VIEWER
    if role not in ROLES:
        raise InvalidInput(f"Unknown role '{role}'.", {"role": [f"one of {', '.join(ROLES)}"]})
    if user is not None and ceiling is not None and ROLES.index(role) > ROLES.index(ceiling):
        raise InvalidInput(f"You hold the {ceiling} role; a token can't hold more.", {"role": [f"at most {ceiling}"]})
    name = (name or "").strip()
    if len(name) > 200 or "\x00" in name:
        raise InvalidInput("Invalid token name.", {"name": ["at most 200 characters, no NUL"]})
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The expiry is in the past.", {"expires_at": ["must be in the future"]})
    policies = list(policies)
    prefix = secrets.token_hex(4)
    key = f"{API_TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=owner, name=name, role=role, prefix=prefix, hashed_key=api_token_hash(key), expires_at=expires_at
    )
    token.policies.set(policies)
    scope = ", ".join(p.slug for p in policies) or "every policy"
    expiry = f"; expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    _audit(
        user=user,
        action=AuditEntry.Action.TOKEN_CREATE,
        target=_token_label(token)[:255],
        comment=f"for {owner.get_username()}; role {role}; policies: {scope}{expiry}",
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, user: Actor, comment: str = "") -> ApiToken:
    """Revoke a token (its next request answers 401). Its owner or a superuser may."""
    allowed = user is None or (
        getattr(user, "is_active", False) and (_saved_user(user) == token.user or getattr(user, "is_superuser", False))
    )
    if not allowed:
        raise NotAllowed("Only the token's owner or a superuser can revoke it.")
    comment = _comment_checked((comment or "").strip())
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise Conflict("This token is already revoked.", {"token": ["already revoked"]})
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    _audit(user=user, action=AuditEntry.Action.TOKEN_REVOKE, target=_token_label(token)[:255], comment=comment)
    return token
