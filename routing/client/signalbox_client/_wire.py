"""The protocol's wire details as the SDK sees them: paths and limits, record timestamps and event
ids, JSON parsing, ``Retry-After``, and the clamps applied to a decision record's fields."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from . import protocol
from ._version import __version__

PROTOCOL_PREFIX = protocol.CLIENT_PREFIX
MAX_BATCH_RECORDS = protocol.MAX_BATCH_RECORDS
MAX_BATCH_BYTES = protocol.MAX_BATCH_BYTES
MAX_ATTRIBUTES = protocol.MAX_ATTRIBUTES
RETRY_AFTER_CAP = 300.0
POST_HEADERS = {"Content-Type": "application/json"}

SDK_VERSION = __version__

_second_cache: tuple[int, str] = (-1, "")


def rfc3339(epoch: float) -> str:
    """Return ``epoch`` as RFC 3339 UTC with microseconds, e.g. ``2026-11-22T06:54:10.123456Z``."""
    global _second_cache
    seconds = int(epoch)
    micros = round((epoch - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    cached_second, prefix = _second_cache  # one tuple: a racing thread sees old or new, whole
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_cache = (seconds, prefix)
    return f"{prefix}.{micros:06d}Z"


def uuid4_str() -> str:
    """A random (version 4) UUID in its canonical text form; uuid.uuid4() costs 4x more."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def loads_json(data: bytes | str) -> Any:
    """``json.loads``, with a document nested too deeply to parse reported as a ValueError."""
    try:
        return json.loads(data)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now_epoch
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def sanitize_attributes(values: Mapping[str, Any] | None) -> dict[str, Any]:
    if not values:
        return {}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if len(out) >= MAX_ATTRIBUTES:
            break
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool) or (isinstance(value, float) and not math.isfinite(value)):
            value = str(value)
        out[str(key)] = value
    return out


def clamp_confidence(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number):
        return None
    return min(max(number, 0.0), 1.0)


def clamp_tokens(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def clamp_cost(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None
