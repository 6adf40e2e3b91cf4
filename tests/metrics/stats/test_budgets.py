"""Budget thresholds, forecast, runway and multi-window burn rate."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.stats import (
    DAILY_BURN_RATE_RULES,
    MONTHLY_BURN_RATE_RULES,
    budget_forecast_overrun,
    budget_thresholds,
    burn_rate,
    burn_rate_alert,
    burn_rate_rules_for_period,
    forecast_linear,
    forecast_recent,
    runway_days,
    thresholds_newly_crossed,
)


def test_thresholds__reports_only_newly_crossed():
    assert thresholds_newly_crossed(85, 100) == ((0.5, 0.8), (0.5, 0.8))
    assert thresholds_newly_crossed(85, 100, already_crossed=[0.5]) == ((0.5, 0.8), (0.8,))
    assert thresholds_newly_crossed(85, 100, already_crossed=[0.5, 0.8]) == ((0.5, 0.8), ())
    assert thresholds_newly_crossed(100, 100, already_crossed=[0.5, 0.8]) == ((0.5, 0.8, 1.0), (1.0,))


def test_budget_thresholds__severity_follows_highest_new_threshold():
    assert budget_thresholds(55, 100).severity == "info"
    assert budget_thresholds(85, 100, already_crossed=[0.5]).severity == "ticket"
    f = budget_thresholds(120, 100, already_crossed=[0.5], subject="route summarize daily")
    assert f.severity == "page"
    assert f.numbers["newly_crossed"] == [0.8, 1.0]
    assert "crossing 80%, 100%" in f.summary
    assert not budget_thresholds(85, 100, already_crossed=[0.5, 0.8]).fired


def test_forecast__fewer_than_min_days__run_rate():
    f = forecast_linear([10.0, 20.0], period_days=30, elapsed_days=2)
    assert f.method == "run_rate"
    assert f.daily_rate == pytest.approx(15.0)
    assert f.projected == pytest.approx(30 + 15 * 28)


def test_forecast__steady_spend__least_squares_recovers_the_rate():
    f = forecast_linear([10.0] * 10, period_days=30, elapsed_days=10)
    assert f.method == "least_squares"
    assert f.daily_rate == pytest.approx(10.0)
    assert f.projected == pytest.approx(300.0)


def test_forecast__partial_day_is_placed_at_its_time():
    # 3 full days at 10/day, then 5 in the first half of day 4: a steady 10/day.
    f = forecast_linear([10.0, 10.0, 10.0, 5.0], period_days=30, elapsed_days=3.5)
    assert f.method == "least_squares"
    assert f.daily_rate == pytest.approx(10.0)
    assert f.projected == pytest.approx(35 + 10 * 26.5)


def test_forecast__hand_computed_least_squares():
    # cumulative points (0,0), (1,1), (2,3), (3,6): t̄=1.5, C̄=2.5,
    # Sxy = (−1.5)(−2.5)+(−.5)(−1.5)+(.5)(.5)+(1.5)(3.5) = 10, Sxx = 5 → slope 2/day.
    f = forecast_linear([1.0, 2.0, 3.0], period_days=10, elapsed_days=3)
    assert f.daily_rate == pytest.approx(2.0)
    assert f.projected == pytest.approx(6 + 2 * 7)


def test_forecast__nothing_elapsed__method_none():
    f = forecast_linear([], period_days=30, elapsed_days=0)
    assert (f.method, f.projected) == ("none", 0.0)


def test_forecast__wrong_number_of_days__rejected():
    with pytest.raises(ValueError, match="needs 3 daily values"):
        forecast_linear([1.0, 2.0], period_days=30, elapsed_days=3)


@given(
    daily=st.lists(st.floats(min_value=0, max_value=1e4), min_size=1, max_size=31),
    frac=st.floats(min_value=0.01, max_value=1.0),
)
def test_forecast__never_below_spent(daily, frac):
    elapsed = len(daily) - 1 + frac
    f = forecast_linear(daily, period_days=31, elapsed_days=elapsed)
    assert f.projected >= f.spent - 1e-9
    assert f.daily_rate >= 0


def test_forecast_overrun__states_method_and_runway():
    f = budget_forecast_overrun(forecast_linear([10.0] * 10, 30, 10), budget=250)
    assert f.fired
    assert f.severity == "ticket"
    assert f.numbers["method"] == "least_squares"
    assert f.numbers["runway_days"] == pytest.approx(15.0)
    assert "least squares over 10 days" in f.summary
    assert not budget_forecast_overrun(forecast_linear([10.0] * 10, 30, 10), budget=400).fired


def test_runway_days__edges():
    assert runway_days(100, 40, 10) == 6.0
    assert runway_days(100, 120, 10) == 0.0
    assert math.isinf(runway_days(100, 40, 0))


def test_burn_rate__definition():
    # 30-day budget $720 → $1/h sustainable; $14.4 in one hour is burn 14.4.
    assert burn_rate(14.4, 1, 720, 720) == pytest.approx(14.4)


def test_default_rule_tables__consume_2_and_5_percent_of_a_monthly_budget():
    page, ticket = MONTHLY_BURN_RATE_RULES
    assert page.budget_fraction(720) == pytest.approx(0.02)
    assert ticket.budget_fraction(720) == pytest.approx(0.05)
    assert burn_rate_rules_for_period(24) == DAILY_BURN_RATE_RULES
    assert burn_rate_rules_for_period(720) == MONTHLY_BURN_RATE_RULES


def _spend(rate_by_window: dict[int, float]) -> dict[int, float]:
    """Spend per window for a $720 / 720 h budget ($1/h) burning at the given rates."""
    return {m: rate * m / 60 for m, rate in rate_by_window.items()}


def test_burn_rate_alert__fast_and_short_both_high__pages():
    f = burn_rate_alert(_spend({60: 20, 5: 20, 360: 4, 30: 20}), budget=720, period_hours=720)
    assert f.fired
    assert f.severity == "page"
    assert "20.0× the sustainable rate over the last 60 min" in f.summary


def test_burn_rate_alert__spike_already_over__short_window_stops_the_page():
    f = burn_rate_alert(_spend({60: 20, 5: 1, 360: 4, 30: 1}), budget=720, period_hours=720)
    assert not f.fired


def test_burn_rate_alert__slow_leak__tickets():
    f = burn_rate_alert(_spend({60: 7, 5: 7, 360: 7, 30: 7}), budget=720, period_hours=720)
    assert f.fired
    assert f.severity == "ticket"
    assert [r["fired"] for r in f.numbers["rules"]] == [False, True]


def test_burn_rate_alert__missing_window__rejected():
    with pytest.raises(ValueError, match="no spend for the"):
        burn_rate_alert({60: 1.0}, budget=720, period_hours=720)


def test_forecast_recent__step_up_in_spend__rate_follows_the_last_days_not_the_month():
    """Ten days at $10 then five at $20: the month-to-date line says ~$13/day, the recent rate ~$18."""
    spend = [10.0] * 10 + [20.0] * 5
    linear = forecast_linear(spend, period_days=30, elapsed_days=15)
    recent = forecast_recent(spend, period_days=30, elapsed_days=15)
    assert recent.method == "recent_weighted"
    assert linear.daily_rate < 14.5
    assert 17.0 < recent.daily_rate < 20.0
    assert recent.low is not None
    assert recent.high is not None
    assert recent.low <= recent.projected <= recent.high
    # A budget the line stays under but the recent rate crosses.
    assert not budget_forecast_overrun(linear, 420.0).fired
    assert budget_forecast_overrun(recent, 420.0).fired


def test_forecast_recent__steady_spend__narrow_interval_under_a_roomy_budget():
    spend = [10.0 + (i % 7 == 5) * -3 + (i % 7 == 6) * -3 for i in range(12)]  # weekends lower
    f = forecast_recent(spend, period_days=30, elapsed_days=12)
    assert f.high is not None
    assert f.low is not None
    assert f.high - f.low < 0.25 * f.projected
    assert not budget_forecast_overrun(f, 1.2 * f.projected).fired
    assert f.low >= f.spent


def test_forecast_recent__upper_bound_crossing_the_budget_fires_and_says_so():
    spend = [10.0, 30.0, 5.0, 25.0, 8.0]  # noisy: a wide interval
    f = forecast_recent(spend, period_days=30, elapsed_days=5)
    assert f.high is not None
    assert f.projected < f.high
    budget = (f.projected + f.high) / 2  # above the point forecast, below the upper bound
    finding = budget_forecast_overrun(f, budget)
    assert finding.fired
    assert "90% interval" in finding.summary
    assert finding.numbers["high"] == pytest.approx(f.high)


def test_forecast_recent__before_three_full_days__run_rate_without_interval():
    f = forecast_recent([10.0, 20.0], period_days=30, elapsed_days=2)
    assert f.method == "run_rate"
    assert f.high is None
