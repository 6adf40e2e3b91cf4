"""Jensen–Shannon divergence and PSI."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.stats import (
    jensen_shannon_divergence,
    population_stability_index,
    smoothed_distributions,
)


def test_jsd__identical_distributions__is_zero():
    p = {"chat": 40, "code": 10, "extract": 50}
    assert jensen_shannon_divergence(p, p) == 0.0


def test_jsd__disjoint_distributions__is_one_bit():
    assert jensen_shannon_divergence({"a": 1, "b": 1}, {"c": 3}) == pytest.approx(1.0)


def test_jsd__known_value():
    # P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4):
    # ½·log2(4/3) + ½·(½·log2(2/3) + ½·log2(2)) = 0.311278
    assert jensen_shannon_divergence({"a": 1}, {"a": 1, "b": 1}) == pytest.approx(0.311278, abs=1e-6)


def test_psi__worked_example():
    # expected (0.5, 0.3, 0.2), actual (0.4, 0.3, 0.3):
    # (0.4−0.5)·ln(0.8) + 0 + (0.3−0.2)·ln(1.5) = 0.022314 + 0.040547 = 0.062861
    psi = population_stability_index({"a": 0.4, "b": 0.3, "c": 0.3}, {"a": 0.5, "b": 0.3, "c": 0.2})
    assert psi == pytest.approx(0.062861, abs=1e-6)


def test_psi__category_empty_on_one_side__infinite_unless_smoothed():
    current, baseline = {"a": 90, "b": 10}, {"a": 100}
    assert population_stability_index(current, baseline) == math.inf
    p, q = smoothed_distributions(current, baseline)
    assert q["b"] == pytest.approx(0.5 / 101)
    assert math.isfinite(population_stability_index(p, q))


def test_smoothed_distributions__cover_the_union_and_sum_to_one():
    p, q = smoothed_distributions({"a": 3}, {"b": 1})
    assert set(p) == set(q) == {"a", "b"}
    assert sum(p.values()) == pytest.approx(1.0)
    assert p == {"a": 3.5 / 4, "b": 0.5 / 4}


weights = st.dictionaries(st.sampled_from("abcdefgh"), st.floats(min_value=0, max_value=1e6), min_size=1).filter(
    lambda d: sum(d.values()) > 0
)


@given(p=weights, q=weights)
def test_jsd__symmetric_and_bounded(p, q):
    a, b = jensen_shannon_divergence(p, q), jensen_shannon_divergence(q, p)
    assert a == pytest.approx(b, abs=1e-12)
    assert 0.0 <= a <= 1.0


@given(p=weights, q=weights)
def test_psi__smoothed__non_negative_symmetric_and_finite(p, q):
    a, b = smoothed_distributions(p, q)
    psi = population_stability_index(a, b)
    assert psi >= 0.0
    assert math.isfinite(psi)
    assert psi == pytest.approx(population_stability_index(b, a), rel=1e-9, abs=1e-12)
