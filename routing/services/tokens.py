"""Management API tokens: created for a user, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction

from routing.models import ApiToken

API_TOKEN_PREFIX = "sbt_"  # noqa: S105 - the public start of every token, not a secret

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
