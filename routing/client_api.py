"""The client protocol's policy fetch: the hottest endpoint Signalbox serves.

A plain Django view rather than a DRF APIView: DRF's negotiation, authentication and rendering
would cost more than the whole 304 answer. It reads only process memory on the warm path
(`routing.live`), so a 304 makes no database query.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.views.decorators.http import require_safe

from controlplane import prometheus, ratelimit
from controlplane.errors import json_error
from routing import live
from signalbox_client.protocol import AUTH_SCHEME, KEY_HEADER, PROTOCOL_HEADER, protocol_version_problem


def bearer_secret(request: HttpRequest) -> str | None:
    """The SDK key of a client request (`Authorization: Bearer <key>`), or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != AUTH_SCHEME.lower() or not secret.strip():
        return None
    return secret.strip()


def key_header_secret(request: HttpRequest) -> str | None:
    """The SDK key of a request that sends it as `Authorization: Bearer <key>` or in the
    `x-signalbox-key` header (OTLP exporters set custom headers more easily), or None."""
    secret = bearer_secret(request)
    if secret is None:
        secret = request.headers.get(KEY_HEADER, "").strip() or None
    return secret


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(candidate.strip() == etag for candidate in header.split(","))


def unauthorized(message: str) -> HttpResponse:
    """The 401 of the client endpoints, naming what is wrong with the key."""
    return json_error(
        401, message, {"authorization": [message]}, headers={"WWW-Authenticate": 'Bearer realm="signalbox"'}
    )


_PROTOCOL_META = "HTTP_" + PROTOCOL_HEADER.upper().replace("-", "_")  # request.META's name of the header


def client_key(
    request: HttpRequest,
    limit: Callable[[int], HttpResponse | None],
    *,
    secret_of: Callable[[HttpRequest], str | None] = bearer_secret,
) -> live.KeyEntry | HttpResponse:
    """The SDK key of a client request, or the answer that refuses it: 401 without a known key,
    429 over the key's rate (`limit`, one of `controlplane.ratelimit`'s client limits); 400 first
    when the request speaks a protocol version this server does not.
    `secret_of` reads the key from the request (`key_header_secret` also takes `x-signalbox-key`)."""
    if (problem := protocol_version_problem(request.META.get(_PROTOCOL_META))) is not None:
        return json_error(400, f"{PROTOCOL_HEADER}: {problem}.", {PROTOCOL_HEADER: [problem]})
    secret = secret_of(request)
    if secret is None:
        also = f" or '{KEY_HEADER}: <key>'" if secret_of is key_header_secret else ""
        return unauthorized(f"Send the SDK key as 'Authorization: {AUTH_SCHEME} <key>'{also}.")
    key = live.key_entry(secret)
    if key.key_id is None:
        return unauthorized("The SDK key is unknown or revoked.")
    if (limited := limit(key.key_id)) is not None:
        return limited
    return key


@require_safe
def client_policy_fetch(request: HttpRequest, slug: str) -> HttpResponseBase:
    """Return the live document of `slug` with a strong ETag, or 304 when the client has it.

    Both carry the policy's budget state in the `Signalbox-Budget` header when metrics has one.
    Every answer is counted by status (`signalbox_policy_fetches_total`).
    """
    response = _policy_fetch(request, slug)
    prometheus.policy_fetch_count(response.status_code)
    return response


def _policy_fetch(request: HttpRequest, slug: str) -> HttpResponseBase:
    key = client_key(request, ratelimit.policy_fetch_limit)
    if isinstance(key, HttpResponse):
        return key
    entry = live.live_entry(slug)
    if entry.policy_id is None or entry.policy_id not in key.policy_ids:
        # One answer for "no such policy" and "not this key's": a key cannot list other teams' slugs.
        return json_error(404, f"No policy '{slug}' for this SDK key.", {"policy": ["not found for this key"]})
    if entry.body is None or entry.etag is None:
        return json_error(404, f"The policy '{slug}' has no published version yet.", {"policy": ["nothing published"]})
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match and _etag_matches(if_none_match, entry.etag):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(entry.body, content_type="application/json")
    response["ETag"] = entry.etag
    response["Cache-Control"] = "private, no-cache"
    if entry.budget is not None:  # outside the body, so spend never changes the ETag
        response[live.BUDGET_HEADER] = entry.budget
    return response
