"""Proportion changes judged by significance and size, confidence drops and the latency tail."""

from __future__ import annotations

import math

from metrics.stats.shares import latency_tail_rise, mean_drop, proportion_change

BOUNDS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, math.inf)


def test_proportion_change__doubled_share__fires_with_effect_size():
    f = proportion_change(2000, 20000, 7000, 140000, detector="traffic_share", subject="route a", min_ratio=1.5)
    assert f.fired
    assert f.numbers["ratio"] > 1.9
    assert f.numbers["jsd"] > 0
    assert "points above" in f.summary


def test_proportion_change__significant_but_small_relative_change__does_not_fire():
    """40% → 43% at huge n is significant, but not 1.5× the share."""
    f = proportion_change(43000, 100000, 280000, 700000, detector="traffic_share", subject="s", min_ratio=1.5)
    assert f.numbers["p_value"] < 1e-10
    assert not f.fired


def test_proportion_change__wrong_direction__does_not_fire():
    f = proportion_change(100, 1000, 3000, 10000, detector="escalation_band", subject="s", alternative="greater")
    assert not f.fired


def test_proportion_change__small_baseline__learning_not_ok():
    f = proportion_change(50, 400, 10, 100, detector="escalation_band", subject="route a: tier 1→2 escalation")
    assert f.status == "insufficient_data"
    assert "learning" in f.summary


def test_mean_drop__confidence_falls_by_a_tenth__fires_not_on_noise():
    assert mean_drop(0.70 * 2000, 2000, 0.80 * 14000, 14000, detector="confidence_drift", subject="c").fired
    assert not mean_drop(0.79 * 2000, 2000, 0.80 * 14000, 14000, detector="confidence_drift", subject="c").fired


def test_latency_tail_rise__slower_tail__fires_same_tail__does_not():
    base = [0, 0, 0, 0, 1000, 6000, 600, 50, 0, 0, 0]
    same = [0, 0, 0, 0, 150, 860, 85, 8, 0, 0, 0]
    slower = [0, 0, 0, 0, 50, 600, 400, 80, 0, 0, 0]
    assert not latency_tail_rise(BOUNDS, same, base, detector="latency_p95_regression", subject="l").fired
    assert latency_tail_rise(BOUNDS, slower, base, detector="latency_p95_regression", subject="l").fired


def test_latency_tail_rise__lower_edge__counts_from_the_p95_buckets_lower_bound():
    """Baseline p95 inside 1000–2500 ms: the upper edge (2500) has 0.2% above it and a 1.4×
    slowdown lifts that by about a point (not a regression by size); the lower edge (1000) has 15%
    above it and the slowdown takes it to 36%."""
    base = [0, 0, 0, 0, 500, 8000, 1460, 40, 0, 0, 0]  # 10 000 attempts: 15% ≥ 1000 ms, 0.4% ≥ 2500 ms
    slower = [0, 0, 0, 0, 100, 540, 340, 20, 0, 0, 0]  # 1000 attempts: 36% ≥ 1000 ms, 2% ≥ 2500 ms
    upper = latency_tail_rise(BOUNDS, slower, base, detector="latency_p95_regression", subject="l")
    lower = latency_tail_rise(BOUNDS, slower, base, detector="latency_p95_regression", subject="l", edge_of="lower")
    assert not upper.fired  # +1.6 points: under the 2-point minimum
    assert (upper.numbers["x"], upper.numbers["baseline_x"]) == (20, 40)
    assert lower.fired
    assert (lower.numbers["x"], lower.numbers["n"]) == (360, 1000)
    assert (lower.numbers["baseline_x"], lower.numbers["baseline_n"]) == (1500, 10000)
    assert "share slower than 1000 ms" in lower.summary
