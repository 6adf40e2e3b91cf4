"""Drift detectors: when they fire, when they stay quiet, and the evidence they state."""

from __future__ import annotations

import math

import pytest

from metrics.stats import (
    cost_per_request_regression,
    error_spike,
    escalation_band,
    latency_p95_regression,
    mix_shift,
    pass_rate_drop,
)

BAND = (0.20, 0.30)


def test_escalation_band__credibly_above__alerts_with_interval_in_summary():
    f = escalation_band(169, 412, band=BAND, confidence=0.95, subject="tier 1→2 escalation", window="the last 24 h")
    assert f.fired
    assert f.severity == "ticket"
    assert f.numbers["direction"] == "above"
    assert f.summary == (
        "tier 1→2 escalation 41% (95% CI 36–46%) is above the expected 20–30% over the last 24 h, n=412"
    )
    assert f.evidence.test == "Wilson score interval, 95%"
    lo, hi = f.evidence.interval
    assert lo > 0.30
    assert hi > lo


def test_escalation_band__point_outside_but_interval_overlapping__does_not_alert():
    # 14/40 = 35% is above the band, but its 99% interval reaches well below 30%.
    f = escalation_band(14, 40, band=BAND, min_samples=10)
    assert f.status == "ok"
    assert f.numbers["direction"] == "within"


def test_escalation_band__credibly_below__alerts_below():
    f = escalation_band(40, 1000, band=BAND)
    assert f.fired
    assert f.numbers["direction"] == "below"


def test_escalation_band__too_few_requests__insufficient_data_not_ok():
    f = escalation_band(40, 45, band=BAND)
    assert f.status == "insufficient_data"
    assert not f.fired
    assert "n=45 < 50" in f.summary


@pytest.mark.parametrize(
    ("judge", "detector", "stated"),
    [
        (lambda: escalation_band(100, 60, band=BAND), "escalation_band", "100 escalations of 60"),
        (lambda: pass_rate_drop(300, 250, 900, 1000), "pass_rate_drop", "300 passes of 250"),
        (lambda: pass_rate_drop(200, 250, 1100, 1000), "pass_rate_drop", "200 passes of 250, baseline 1100 of 1000"),
        (lambda: error_spike(80, 60, 0, 1000), "error_spike", "80 failures of 60"),
    ],
)
def test_detectors__more_successes_than_trials__insufficient_data_naming_the_counts(judge, detector, stated):
    """Counts no sample can have (escalations without the lower tier's attempts in the logs) are
    no verdict, not a ValueError from the interval or the test."""
    f = judge()
    assert (f.detector, f.status, f.fired) == (detector, "insufficient_data", False)
    assert f"inconsistent counts, {stated}" in f.summary


def test_pass_rate_drop__significant_and_material__alerts():
    f = pass_rate_drop(2110, 2400, 15960, 16800, window="the last 24 h", baseline_window="the previous 7 days")
    assert f.fired
    assert f.numbers["drop"] == pytest.approx(0.95 - 2110 / 2400)
    assert f.evidence.p_value < 1e-10
    assert f.evidence.statistic < 0
    assert "points below the baseline 95.0%" in f.summary
    assert "the previous 7 days" in f.summary


def test_pass_rate_drop__significant_but_under_min_drop__does_not_alert():
    # 94.0% vs 95.0% at huge n: p ≈ 4e-39, but only one point.
    f = pass_rate_drop(94_000, 100_000, 475_000, 500_000)
    assert f.evidence.p_value < 1e-10
    assert not f.fired


def test_pass_rate_drop__large_but_not_significant__does_not_alert():
    # 5 points down on 200 requests: p ≈ 0.003, above alpha.
    f = pass_rate_drop(180, 200, 950, 1000)
    assert f.numbers["drop"] == pytest.approx(0.05)
    assert not f.fired


def test_pass_rate_drop__rise__never_alerts():
    f = pass_rate_drop(990, 1000, 900, 1000)
    assert not f.fired
    assert "points above" in f.summary


def test_cost_per_request__over_ratio__alerts_with_ratio():
    f = cost_per_request_regression(15.0, 1000, 50.0, 5000)
    assert f.fired
    assert f.evidence.statistic == pytest.approx(1.5)


