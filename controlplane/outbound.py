"""Every HTTP request the control plane makes on a user's behalf (alert webhooks, "send test") goes
through `outbound_post`, so a URL a user typed cannot reach what only the server can reach.

- `url_problem(url)`: http(s) only, a host, no user:password, no fragment tricks; named reasons.
- The host is resolved once and every address it resolves to must be public (not loopback,
  private, link-local, shared, reserved, multicast or unspecified, IPv4 or IPv6); the request then
  connects to that checked address (TLS still verifies the name), so a DNS answer that changes
  between the check and the connect (rebinding) cannot redirect it.
- A redirect is followed only to the same scheme, host and port (at most MAX_REDIRECTS), on the
  address already checked. A response body is read only as far as the caller asks (`read_limit`,
  for the alert channels whose service answers "ok" or a JSON verdict) and only the caller judges
  it; none of it is shown back as an error.
- Any transport failure gets the same text, so the errors cannot map the network behind the server
  (refused, reset and protocol errors all read "could not be reached").

`OUTBOUND_ALLOW_PRIVATE_NETWORKS` (setting) lifts the address rule, for a receiver on the same
network (and the tests' local receivers); the other rules stay.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from django.conf import settings

UNREACHABLE = "the receiver could not be reached"
MAX_REDIRECTS = 3


MAX_RETRY_AFTER = 3600.0  # seconds: a longer Retry-After is taken as this


@dataclass(frozen=True, slots=True)
class OutboundResult:
    ok: bool
    status: int | None
    error: str  # "" when ok
    body: bytes = b""  # the answer's first `read_limit` bytes, for the caller to judge (never to show)
    retry_after: float | None = None  # seconds, from a 429 or 503 answer's Retry-After header


def host_is_local(host: str) -> bool:
    """Whether `host` (a name or an address literal) names this machine or a non-public network,
    judged without a DNS lookup."""
    lowered = host.lower()
    if lowered in {"localhost", "localhost.localdomain"} or lowered.endswith(".localhost"):
        return True
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not _public(literal)


def url_problem(url: str) -> str | None:
    """Why `url` may not be called, or None."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "must be an http:// or https:// URL"
    if parsed.scheme not in {"http", "https"}:
        return "must be an http:// or https:// URL"
    if not parsed.host:
        return "must name a host"
    if parsed.userinfo:
        return "must not carry a user name or password (put credentials in the signing secret)"
    if not settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS and host_is_local(parsed.host):
        return "must not point at this server or its private network"
    return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _resolve(host: str, port: int) -> str | None:
    """The first address of `host` if every address it resolves to may be called, else None."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        return None
    if not settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS and not all(_public(ipaddress.ip_address(a)) for a in addresses):
        return None
    return addresses[0]


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the delay form; an HTTP date is ignored), at most MAX_RETRY_AFTER."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not (seconds >= 0):  # also refuses NaN
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _read(response: httpx.Response, limit: int) -> bytes:
    if limit <= 0:
        return b""
    out = bytearray()
    for chunk in response.iter_bytes():
        out += chunk
        if len(out) >= limit:
            break
    return bytes(out[:limit])


def outbound_post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, read_limit: int = 0
) -> OutboundResult:
    """POST `body` to `url` under the rules above; never raises. The answer's first `read_limit`
    bytes come back in `body` (the rest is never read)."""
    if (problem := url_problem(url)) is not None:
        return OutboundResult(False, None, f"refused: the URL {problem}")
    target = httpx.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    address = _resolve(target.host, port)
    if address is None:
        return OutboundResult(False, None, f"refused: {target.host} does not resolve to a public address")
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request_headers = {**headers, "Host": target.netloc.decode("ascii")}
    current = target
    answer = b""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                pinned = current.copy_with(host=address)
                request = client.build_request(
                    "POST", pinned, content=body, headers=request_headers, extensions=extensions
                )
                response = client.send(request, stream=True)
                if not response.is_redirect:
                    answer = _read(response, read_limit)
                    response.close()
                    break
                response.close()
                following = current.join(response.headers.get("location", ""))
                if (following.scheme, following.host, following.port) != (target.scheme, target.host, target.port):
                    return OutboundResult(
                        False,
                        response.status_code,
                        f"HTTP {response.status_code}: redirect to another host ({following.host}) refused",
                    )
                current = following
            else:
                return OutboundResult(False, response.status_code, f"more than {MAX_REDIRECTS} redirects")
    except httpx.TimeoutException:
        return OutboundResult(False, None, f"{UNREACHABLE} (timed out)")
    except httpx.HTTPError:
        return OutboundResult(False, None, UNREACHABLE)
    if response.is_success:
        return OutboundResult(True, response.status_code, "", answer)
    retry_after = _retry_after(response.headers.get("retry-after")) if response.status_code in (429, 503) else None
    # The status only: the answer's body is never shown back.
    return OutboundResult(
        False, response.status_code, f"HTTP {response.status_code} {response.reason_phrase}", answer, retry_after
    )
