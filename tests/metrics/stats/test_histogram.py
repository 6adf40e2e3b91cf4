"""Quantiles from latency buckets."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.stats import histogram_quantile, sum_histograms

BOUNDS = [100, 200, 500, 1000, math.inf]


def test_histogram_quantile__interpolates_linearly_inside_the_bucket():
    # 100 observations: 50 in (0,100], 30 in (100,200], 20 in (200,500].
    # p95: rank 95, 80 below the third bucket, 15 of its 20 → 200 + 300 · 15/20 = 425.
    assert histogram_quantile(BOUNDS, [50, 30, 20, 0, 0], 0.95) == pytest.approx(425.0)
    # median: rank 50 is exactly the first bucket's upper bound.
    assert histogram_quantile(BOUNDS, [50, 30, 20, 0, 0], 0.5) == pytest.approx(100.0)


def test_histogram_quantile__all_in_first_bucket__interpolates_from_zero():
    assert histogram_quantile(BOUNDS, [40, 0, 0, 0, 0], 0.95) == pytest.approx(95.0)
    assert histogram_quantile(BOUNDS, [40, 0, 0, 0, 0], 0.0) == 0.0


def test_histogram_quantile__rank_in_inf_bucket__returns_highest_finite_bound():
    assert histogram_quantile(BOUNDS, [10, 0, 0, 0, 90], 0.95) == 1000.0
    assert histogram_quantile(BOUNDS, [0, 0, 0, 0, 5], 0.5) == 1000.0


def test_histogram_quantile__empty__is_none():
    assert histogram_quantile(BOUNDS, [0, 0, 0, 0, 0], 0.95) is None


def test_histogram_quantile__skips_empty_buckets_before_the_rank():
    # q=0 lands where the first observation is, not at 0.
    assert histogram_quantile(BOUNDS, [0, 0, 10, 0, 0], 0.0) == 200.0


@pytest.mark.parametrize(
    ("bounds", "counts", "q"),
    [([100, 200], [1], 0.5), ([200, 100], [1, 1], 0.5), ([100, 200], [1, 1], 1.5), ([100, 200], [1, -1], 0.5)],
)
def test_histogram_quantile__malformed_input__rejected(bounds, counts, q):
    with pytest.raises(ValueError, match=r"bounds|q must be|counts"):
        histogram_quantile(bounds, counts, q)


@given(
    counts=st.lists(st.integers(0, 1000), min_size=5, max_size=5).filter(lambda c: sum(c) > 0),
    q1=st.floats(0, 1),
    q2=st.floats(0, 1),
)
def test_histogram_quantile__is_monotone_in_q_and_within_bounds(counts, q1, q2):
    lo, hi = sorted((q1, q2))
    a, b = histogram_quantile(BOUNDS, counts, lo), histogram_quantile(BOUNDS, counts, hi)
    assert a is not None
    assert b is not None
    assert 0.0 <= a <= b <= 1000.0


def test_sum_histograms__adds_per_bucket():
    assert sum_histograms([[1, 2, 3], [4, 5, 6]]) == [5, 7, 9]
    assert sum_histograms([]) == []
    with pytest.raises(ValueError, match="different bucket counts"):
        sum_histograms([[1, 2], [1, 2, 3]])