def test_cost_per_request__under_ratio_or_too_few__no_alert():
    assert not cost_per_request_regression(12.0, 1000, 50.0, 5000).fired  # 1.2×
    assert cost_per_request_regression(15.0, 100, 50.0, 5000).status == "insufficient_data"


def test_cost_per_request__free_baseline__infinite_ratio_alerts():
    f = cost_per_request_regression(1.0, 1000, 0.0, 5000)
    assert f.fired
    assert math.isinf(f.numbers["ratio"])


BOUNDS = [250, 500, 1000, 2000, 4000, math.inf]


def test_latency_p95__regression_above_floor__alerts():
    base = [0, 100, 700, 200, 0, 0]  # p95 = 1000 + 1000·(950−800)/200 = 1750
    cur = [0, 50, 400, 400, 150, 0]  # p95 = 2000 + 2000·(950−850)/150 = 3333
    f = latency_p95_regression(BOUNDS, cur, base)
    assert f.numbers["baseline_p95_ms"] == pytest.approx(1750)
    assert f.numbers["p95_ms"] == pytest.approx(2000 + 2000 * 100 / 150)
    assert f.fired


def test_latency_p95__regression_under_floor__no_alert():
    base = [1000, 0, 0, 0, 0, 0]  # p95 = 237.5
    cur = [500, 500, 0, 0, 0, 0]  # p95 = 475: 2× but under 500 ms
    f = latency_p95_regression(BOUNDS, cur, base)
    assert f.numbers["ratio"] > 1.3
    assert not f.fired


def test_mix_shift__identical_mix__ok():
    mix = {"chat": 400, "code": 300, "extract": 300}
    f = mix_shift(mix, {k: 7 * v for k, v in mix.items()})
    assert f.status == "ok"
    assert f.numbers["jsd"] < 1e-6


def test_mix_shift__major_shift__ticket_naming_the_movers():
    f = mix_shift(
        {"chat": 200, "code": 700, "extract": 100}, {"chat": 2500, "code": 500, "extract": 2000}, subject="model mix"
    )
    assert f.fired
    assert f.severity == "ticket"
    assert f.numbers["psi"] > 0.25
    assert f.numbers["top_movers"][0]["category"] == "code"
    assert f.summary.startswith("model mix over")


def test_mix_shift__moderate_shift__info_level_alert():
    f = mix_shift({"a": 530, "b": 470}, {"a": 7000, "b": 3000})
    assert 0.1 <= f.numbers["psi"] < 0.25
    assert f.fired
    assert f.severity == "info"


def test_mix_shift__new_category__finite_and_counted():
    f = mix_shift({"chat": 500, "brand_new": 500}, {"chat": 1000})
    assert math.isfinite(f.numbers["psi"])
    assert f.fired


def test_mix_shift__small_window__insufficient_data():
    assert mix_shift({"a": 100}, {"a": 5000}).status == "insufficient_data"


def test_error_spike__outage__pages():
    f = error_spike(30, 100, 50, 2500, window="the last hour", baseline_window="the previous 24 h")
    assert f.fired
    assert f.severity == "page"
    assert f.numbers["limit"] == pytest.approx(0.06)  # 3 × 2%
    assert f.evidence.interval[0] > 0.06


def test_error_spike__few_failures_in_a_quiet_hour__does_not_page():
    # 4/30 = 13% is above the 5% floor as a point, but 30 requests are under min_samples.
    assert error_spike(4, 30, 50, 2500).status == "insufficient_data"
    assert not error_spike(6, 60, 50, 2500).fired  # 10%, lower bound ≈ 4.7%


def test_error_spike__no_baseline__judged_against_the_floor():
    f = error_spike(20, 100, 0, 10)
    assert f.fired
    assert f.numbers["baseline_rate"] is None
    assert f.numbers["limit"] == 0.05


def test_finding__to_dict__is_json_ready():
    import json

    f = error_spike(30, 100, 50, 2500)
    data = json.loads(json.dumps(f.to_dict()))
    assert data["detector"] == "error_spike"
    assert data["evidence"]["numbers"]["failures"] == 30
