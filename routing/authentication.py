"""Management API authentication: `Authorization: Token <key>`, as DRF's TokenAuthentication reads
it, against the hashed keys of routing.models.ApiToken (no key is stored in clear).

A token acts as its user narrowed to the token's role (`routing.roles.ROLE_PERMISSIONS`) and, when
it names policies, to those policies (`token_scope_check`, called by every API permission class).
Expired and revoked tokens answer 401; the last-used time is written at most once a minute."""

from __future__ import annotations

import hmac
import types
from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

# How stale a token's last_used_at may be before a request writes it again: one UPDATE a minute per
# busy token, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def role_permissions(role: str) -> frozenset[str]:
    """The `app_label.codename` permissions a role grants (routing.roles, the one definition)."""
    from routing.roles import ROLE_PERMISSIONS

    return frozenset(f"routing.{codename}" for codename in ROLE_PERMISSIONS.get(role, ()))


def token_actor(user: Any, token: Any) -> Any:
    """Narrow `user` (this request's own instance) to what `token` may do: every permission check
    (`has_perm`, the services' and the views') answers yes only when both the user and the token's
    role hold it. The token rides along as `user.api_token`, for the audit log."""
    allowed = role_permissions(token.role)
    user_has_perm = user.has_perm

    def has_perm(self: Any, perm: str, obj: Any = None) -> bool:
        return perm in allowed and bool(user_has_perm(perm, obj))

    def has_perms(self: Any, perm_list: Any, obj: Any = None) -> bool:
        return all(has_perm(self, perm, obj) for perm in perm_list)

    def has_module_perms(self: Any, app_label: str) -> bool:
        return any(perm.startswith(f"{app_label}.") for perm in allowed) and bool(
            type(self).has_module_perms(self, app_label)
        )

    user.has_perm = types.MethodType(has_perm, user)
    user.has_perms = types.MethodType(has_perms, user)
    user.has_module_perms = types.MethodType(has_module_perms, user)
    user.api_token = token
    return user


def request_token(request: Any) -> Any:
    """The ApiToken this request authenticated with, or None (a session, an anonymous visitor)."""
    from routing.models import ApiToken

    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiToken) else None


def _named_policy(request: Any, view: Any) -> str | None:
    kwargs = getattr(view, "kwargs", {}) or {}
    for name in ("slug", "policy"):
        if kwargs.get(name):
            return str(kwargs[name])
    value = request.query_params.get("policy")
    if value:
        return str(value)
    if request.method in {"POST", "PUT", "PATCH"} and getattr(view, "policy_scope", None) == "body":
        data = request.data
        if isinstance(data, dict) and isinstance(data.get("policy"), str):
            return data["policy"]
    return None


def token_scope_check(request: Any, view: Any) -> None:
    """Refuse (403) a policy-scoped token outside its policies.

    A view declares how it meets a scoped token with `policy_scope`: "none" (it holds no policy's
    data: the catalog, the document schema), "list" (a list it filters to the scope itself), "body"
    (the policy is named in the body's `policy`); any other view must name a policy in its URL or
    `?policy=`, or a scoped token is refused. Environment scope (issue #15, part 1) is checked
    here too once environments exist: the environment a request names against the token's."""
    from controlplane.errors import NotAllowed  # errors imports DRF's views, which import this module
    from routing.selectors import token_policy_slugs  # selectors imports controlplane.errors too

    token = request_token(request)
    if token is None:
        return
    slugs = token_policy_slugs(token)
    if slugs is None:
        return
    mode = getattr(view, "policy_scope", None)
    if mode == "none" or (mode == "list" and request.method == "GET"):
        return
    named = _named_policy(request, view)
    scope = ", ".join(slugs)
    if named is None:
        raise NotAllowed(
            f"This token is scoped to {scope}; name one of those policies (this operation reaches beyond them).",
            {"policy": ["required for a policy-scoped token"]},
        )
    if named not in slugs:
        raise NotAllowed(
            f"This token is scoped to {scope}; it can't reach '{named}'.",
            {"policy": ["outside this token's scope"]},
        )


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's token scheme (same header, same 401 answers); the key is looked up by its SHA-256."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        from routing.credentials import secret_hash
        from routing.models import ApiToken

        hashed = secret_hash(key)
        token = (
            ApiToken.objects.select_related("user")
            .annotate(scope_count=Count("policies"))
            .filter(hashed_key=hashed)
            .first()
        )
        if token is None or not hmac.compare_digest(token.hashed_key, hashed):
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token expired.")
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token_actor(token.user, token), token
