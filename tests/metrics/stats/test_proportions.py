"""Wilson interval and two-proportion z-test against published and hand-computed values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.stats import two_proportion_z_test, wilson_interval


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table II,
# method 3 (score, no continuity correction); 5/10 is the textbook symmetric case.
@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval__matches_published_95_percent_limits(successes, n, low, high):
    ci = wilson_interval(successes, n)
    assert (round(ci.low, 4), round(ci.high, 4)) == (low, high)
    assert ci.estimate == successes / n


def test_wilson_interval__all_successes__upper_limit_is_exactly_one():
    ci = wilson_interval(10, 10)
    assert ci.high == 1.0
    assert round(ci.low, 4) == 0.7225  # mirror of 0/10


def test_wilson_interval__no_observations__is_the_whole_unit_interval():
    ci = wilson_interval(0, 0)
    assert (ci.low, ci.high) == (0.0, 1.0)


def test_wilson_interval__99_percent__is_wider_than_95():
    assert wilson_interval(81, 263, 0.99).low < wilson_interval(81, 263, 0.95).low


@pytest.mark.parametrize(("successes", "n"), [(-1, 10), (11, 10), (0, -1)])
def test_wilson_interval__impossible_counts__rejected(successes, n):
    with pytest.raises(ValueError, match="need 0 <= successes <= n"):
        wilson_interval(successes, n)


@given(
    n=st.integers(min_value=1, max_value=100_000),
    frac=st.floats(min_value=0, max_value=1),
    confidence=st.floats(min_value=0.5, max_value=0.999),
)
def test_wilson_interval__contains_the_point_estimate_and_stays_in_unit_interval(n, frac, confidence):
    successes = round(frac * n)
    ci = wilson_interval(successes, n, confidence)
    assert 0.0 <= ci.low <= ci.estimate <= ci.high <= 1.0
    assert ci.high - ci.low > 0


def test_two_proportion_z__matches_hand_computation():
    # current 180/200 = 0.90 vs baseline 950/1000 = 0.95; pooled 1130/1200 = 0.941667
    # se = sqrt(0.941667 · 0.058333 · (1/200 + 1/1000)) = 0.018155; z = -0.05 / 0.018155 = -2.7541
    # one-sided p = Φ(-2.7541) = 0.002943
    t = two_proportion_z_test(180, 200, 950, 1000, "less")
    assert t.pooled == pytest.approx(1130 / 1200)
    assert t.z == pytest.approx(-2.7541, abs=1e-4)
    assert t.p_value == pytest.approx(0.002943, abs=1e-6)
    assert t.difference == pytest.approx(-0.05)


def test_two_proportion_z__two_sided_is_twice_the_smaller_tail():
    less = two_proportion_z_test(180, 200, 950, 1000, "less")
    both = two_proportion_z_test(180, 200, 950, 1000, "two-sided")
    greater = two_proportion_z_test(180, 200, 950, 1000, "greater")
    assert both.p_value == pytest.approx(2 * less.p_value)
    assert greater.p_value == pytest.approx(1 - less.p_value)


def test_two_proportion_z__far_tail__p_value_does_not_underflow_to_zero():
    t = two_proportion_z_test(800, 1000, 9900, 10000, "less")
    assert 0.0 < t.p_value < 1e-100


def test_two_proportion_z__no_variance__gives_no_evidence():
    t = two_proportion_z_test(100, 100, 500, 500, "less")
    assert (t.z, t.p_value) == (0.0, 1.0)


@given(
    x1=st.integers(0, 500),
    x2=st.integers(0, 500),
    extra1=st.integers(1, 500),
    extra2=st.integers(1, 500),
)
def test_two_proportion_z__swapping_samples_negates_z(x1, x2, extra1, extra2):
    n1, n2 = x1 + extra1, x2 + extra2
    a = two_proportion_z_test(x1, n1, x2, n2)
    b = two_proportion_z_test(x2, n2, x1, n1)
    assert a.z == pytest.approx(-b.z, abs=1e-9)
    assert a.p_value == pytest.approx(b.p_value, abs=1e-12)
    assert not math.isnan(a.p_value)
