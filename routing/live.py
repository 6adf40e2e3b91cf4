"""The hot path's memory: live policy payloads and SDK keys, held per web process.

A process keeps the serialized live payload of each policy it has served. It trusts that copy for
LIVE_POLICY_CHECK_SECONDS, then compares a generation token in the shared cache (one cache read, no
database) and rebuilds from the database only when a publish or rollback changed it. Publishing
bumps the token after commit, so the publishing process sees the change at once and every other
process within LIVE_POLICY_CHECK_SECONDS. SDK keys are held the same way for SDK_KEY_CACHE_SECONDS;
that is how long a revoked key may keep working in another process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder

_GEN_KEY = "signalbox:live-gen:{slug}"


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """What the client policy endpoint serves for one slug."""

    policy_id: int | None  # None: no such policy
    body: bytes | None  # None: nothing published yet
    etag: str | None
    version: int | None
    generation: str | None
    checked_at: float


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key_id: int | None  # None: unknown or revoked
    policy_ids: frozenset[int]
    checked_at: float


_lock = threading.Lock()
_policies: dict[str, LiveEntry] = {}
_keys: dict[str, KeyEntry] = {}


def _payload(version: Any, slug: str) -> bytes:
    body = {
        "policy": slug,
        "version": version.number,
        "published_at": version.published_at,
        "document": version.document,
        "models": version.models_snapshot,
    }
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True).encode()


def _build(slug: str, generation: str | None) -> LiveEntry:
    from routing.models import Policy, PolicyVersion

    now = time.monotonic()
    row = Policy.objects.filter(slug=slug).values_list("pk", "live_version_id").first()
    if row is None:
        return LiveEntry(None, None, None, None, generation, now)
    policy_id, live_id = row
    if live_id is None:
        return LiveEntry(policy_id, None, None, None, generation, now)
    version = PolicyVersion.objects.only("number", "published_at", "document", "models_snapshot").get(pk=live_id)
    body = _payload(version, slug)
    etag = f'"v{version.number}-{hashlib.sha256(body).hexdigest()[:24]}"'
    return LiveEntry(policy_id, body, etag, version.number, generation, now)


def live_entry(slug: str) -> LiveEntry:
    """Return the live entry for `slug`, from memory when it is fresh."""
    entry = _policies.get(slug)
    now = time.monotonic()
    if entry is not None and now - entry.checked_at < settings.LIVE_POLICY_CHECK_SECONDS:
        return entry
    generation = cache.get(_GEN_KEY.format(slug=slug))
    if entry is not None and generation is not None and generation == entry.generation:
        entry = LiveEntry(entry.policy_id, entry.body, entry.etag, entry.version, generation, now)
    else:
        if generation is None:
            generation = _new_generation()
            cache.add(_GEN_KEY.format(slug=slug), generation, None)
            generation = cache.get(_GEN_KEY.format(slug=slug), generation)
        entry = _build(slug, generation)
    with _lock:
        if len(_policies) > 10_000:  # unknown slugs asked by a key holder must not grow memory
            _policies.clear()
        _policies[slug] = entry
    return entry


def _new_generation() -> str:
    return f"{time.time_ns():x}"


def invalidate(slug: str) -> None:
    """Mark `slug`'s live payload stale in every process (after a publish or rollback commits)."""
    cache.set(_GEN_KEY.format(slug=slug), _new_generation(), None)
    with _lock:
        _policies.pop(slug, None)


def key_entry(secret: str) -> KeyEntry:
    """Return the key behind a presented secret (key_id None when unknown or revoked)."""
    hashed = hashlib.sha256(secret.encode()).hexdigest()  # services.sdk_key_hash, inlined: hot path
    entry = _keys.get(hashed)
    now = time.monotonic()
    if entry is not None and now - entry.checked_at < settings.SDK_KEY_CACHE_SECONDS:
        return entry
    from routing.models import SdkKey
    from routing.services import sdk_key_touch

    prefix = _prefix_of(secret)
    row = None
    if prefix is not None:
        row = SdkKey.objects.filter(prefix=prefix, revoked_at__isnull=True).values_list(
            "pk", "hashed_secret").first()
    if row is not None and hmac.compare_digest(row[1], hashed):
        policy_ids = frozenset(
            SdkKey.policies.through.objects.filter(sdkkey_id=row[0]).values_list("policy_id", flat=True))
        entry = KeyEntry(row[0], policy_ids, now)
        sdk_key_touch(key_id=row[0])
    else:
        entry = KeyEntry(None, frozenset(), now)
    with _lock:
        if len(_keys) > 10_000:  # unknown secrets must not grow memory without bound
            _keys.clear()
        _keys[hashed] = entry
    return entry


def forget_key(hashed: str) -> None:
    with _lock:
        _keys.pop(hashed, None)


def _prefix_of(secret: str) -> str | None:
    from routing.services import SDK_KEY_PREFIX

    if not secret.startswith(SDK_KEY_PREFIX):
        return None
    prefix, _, rest = secret[len(SDK_KEY_PREFIX):].partition("_")
    return prefix if prefix and rest else None


def clear() -> None:
    """Forget everything held in this process (tests, and after fork)."""
    with _lock:
        _policies.clear()
        _keys.clear()
