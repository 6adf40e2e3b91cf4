"""Management API authentication: `Authorization: Token <key>`, as DRF's TokenAuthentication reads
it, against the hashed keys of routing.models.ApiToken (no key is stored in clear)."""

from __future__ import annotations

import hmac
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's token scheme (same header, same 401 answers); the key is looked up by its SHA-256."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        from routing.models import ApiToken
        from routing.services import api_token_hash

        hashed = api_token_hash(key)
        token = ApiToken.objects.select_related("user").filter(hashed_key=hashed).first()
        if token is None or not hmac.compare_digest(token.hashed_key, hashed):
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
