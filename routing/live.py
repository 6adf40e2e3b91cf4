"""The hot path's memory: live policy payloads and SDK keys, held per web process.

A process keeps the serialized live payload of each policy it has served. It trusts that copy for
LIVE_POLICY_CHECK_SECONDS, then compares a generation token in the shared cache (one cache read, no
database) and rebuilds from the database only when a publish or rollback changed it. Publishing
bumps the token after commit, so the publishing process sees the change at once and every other
process within LIVE_POLICY_CHECK_SECONDS. SDK keys are held the same way for SDK_KEY_CACHE_SECONDS;
that is how long a revoked key may keep working in another process.

The budget state (each route's and the policy's spend fraction of its budgets) travels the same
way: metrics writes it to the shared cache under `budget_state_key(slug)` with
`budget_state_write()`, and a process reads it in the same cache round trip as the generation
token, so a spend change reaches clients within LIVE_POLICY_CHECK_SECONDS of being written and
never changes the document's ETag.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from controlplane.memory import ProcessCache
from routing.credentials import SDK_KEY_PREFIX, secret_hash, secret_prefix
from signalbox_client import protocol

logger = logging.getLogger(__name__)

_GEN_KEY = "signalbox:live-gen:{slug}"
_BUDGET_KEY = "signalbox:budget-state:{slug}"
BUDGET_HEADER = protocol.BUDGET_HEADER
MAX_BUDGET_HEADER_BYTES = protocol.MAX_BUDGET_HEADER_BYTES  # 200 routes of two fractions each need about 12 kB


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """What the client policy endpoint serves for one slug."""

    policy_id: int | None  # None: no such policy
    body: bytes | None  # None: nothing published yet
    etag: str | None
    version: int | None
    generation: str | None
    checked_at: float
    budget: str | None = None  # the Signalbox-Budget header value; None: no state to send


@dataclass(frozen=True, slots=True)
class KeyEntry:
    key_id: int | None  # None: unknown or revoked
    policy_ids: frozenset[int]
    checked_at: float


# Bounded least-recently-used maps: a flood of unknown slugs or made-up secrets evicts the oldest
# entries one at a time and never empties the map, so the keys and policies in use stay warm.
CACHE_SIZE = 10_000
_policies: ProcessCache[str, LiveEntry] = ProcessCache("live policies", CACHE_SIZE)
_keys: ProcessCache[str, KeyEntry] = ProcessCache("SDK keys", CACHE_SIZE)


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
    """Return the live entry for `slug`, from memory when it is fresh.

    With the shared cache unreachable the process keeps serving what it has (or builds the entry
    from the database) and checks again after LIVE_POLICY_CHECK_SECONDS; such an entry carries no
    generation, so the first successful check rebuilds it and a publish made meanwhile is seen,
    and no budget state, which could otherwise be sent unchanged for the whole outage.
    """
    entry = _policies.get(slug)
    now = time.monotonic()
    if entry is not None and now - entry.checked_at < settings.LIVE_POLICY_CHECK_SECONDS:
        return entry
    gen_key, budget_key = _GEN_KEY.format(slug=slug), _BUDGET_KEY.format(slug=slug)
    try:
        shared = cache.get_many((gen_key, budget_key))  # one round trip for both
    except Exception:
        _cache_unreachable("reading the live generation")
        # Nothing can tell whether the held budget state is still fresh, and metrics cannot write a
        # new one: stop sending it (clients keep their last state for their own max age).
        entry = (
            replace(entry, generation=None, checked_at=now, budget=None) if entry is not None else _build(slug, None)
        )
    else:
        generation = shared.get(gen_key)
        budget = _budget_value(shared.get(budget_key))
        if entry is not None and generation is not None and generation == entry.generation:
            entry = replace(entry, checked_at=now, budget=budget)
        else:
            if generation is None:
                generation = _new_generation()
                cache.add(gen_key, generation, None)
                generation = cache.get(gen_key, generation)
            entry = replace(_build(slug, generation), budget=budget)
    _policies.set(slug, entry)  # unknown slugs asked by a key holder must not grow memory
    return entry


_last_cache_warning = 0.0


def _cache_unreachable(doing: str) -> None:
    """Log that the shared cache failed, at most once a minute per process."""
    global _last_cache_warning
    now = time.monotonic()
    if now - _last_cache_warning >= 60:
        _last_cache_warning = now
        logger.warning("shared cache unreachable while %s; serving from process memory", doing)


def _new_generation() -> str:
    return f"{time.time_ns():x}"


def invalidate(slug: str) -> None:
    """Mark `slug`'s live payload stale in every process (after a publish or rollback commits).

    The publish has committed by now, so a cache outage must not turn it into an error: this
    process drops its copy at once, and the others keep theirs until the cache answers again
    (their entries lose their generation while it is down, so they rebuild when it returns).
    """
    _policies.pop(slug)
    try:
        cache.set(_GEN_KEY.format(slug=slug), _new_generation(), None)
    except Exception:
        _cache_unreachable("announcing a publish")


# -- budget state: written by metrics, served with the policy ------------------------------------


def budget_state_key(slug: str) -> str:
    """The shared-cache key holding the budget state of policy `slug` (part of the protocol)."""
    return _BUDGET_KEY.format(slug=slug)


def budget_state_encode(state: Mapping[str, Any], *, as_of: datetime) -> str:
    """The `Signalbox-Budget` header value: compact JSON of the spend fractions and `as_of`.

    `state` is `{"policy": {"daily": f, "monthly": f} | None, "routes": {route: {...}},
    "dimensions"?: {key: {value: {...}}}}`; a fraction is spend so far / budget (1.0 = all
    spent), None when that budget is not set.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of needs a time zone")

    def spend(value: Any, where: str) -> dict[str, float | None]:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} is not an object")
        out: dict[str, float | None] = {}
        for period in ("daily", "monthly"):
            fraction = value.get(period)
            if fraction is not None:
                if isinstance(fraction, bool) or not isinstance(fraction, int | float) or fraction != fraction:
                    raise ValueError(f"{where}.{period} is not a number")
                fraction = float(fraction)
            out[period] = fraction
        return out

    policy, routes, dimensions = state.get("policy"), state.get("routes") or {}, state.get("dimensions") or {}
    if not isinstance(routes, Mapping):
        raise ValueError("routes is not an object")
    if not isinstance(dimensions, Mapping):
        raise ValueError("dimensions is not an object")
    body: dict[str, Any] = {
        "as_of": as_of.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "policy": spend(policy, "policy") if policy is not None else None,
        "routes": {str(name): spend(value, f"routes.{name}") for name, value in routes.items()},
    }
    if dimensions:  # only a policy with dimension budgets sends the field (older clients ignore it)
        per_key: dict[str, dict[str, dict[str, float | None]]] = {}
        for key, values in dimensions.items():
            if not isinstance(values, Mapping):
                raise ValueError(f"dimensions.{key} is not an object")
            per_key[str(key)] = {str(v): spend(f, f"dimensions.{key}.{v}") for v, f in values.items()}
        body["dimensions"] = per_key
    value = json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False)
    if len(value) > MAX_BUDGET_HEADER_BYTES:
        raise ValueError(f"budget state over {MAX_BUDGET_HEADER_BYTES} bytes")
    return value


