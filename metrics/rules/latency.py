"""Latency quantiles from the rollups' histogram buckets: one set of bounds, one method."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from metrics.schema import BUCKET_FIELDS, LATENCY_BOUNDS_MS
from metrics.stats.histogram import histogram_quantile

# The buckets' upper bounds as the quantile method takes them: the open last bucket ends at +inf.
QUANTILE_BOUNDS: tuple[float, ...] = (*map(float, LATENCY_BOUNDS_MS), math.inf)
# The quantiles every latency table and chart shows.
QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)


def latency_quantile(buckets: Sequence[int], q: float) -> float | None:
    """The q-quantile (0..1) in ms of a latency histogram in the rollups' buckets (None when empty).

    Linear interpolation inside the bucket holding the rank; in the open last bucket, its lower
    bound (what is known for sure). See `metrics.stats.histogram.histogram_quantile`.
    """
    return histogram_quantile(QUANTILE_BOUNDS, buckets, q)


def latency_quantiles(buckets: Sequence[int]) -> dict[str, float | None]:
    """{"p50", "p95", "p99"} in ms."""
    return {f"p{round(q * 100)}": latency_quantile(buckets, q) for q in QUANTILES}


def buckets_of(row: Mapping[str, Any], prefix: str = "") -> list[int]:
    """The histogram of a rollup row or aggregate (`prefix` + each bucket field; NULL is 0)."""
    return [int(row.get(f"{prefix}{name}") or 0) for name in BUCKET_FIELDS]
