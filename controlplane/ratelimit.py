"""Per-key request rate limits, counted in the shared cache (a fixed window per key and scope).

A rate reads "<requests>/<unit>" ("6000/minute", "100/s"); "0", "off" or "" turn the limit off.
Every web node counts in the same cache entry, so the limit holds across the fleet: on Redis a
pipelined INCRBY + EXPIRE (atomic, one round trip); on any other backend `cache.incr`, with
`cache.add` to open a window (both atomic on local memory and Redis). See `hit` for how a busy
key avoids a round trip per request.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from controlplane.memory import ProcessCache

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase, JsonResponse

logger = logging.getLogger(__name__)

# Only the standard library and django.core.exceptions at import time: the settings module
# parses its rates with `rate_parse`.

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_RATE = re.compile(r"^\s*(\d{1,12})\s*/\s*([a-z]+)\s*$")
_OFF = {"", "0", "off", "none", "false"}
_KEY = "signalbox:rl:{scope}:{ident}:{window}"


@dataclass(frozen=True, slots=True)
class Rate:
    requests: int
    seconds: int

    @property
    def unit(self) -> str:
        return {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[self.seconds]

    def __str__(self) -> str:
        return f"{self.requests}/{self.unit}"


@functools.lru_cache(maxsize=64)
def rate_parse(value: str | None, *, setting: str) -> Rate | None:
    """Parse a rate setting; None when the limit is off. ImproperlyConfigured names the setting."""
    text = (value or "").strip().lower()
    if text in _OFF:
        return None
    match = _RATE.match(text)
    if match is None or match.group(2) not in _UNITS:
        raise ImproperlyConfigured(
            f"{setting}={value!r} is not a rate: write '<requests>/<unit>' with unit second, minute, hour "
            f"or day (e.g. '6000/minute'), or 'off'."
        )
    requests = int(match.group(1))
    if requests == 0:
        return None
    return Rate(requests, _UNITS[match.group(2)])


def drf_rate(value: str | None, *, setting: str) -> str | None:
    """The same rate in DRF's throttle notation ("<n>/<unit>"), None when off."""
    rate = rate_parse(value, setting=setting)
    return None if rate is None else str(rate)


# Per process: (scope, ident) -> [window, requests still granted]. A process reserves 1% of a
# rate at a time from the shared counter and spends it locally, so a busy key costs one cache
# round trip per 1% of its rate, not one per request.
_leases: ProcessCache[tuple[str, object], list[int]] = ProcessCache("rate-limit leases", 10_000)
_lock = threading.Lock()
LEASE_FRACTION = 100


