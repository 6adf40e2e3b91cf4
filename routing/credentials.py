"""What a presented secret looks like and how it is stored: the public prefixes of SDK keys and
API tokens, and the one hash both are kept as. Pure; the services that mint secrets, the hot path
that checks SDK keys (routing.live) and the token authentication all read it here.
"""

from __future__ import annotations

import hashlib

SDK_KEY_PREFIX = "sbx_"
API_TOKEN_PREFIX = "sbt_"  # noqa: S105 - the public start of every token, not a secret


def secret_hash(secret: str) -> str:
    """SHA-256 of the whole secret. SDK keys and tokens carry 190+ random bits, so a fast hash is
    the right one (a slow password hash would buy nothing and cost every request)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_prefix(secret: str, kind_prefix: str) -> str | None:
    """The lookup prefix of `<kind_prefix><prefix>_<random>`, or None when the secret is not of that shape."""
    if not secret.startswith(kind_prefix):
        return None
    prefix, _, rest = secret[len(kind_prefix) :].partition("_")
    return prefix if prefix and rest else None
