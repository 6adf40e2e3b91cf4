"""The client's address, one rule for every per-address limit (login lockout, unknown SDK keys,
anonymous API throttle).

Behind NUM_PROXIES trusted proxies the address is the one the outermost trusted proxy saw: the
NUM_PROXIES-th entry from the right of X-Forwarded-For (what DRF's throttles read with the same
setting). With NUM_PROXIES 0 (the default) the header is ignored, since any client could forge it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address limits count against ("" when the server knows none)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = getattr(settings, "NUM_PROXIES", 0)
    if proxies <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    return hops[-min(proxies, len(hops))]