def hit(scope: str, ident: object, rate: Rate) -> int | None:
    """Count one request of `ident` in `scope`; return the seconds to wait when over the rate, else None.

    Exact for rates under 200 per window (one shared count per request); above, each process
    reserves rate/100 requests at a time, so the fleet may admit up to that many fewer per process
    and window (reserved, unspent), never more than the rate.
    """
    now = time.time()
    window = int(now // rate.seconds)
    with _lock:
        lease = _leases.get((scope, ident))
        if lease is not None and lease[0] == window and lease[1] > 0:
            lease[1] -= 1
            return None
    chunk = max(1, rate.requests // LEASE_FRACTION)
    try:
        total = _count(_KEY.format(scope=scope, ident=ident, window=window), chunk, rate.seconds + 1)
    except Exception:
        # The shared cache is down: limits fail open, as refusing every client for it would stop
        # routing and decision logs everywhere (the outage is logged once a minute).
        _cache_unreachable()
        return None
    granted = min(chunk, rate.requests - (total - chunk))
    if granted <= 0:
        return max(1, math.ceil((window + 1) * rate.seconds - now))
    _leases.set((scope, ident), [window, granted - 1])  # many keys: the oldest lease is dropped
    return None


def _count(key: str, amount: int, ttl: int) -> int:
    """Add `amount` to the shared counter `key` (created with `ttl`) and return its new value."""
    from django.core.cache import caches

    cache = caches["default"]  # Django's public cache API only: any backend, atomic increments
    cache.add(key, 0, ttl)  # the window's counter, created with its expiry (a no-op once it exists)
    try:
        return int(cache.incr(key, amount))
    except ValueError:  # it expired between the two calls
        return amount if cache.add(key, amount, ttl) else int(cache.incr(key, amount))


_last_warning = 0.0


def _cache_unreachable() -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 60:
        _last_warning = now
        logger.warning("shared cache unreachable: rate limits are not enforced")


def forget() -> None:
    """Drop this process's leases and address blocks (tests, and after fork)."""
    with _lock:
        _leases.clear()
        _blocked.clear()


def client_limit(scope: str, setting: str, key_id: int) -> JsonResponse | None:
    """The 429 answer when SDK key `key_id` is over the rate named by `setting`, else None."""
    from controlplane.errors import json_error

    rate = rate_parse(getattr(settings, setting), setting=setting)
    if rate is None:
        return None
    wait = hit(scope, key_id, rate)
    if wait is None:
        return None
    return json_error(
        429,
        f"Too many requests for this SDK key: at most {rate}. Retry in {wait} s.",
        {"rate_limit": [f"at most {rate} per SDK key"]},
        headers={"Retry-After": str(wait)},
    )


def policy_fetch_limit(key_id: int) -> JsonResponse | None:
    """Per-key limit of the client policy fetch (CLIENT_RATE_LIMIT_POLICY_FETCH)."""
    return client_limit("fetch", "CLIENT_RATE_LIMIT_POLICY_FETCH", key_id)


def decisions_limit(key_id: int) -> JsonResponse | None:
    """Per-key limit of the client decision upload (CLIENT_RATE_LIMIT_DECISIONS)."""
    return client_limit("decisions", "CLIENT_RATE_LIMIT_DECISIONS", key_id)


# -- made-up SDK keys ------------------------------------------------------------------------------

# Per process: client address -> monotonic time until which its requests are refused at once. Set
# when the shared count of that address's refused keys passes CLIENT_RATE_LIMIT_UNKNOWN_KEY, so a
# guesser costs one dictionary lookup per request, not a key lookup in the database.
BLOCKED_SIZE = 10_000
_blocked: ProcessCache[str, float] = ProcessCache("blocked client addresses", BLOCKED_SIZE)
CLIENT_PATH_PREFIX = "/api/v1/client/"


def unknown_key_hit(address: str) -> None:
    """Count one refused SDK key from `address` in the shared cache; once the count reaches
    CLIENT_RATE_LIMIT_UNKNOWN_KEY, block the address in this process until the window ends."""
    rate = rate_parse(settings.CLIENT_RATE_LIMIT_UNKNOWN_KEY, setting="CLIENT_RATE_LIMIT_UNKNOWN_KEY")
    if rate is None:
        return
    now = time.time()
    window = int(now // rate.seconds)
    try:
        total = _count(_KEY.format(scope="unknown-key", ident=address, window=window), 1, rate.seconds + 1)
    except Exception:
        _cache_unreachable()  # fail open, as every other limit does
        return
    if total >= rate.requests:
        until = time.monotonic() + max(1.0, (window + 1) * rate.seconds - now)
        _blocked.set(address, until)


def unknown_key_wait(address: str) -> int | None:
    """The seconds `address` must still wait after too many refused keys, or None."""
    until = _blocked.get(address)
    if until is None:
        return None
    left = until - time.monotonic()
    if left <= 0:
        _blocked.pop(address)
        return None
    return max(1, math.ceil(left))


def _unknown_key_answer(wait: int) -> JsonResponse:
    from controlplane.errors import json_error

    return json_error(
        429,
        f"Too many requests with an unknown or revoked SDK key from this address. Retry in {wait} s.",
        {"rate_limit": [f"at most {settings.CLIENT_RATE_LIMIT_UNKNOWN_KEY} refused keys per address"]},
        headers={"Retry-After": str(wait)},
    )


class UnknownKeyThrottleMiddleware:
    """Throttle client-API requests per address once their SDK keys keep being refused (401).

    Every 401 of the client API counts against the client's address (controlplane/clientip.py);
    past CLIENT_RATE_LIMIT_UNKNOWN_KEY the address gets 429 before its key is even looked up, until
    the window ends. Requests with a valid key are never counted, so they cost nothing here.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(CLIENT_PATH_PREFIX):
            return self.get_response(request)
        from controlplane.clientip import client_ip

        address = client_ip(request)
        wait = unknown_key_wait(address)
        if wait is not None:
            return _unknown_key_answer(wait)
        response = self.get_response(request)
        if response.status_code == 401:
            unknown_key_hit(address)
        return response
