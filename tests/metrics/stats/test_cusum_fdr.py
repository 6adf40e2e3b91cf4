"""The slow-drift CUSUM and the Benjamini–Hochberg cutoff on values worked out by hand."""

from __future__ import annotations

import math
import random

import pytest

from metrics.stats.cusum import bernoulli_cusum, rate_drift
from metrics.stats.fdr import benjamini_hochberg


def test_bernoulli_cusum__three_hours__statistic_run_and_p_value_by_hand() -> None:
    # p0 = 0.2, p1 = 0.4: a hit adds ln 2, a miss ln(0.6/0.8).
    hit, miss = math.log(2), math.log(0.75)
    c = bernoulli_cusum([(3, 10), (0, 10), (5, 10)], 0.2, 0.4)
    # hour 1: 3·ln2 + 7·ln0.75 = 0.0657 > 0; hour 2 falls below 0 (reset); hour 3: 5·ln2 + 5·ln0.75
    assert c.statistic == pytest.approx(5 * hit + 5 * miss)  # 2.0273
    assert c.peak == pytest.approx(5 * hit + 5 * miss)
    assert (c.run_start, c.run_x, c.run_n) == (2, 5, 10)
    assert c.p_value == pytest.approx(3 * math.exp(-(5 * hit + 5 * miss)))  # 0.395


def test_bernoulli_cusum__falling_rate__watched_with_p1_below_p0() -> None:
    c = bernoulli_cusum([(5, 10)], 0.9, 0.7)
    assert c.statistic == pytest.approx(5 * math.log(0.7 / 0.9) + 5 * math.log(0.3 / 0.1))  # 4.2365
    assert c.p_value == pytest.approx(math.exp(-c.statistic))


def test_bernoulli_cusum__cap__bounds_the_statistic() -> None:
    c = bernoulli_cusum([(10, 10)] * 5, 0.1, 0.5, cap=4.0)
    assert c.statistic == 4.0
    assert (c.run_start, c.run_n) == (0, 50)


@pytest.mark.parametrize(("p0", "p1"), [(0.0, 0.5), (0.5, 0.5), (0.2, 1.0)])
def test_bernoulli_cusum__rates_outside_the_open_interval__refused(p0: float, p1: float) -> None:
    with pytest.raises(ValueError, match="distinct rates"):
        bernoulli_cusum([(1, 2)], p0, p1)


def _series(rng: random.Random, hours: int, n: int, p: float) -> list[tuple[int, int]]:
    return [(sum(rng.random() < p for _ in range(n)), n) for _ in range(hours)]


def test_rate_drift__no_change__quiet_in_200_series() -> None:
    rng = random.Random(5)
    fired = 0
    for _ in range(200):
        base = sum(x for x, _ in _series(rng, 100, 20, 0.2))
        f = rate_drift(
            _series(rng, 72, 20, 0.2), base, 2000, detector="d", subject="s", alternative="greater", min_points=0.04
        )
        fired += f.fired
    assert fired == 0


def test_rate_drift__rise_of_ten_points_over_three_days__fires_with_its_numbers() -> None:
    rng = random.Random(7)
    series = _series(rng, 72, 20, 0.30)
    f = rate_drift(series, 400, 2000, detector="d", subject="s", alternative="greater", min_points=0.04)
    assert f.fired
    assert f.severity == "ticket"
    n = f.evidence.numbers
    assert n["baseline_rate"] == pytest.approx(400.5 / 2001)
    assert n["alternative_rate"] == pytest.approx(400.5 / 2001 + 0.04)
    assert f.evidence.p_value is not None
    assert f.evidence.p_value < 1e-5
    assert f.evidence.p_value == pytest.approx(min(1.0, 72 * math.exp(-n["statistic"])))


def test_rate_drift__small_baseline__learning_not_an_alert() -> None:
    f = rate_drift([(20, 20)] * 72, 10, 499, detector="d", subject="s", alternative="greater", min_points=0.04)
    assert f.status == "insufficient_data"
    assert "learning, baseline n=499 of the 500 needed" in f.summary


def test_rate_drift__fall_with_a_target__judged_toward_the_target() -> None:
    f = rate_drift([(60, 100)] * 10, 900, 1000, detector="d", subject="s", alternative="less", min_points=0.04)
    assert f.fired
    assert f.evidence.numbers["alternative_rate"] == pytest.approx(900.5 / 1001 - 0.04)
    g = rate_drift(
        [(2, 100)] * 10, 10, 1000, detector="d", subject="s", alternative="greater", min_points=0.04, target=0.05
    )
    assert not g.fired  # 2% is below the midpoint to the 5% target: no drift toward it
    assert g.evidence.numbers["alternative_rate"] == 0.05


def test_benjamini_hochberg__textbook_example__cutoff_at_the_largest_passing_rank() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    assert benjamini_hochberg(p, 0.05) == 0.008  # ranks k·0.005: 0.005, 0.010 pass, 0.039 > 0.015 …


def test_benjamini_hochberg__step_up__a_later_rank_lifts_the_earlier_ones() -> None:
    assert benjamini_hochberg([0.04, 0.04], 0.05) == 0.04  # 0.04 > 0.025 at rank 1, ≤ 0.05 at rank 2
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.005], 0.05) == 0.04


def test_benjamini_hochberg__nothing_passes__cutoff_zero() -> None:
    assert benjamini_hochberg([0.5, 0.9], 0.05) == 0.0
    assert benjamini_hochberg([], 0.05) == 0.0
    with pytest.raises(ValueError, match="q must be in"):
        benjamini_hochberg([0.1], 0.0)
