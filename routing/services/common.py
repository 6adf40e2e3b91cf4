"""What every routing write shares: the actor, the permission check, the audit entry, the comment
rules."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin, User

from controlplane.errors import InvalidInput, NotAllowed
from routing.models import ApiToken, AuditEntry, Policy

Actor = AbstractBaseUser | AnonymousUser | None


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


def _actor_token(user: Actor) -> ApiToken | None:
    """The API token an actor acts through (routing.authentication.token_actor), if any."""
    token = getattr(user, "api_token", None)
    return token if isinstance(token, ApiToken) else None


def _actor_label(user: Actor) -> str:
    if user is None:
        return "system"
    name = getattr(user, "get_username", lambda: "anonymous")()
    token = _actor_token(user)
    return f"{name} via {token.label}"[:150] if token else name


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
        api_token=_actor_token(user),
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
