"""Quantiles from bucketed latency histograms (the shape hourly rollups store)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence


def histogram_quantile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """Estimate the ``q``-quantile of observations recorded in buckets.

    ``bounds`` are the buckets' upper bounds, strictly increasing (``math.inf`` allowed last);
    ``counts[i]`` is the number of observations in (bounds[i−1], bounds[i]] (per-bucket counts,
    not cumulative). The first bucket starts at 0 (latencies are non-negative).

    Method (the one Prometheus ``histogram_quantile`` uses): rank = q · total; find the first
    non-empty bucket whose cumulative count reaches the rank; assume its observations are spread
    uniformly and interpolate linearly::

        value = lower + (upper − lower) · (rank − count_below) / count_in_bucket

    The estimate is exact at bucket bounds and off by at most one bucket width inside, so choose
    bounds that are tight where the p95 lives. When the rank falls in the open-ended +inf bucket
    the quantile cannot be located: the highest finite bound is returned, a lower bound on the
    true value (an alert computed from it understates, never overstates, the regression).
    Returns None when the histogram is empty.
    """
    if len(bounds) != len(counts):
        raise ValueError(f"{len(bounds)} bounds but {len(counts)} counts")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    if any(b2 <= b1 for b1, b2 in itertools.pairwise(bounds)):
        raise ValueError("bounds must be strictly increasing")
    if any(c < 0 for c in counts):
        raise ValueError("counts must be non-negative")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0.0
    for i, count in enumerate(counts):
        if count > 0 and below + count >= rank:
            upper = bounds[i]
            lower = bounds[i - 1] if i > 0 else 0.0
            if math.isinf(upper):
                finite = [b for b in bounds if not math.isinf(b)]
                return float(finite[-1]) if finite else None
            lower = min(lower, upper)  # a first bound <= 0 is its own bucket
            return lower + (upper - lower) * max(0.0, rank - below) / count
        below += count
    raise AssertionError("unreachable: rank <= total")  # pragma: no cover


def sum_histograms(histograms: Iterable[Sequence[int]]) -> list[int]:
    """Add per-bucket counts of histograms sharing the same bounds (hourly rollups into a window)."""
    total: list[int] | None = None
    for h in histograms:
        if total is None:
            total = list(h)
        elif len(h) != len(total):
            raise ValueError("histograms have different bucket counts")
        else:
            total = [a + b for a, b in zip(total, h, strict=True)]
    return total or []