def budget_state_write(*, slug: str, state: Mapping[str, Any] | None, as_of: datetime) -> None:
    """Publish the budget state of `slug` to every web process (None: there is none to send).

    The entry lives BUDGET_STATE_MAX_AGE_SECONDS, so when metrics stops refreshing it clients
    stop receiving a state that no longer describes the spend. This process sees it at once,
    every other within LIVE_POLICY_CHECK_SECONDS.
    """
    key = budget_state_key(slug)
    value = None
    if state is None:
        cache.delete(key)
    else:
        value = budget_state_encode(state, as_of=as_of)
        cache.set(key, value, timeout=settings.BUDGET_STATE_MAX_AGE_SECONDS)
    _policies.update(slug, lambda entry: replace(entry, budget=value))


def budget_state_read(slug: str) -> dict[str, Any] | None:
    """The budget state of `slug` as published in the shared cache (decoded), or None."""
    value = _budget_value(cache.get(budget_state_key(slug)))
    return json.loads(value) if value is not None else None


def _budget_value(value: Any) -> str | None:
    """A cached header value, or None when it is absent or not one this version wrote."""
    if isinstance(value, str) and value.isascii() and 0 < len(value) <= MAX_BUDGET_HEADER_BYTES:
        return value
    return None


# -- SDK keys --------------------------------------------------------------------------------------


def key_entry(secret: str) -> KeyEntry:
    """Return the key behind a presented secret (key_id None when unknown or revoked)."""
    hashed = secret_hash(secret)
    entry = _keys.get(hashed)
    now = time.monotonic()
    if entry is not None and now - entry.checked_at < settings.SDK_KEY_CACHE_SECONDS:
        return entry
    from routing.models import SdkKey

    prefix = secret_prefix(secret, SDK_KEY_PREFIX)
    row = None
    if prefix is not None:
        row = SdkKey.objects.filter(prefix=prefix, revoked_at__isnull=True).values_list("pk", "hashed_secret").first()
    if row is not None and hmac.compare_digest(row[1], hashed):
        policy_ids = frozenset(
            SdkKey.policies.through.objects.filter(sdkkey_id=row[0]).values_list("policy_id", flat=True)
        )
        entry = KeyEntry(row[0], policy_ids, now)
        # The key was used: written at most once per key cache period per process.
        SdkKey.objects.filter(pk=row[0]).update(last_used_at=timezone.now())
    else:
        entry = KeyEntry(None, frozenset(), now)
    _keys.set(hashed, entry)  # unknown secrets are remembered too (negative entries)
    return entry


def forget_key(hashed: str) -> None:
    _keys.pop(hashed)


def clear() -> None:
    """Forget the live policies and keys held in this process (`controlplane.memory.forget_all`
    clears every process cache at once)."""
    _policies.clear()
    _keys.clear()
