"""Synthetic streams: injected changes are caught in time by the right detector, clean ones stay quiet.

The full measurement (200 seeds per volume) is ``python -m metrics.stats.false_alarms``; these
tests run a few seeds of the same harness to keep the suite fast.
"""

from __future__ import annotations

import pytest

from metrics.stats import simulate
from metrics.stats.false_alarms import false_alarm_rates
from metrics.stats.simulate import DETECTORS, Scenario

DRIFT = {
    "escalation_band",
    "pass_rate_drop",
    "cost_per_request_regression",
    "latency_p95_regression",
    "mix_shift_ticket",
    "mix_shift_info",
    "error_spike",
}

# (scenario, detector that must fire, max hours of changed data before it does, others allowed).
# The delay bounds are the worst of 50 seeds in docs/alerts.md plus about two hours.
CHANGES = [
    (Scenario("escalation", escalation=(0.25, 0.40)), "escalation_band", 14, set()),
    (Scenario("pass rate", pass_rate=(0.95, 0.88)), "pass_rate_drop", 10, set()),
    (Scenario("cost", cost_mult=(1.0, 1.5)), "cost_per_request_regression", 14, set()),
    (Scenario("outage", failure=(0.02, 0.30)), "error_spike", 1, set()),
    (Scenario("latency", latency_mult=(1.0, 1.6)), "latency_p95_regression", 10, set()),
    (Scenario("mix", mix=(simulate.BASE_MIX, simulate.MAJOR_SHIFT_MIX)), "mix_shift_ticket", 20, {"mix_shift_info"}),
    (Scenario("spend spike", cost_mult=(1.0, 20.0)), "burn_rate_monthly_page", 2, None),
    (Scenario("spend spike", cost_mult=(1.0, 20.0)), "burn_rate_daily_page", 1, None),
    (Scenario("spend leak", cost_mult=(1.0, 8.0)), "burn_rate_monthly_ticket", 6, None),
]


@pytest.mark.parametrize(
    ("scenario", "detector", "max_delay", "also"), CHANGES, ids=[f"{c[0].name}-{c[1]}" for c in CHANGES]
)
@pytest.mark.parametrize("seed", [11, 12])
def test_injected_change__detected_in_time_and_not_before(scenario, detector, max_delay, also, seed):
    fired = simulate.evaluate(simulate.generate(scenario, seed))
    change = scenario.change_hour
    assert [h for h in fired[detector] if h < change] == []
    first = simulate.first_alert(fired[detector], change)
    assert first is not None, f"{detector} never fired"
    assert first - change + 1 <= max_delay
    if also is not None:  # the change is attributed to the right detector, not to others
        assert {d for d in DRIFT if fired[d]} == {detector} | also


def test_clean_streams_100_per_hour__no_detector_fires():
    rates = false_alarm_rates(Scenario(), range(100, 104))
    assert {d: r.evaluations_fired for d, r in rates.items()} == dict.fromkeys(DETECTORS, 0.0)


def test_clean_streams_20_per_hour__false_alarms_stay_under_half_a_percent_of_evaluations():
    rates = false_alarm_rates(Scenario(requests_per_hour=20), range(200, 205))
    assert max(r.evaluations_fired for r in rates.values()) <= 0.005


def test_escalation_on_band_edge__fires_rarely():
    """A true rate exactly on the band edge is in band; 99% intervals keep alerts rare."""
    rates = false_alarm_rates(Scenario(escalation=(0.30, 0.30)), range(300, 303))
    assert rates["escalation_band"].evaluations_fired <= 0.02
