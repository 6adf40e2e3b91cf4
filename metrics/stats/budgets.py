"""Budget arithmetic: threshold crossings, period-end forecast, runway, multi-window burn rate."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from metrics.stats.findings import Evidence, Finding, Severity, pct
from metrics.stats.proportions import z_for_confidence

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.8, 1.0)
FORECAST_MIN_DAYS = 3


def threshold_severity(threshold: float) -> Severity:
    """Where a crossed spend threshold goes: 100% pages, 80% tickets, lower ones are info."""
    if threshold >= 1.0:
        return "page"
    if threshold >= 0.8:
        return "ticket"
    return "info"


def thresholds_newly_crossed(
    spent: float,
    budget: float,
    *,
    already_crossed: Iterable[float] = (),
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return (crossed, newly_crossed): thresholds with spent >= t · budget, and those not yet seen.

    ``already_crossed`` is the state kept per budget and period (reset when the period rolls over);
    store the returned ``crossed`` as the new state. Spend only grows within a period, so a
    threshold is reported once; if spend is corrected downwards, ``crossed`` shrinks and the
    threshold can be reported again later, which is the behaviour wanted after a correction.
    """
    if budget <= 0:
        raise ValueError("budget must be positive")
    seen = set(already_crossed)
    crossed = tuple(sorted(t for t in thresholds if spent >= t * budget))
    return crossed, tuple(t for t in crossed if t not in seen)


def budget_thresholds(
    spent: float,
    budget: float,
    *,
    already_crossed: Iterable[float] = (),
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    subject: str = "budget",
    window: str = "this period",
) -> Finding:
    """Alert on spend thresholds newly crossed this period (defaults 50%, 80%, 100% of budget).

    Severity follows the highest newly crossed threshold (``threshold_severity``): 50% is an
    early heads-up (info), 80% leaves time to act (ticket), 100% means requests are now being
    downgraded or money is overspent (page). ``numbers["crossed"]`` is the state to store.
    """
    crossed, new = thresholds_newly_crossed(spent, budget, already_crossed=already_crossed, thresholds=thresholds)
    fraction = spent / budget
    numbers = {
        "spent": spent,
        "budget": budget,
        "fraction": fraction,
        "thresholds": list(thresholds),
        "crossed": list(crossed),
        "newly_crossed": list(new),
    }
    evidence = Evidence(
        test="actual spend against budget thresholds",
        window=window,
        statistic=fraction,
        numbers=numbers,
    )
    if not new:
        return Finding(
            "budget_thresholds",
            "ok",
            "info",
            f"{subject}: ${spent:,.2f} of ${budget:,.2f} ({pct(fraction)}) {window}; no new threshold crossed",
            evidence,
        )
    top = max(new)
    return Finding(
        "budget_thresholds",
        "alert",
        threshold_severity(top),
        f"{subject}: ${spent:,.2f} of ${budget:,.2f} spent {window} ({pct(fraction)}), "
        f"crossing {', '.join(pct(t) for t in new)}",
        evidence,
    )


ForecastMethod = Literal["recent_weighted", "least_squares", "run_rate", "none"]


@dataclass(frozen=True, slots=True)
class Forecast:
    """A period-end spend projection and how it was made.

    ``daily_rate`` is the $/day the projection extends over the rest of the period;
    ``projected = spent + daily_rate · (period_days − elapsed_days)``.
    """

    method: ForecastMethod
    spent: float
    projected: float
    daily_rate: float
    period_days: float
    elapsed_days: float
    days_of_data: int
    low: float | None = None  # the interval's bounds on period-end spend (recent_weighted only)
    high: float | None = None
    confidence: float | None = None

    def runway_days(self, budget: float) -> float:
        """Days until ``budget`` is exhausted at ``daily_rate`` (see ``runway_days``)."""
        return runway_days(budget, self.spent, self.daily_rate)


def forecast_linear(
    daily_spend: Sequence[float],
    period_days: float,
    elapsed_days: float,
    *,
    min_days: int = FORECAST_MIN_DAYS,
) -> Forecast:
    """Project period-end spend from the spend of each day so far.

    ``daily_spend[i]`` is the spend of day i of the period; the last entry may be today's partial
    day, so ``len(daily_spend) == ceil(elapsed_days)`` (e.g. 10.5 days elapsed → 11 entries).

    With at least ``min_days`` complete days: ordinary least squares of cumulative spend C(t) on
    t over the points (0, 0), (1, C₁), …, (elapsed_days, C_now), slope b = Σ(t−t̄)(C−C̄)/Σ(t−t̄)²;
    method "least_squares". Fitting the cumulative curve (not the daily values) uses the partial
    day at its true time and weights every day, so one expensive day moves the rate less than a
    run-rate does. Before that: run-rate b = spent / elapsed_days, method "run_rate" (two days
    are too few to fit a line that is better than their average). With nothing elapsed, method
    "none" and projected = spent.

    Either way projected = spent + b · (period_days − elapsed_days): anchored on actual spend, so
    the forecast is never below what is already spent (the fitted line's own value at period end
    could be). min_days=3: a line through fewer points mostly fits the first day's noise.
    """
    if period_days <= 0 or elapsed_days < 0:
        raise ValueError("period_days must be > 0 and elapsed_days >= 0")
    if any(s < 0 for s in daily_spend):
        raise ValueError("daily spend must be non-negative")
    expected_len = math.ceil(elapsed_days - 1e-9)
    if len(daily_spend) != expected_len:
        raise ValueError(f"{elapsed_days} days elapsed needs {expected_len} daily values, got {len(daily_spend)}")
    spent = float(sum(daily_spend))
    remaining = max(0.0, period_days - elapsed_days)
    full_days = math.floor(elapsed_days + 1e-9)
    if elapsed_days <= 0:
        return Forecast("none", spent, spent, 0.0, period_days, elapsed_days, 0)
    if full_days < min_days:
        rate = spent / elapsed_days
        return Forecast("run_rate", spent, spent + rate * remaining, rate, period_days, elapsed_days, full_days)
    ts = [0.0]
    cs = [0.0]
    total = 0.0
    for i, s in enumerate(daily_spend):
        total += s
        ts.append(float(i + 1) if i + 1 < len(daily_spend) else elapsed_days)
        cs.append(total)
    t_mean = sum(ts) / len(ts)
    c_mean = sum(cs) / len(cs)
    sxx = sum((t - t_mean) ** 2 for t in ts)
    sxy = sum((t - t_mean) * (c - c_mean) for t, c in zip(ts, cs, strict=True))
    rate = max(0.0, sxy / sxx)
    return Forecast("least_squares", spent, spent + rate * remaining, rate, period_days, elapsed_days, full_days)


FORECAST_HALF_LIFE_DAYS = 3.0
FORECAST_CONFIDENCE = 0.9


def forecast_recent(
    daily_spend: Sequence[float],
    period_days: float,
    elapsed_days: float,
    *,
    half_life_days: float = FORECAST_HALF_LIFE_DAYS,
    confidence: float = FORECAST_CONFIDENCE,
    min_days: int = FORECAST_MIN_DAYS,
) -> Forecast:
    """Project period-end spend from the recent daily rate, with an interval.

    ``daily_spend`` as for ``forecast_linear``. With at least ``min_days`` complete days: the rate
    is the exponentially weighted mean of the complete days' spend, weight 2^(−age/half_life_days)
    (age 0 = yesterday), so a change of pace shows in the forecast within a few days instead of
    being averaged with the whole month; projected = spent + rate · remaining. The interval (central,
    ``confidence``) adds the day-to-day spread σ² of the weighted days over the remaining days
    and the uncertainty of the rate itself (σ²/n_eff, n_eff = (Σw)²/Σw²) over all of them:
    sd = √(remaining·σ² + remaining²·σ²/n_eff); bounds projected ± z·sd, the low one never below
    what is spent. Fewer complete days: ``forecast_linear``'s run rate, without an interval.
    half_life_days=3: a step in spend reaches half its weight in 3 days, while one expensive day
    alone moves the rate by about a fifth of its excess.
    """
    base = forecast_linear(daily_spend, period_days, elapsed_days, min_days=min_days)
    full_days = math.floor(elapsed_days + 1e-9)
    if base.method in ("none", "run_rate"):
        return base
    days = list(daily_spend[:full_days])
    weights = [0.5 ** ((len(days) - 1 - i) / half_life_days) for i in range(len(days))]
    sw = sum(weights)
    rate = sum(w * d for w, d in zip(weights, days, strict=True)) / sw
    n_eff = sw * sw / sum(w * w for w in weights)
    var = sum(w * (d - rate) ** 2 for w, d in zip(weights, days, strict=True)) / sw
    var *= n_eff / (n_eff - 1) if n_eff > 1 else 1.0
    remaining = max(0.0, period_days - elapsed_days)
    projected = base.spent + rate * remaining
    sd = math.sqrt(remaining * var + remaining * remaining * var / n_eff)
    z = z_for_confidence(confidence)
    low, high = max(base.spent, projected - z * sd), projected + z * sd
    return Forecast(
        "recent_weighted", base.spent, projected, rate, period_days, elapsed_days, full_days, low, high, confidence
    )


def runway_days(budget: float, spent: float, daily_rate: float) -> float:
    """Days until the budget runs out: (budget − spent) / daily_rate; 0 if already spent, inf at rate 0."""
    left = budget - spent
    if left <= 0:
        return 0.0
    if daily_rate <= 0:
        return math.inf
    return left / daily_rate


def budget_forecast_overrun(
    forecast: Forecast,
    budget: float,
    *,
    subject: str = "budget",
    window: str = "this period",
) -> Finding:
    """Ticket when the forecast period-end spend exceeds the budget (the interval's upper bound,
    when the forecast has one); states the method used.

    A ticket, not a page: a forecast is days ahead of the money running out, and the actual-spend
    thresholds page at 100%. Method "none" never alerts.
    """
    if budget <= 0:
        raise ValueError("budget must be positive")
    runway = forecast.runway_days(budget)
    days_left = max(0.0, forecast.period_days - forecast.elapsed_days)
    numbers = {
        "spent": forecast.spent,
        "budget": budget,
        "projected": forecast.projected,
        "projected_fraction": forecast.projected / budget,
        "daily_rate": forecast.daily_rate,
        "method": forecast.method,
        "days_of_data": forecast.days_of_data,
        "elapsed_days": forecast.elapsed_days,
        "period_days": forecast.period_days,
        "runway_days": runway if math.isfinite(runway) else None,
        "days_left": days_left,
        "low": forecast.low,
        "high": forecast.high,
        "confidence": forecast.confidence,
    }
    evidence = Evidence(
        test=f"month-end forecast ({forecast.method.replace('_', ' ')})",
        window=window,
        statistic=forecast.projected,
        numbers=numbers,
    )
    upper = forecast.high if forecast.high is not None else forecast.projected
    fired = forecast.method != "none" and upper > budget
    interval = (
        f", {pct(forecast.confidence or 0)} interval ${forecast.low:,.2f}–${forecast.high:,.2f}"
        if forecast.low is not None and forecast.high is not None
        else ""
    )
    runway_txt = f"runs out in {runway:.1f} days" if math.isfinite(runway) else "no spend rate"
    summary = (
        f"{subject}: forecast ${forecast.projected:,.2f} by period end "
        f"({pct(forecast.projected / budget)} of ${budget:,.2f}{interval}; "
        f"{forecast.method.replace('_', ' ')} over {forecast.days_of_data} days at "
        f"${forecast.daily_rate:,.2f}/day); {runway_txt}, {days_left:.1f} days left in the period"
    )
    return Finding("budget_forecast", "alert" if fired else "ok", "ticket" if fired else "info", summary, evidence)


@dataclass(frozen=True, slots=True)
class BurnRateRule:
    """Fire ``severity`` when the burn rate over both windows is at least ``rate``."""

    severity: Severity
    long_minutes: int
    short_minutes: int
    rate: float

    def budget_fraction(self, period_hours: float) -> float:
        """Share of the period's budget spent over the long window at exactly ``rate``."""
        return self.rate * (self.long_minutes / 60.0) / period_hours


# The Google SRE workbook's multiwindow, multi-burn-rate table for a 30-day period: page when
# 2% of the budget goes in 1 h (burn 14.4; at that rate the month's budget lasts ~2 days), ticket
# when 5% goes in 6 h (burn 6; budget lasts 5 days). The short windows (1/12 of the long one)
# make the alert stop soon after the spending stops, instead of for the rest of the long window.
MONTHLY_BURN_RATE_RULES: tuple[BurnRateRule, ...] = (
    BurnRateRule("page", 60, 5, 14.4),
    BurnRateRule("ticket", 360, 30, 6.0),
)
# For a 1-day period the monthly rates come too late (14.4 over 1 h is 60% of the day's budget).
# Page at 25% of the day's budget in an hour (burn 6: out of money in 4 h), ticket at 75% in 6 h
# (burn 3: out of money within 8 h). Diurnal peaks put a 6 h window at ~1.5× the mean rate and
# cost noise on a quiet route adds more: at burn 2 a 20 req/h route on budget ticketed in 20% of
# clean weeks (docs/alerts.md).
DAILY_BURN_RATE_RULES: tuple[BurnRateRule, ...] = (
    BurnRateRule("page", 60, 5, 6.0),
    BurnRateRule("ticket", 360, 30, 3.0),
)


def burn_rate_rules_for_period(period_hours: float) -> tuple[BurnRateRule, ...]:
    """The default rule table for a budget period: daily rules up to 2 days, monthly beyond."""
    return DAILY_BURN_RATE_RULES if period_hours <= 48 else MONTHLY_BURN_RATE_RULES


def burn_rate(spend: float, window_hours: float, budget: float, period_hours: float) -> float:
    """How many times faster than sustainable money is spent: (spend / window) / (budget / period).

    1.0 spends exactly the budget by the end of the period; 14.4 over a 30-day period would spend
    it all in 50 hours.
    """
    if window_hours <= 0 or budget <= 0 or period_hours <= 0:
        raise ValueError("window_hours, budget and period_hours must be positive")
    return (spend / window_hours) / (budget / period_hours)


def burn_rate_alert(
    window_spend: Mapping[int, float],
    *,
    budget: float,
    period_hours: float,
    rules: Sequence[BurnRateRule] | None = None,
    subject: str = "budget",
) -> Finding:
    """Multi-window burn-rate alert: fire a rule when BOTH its long and short window burn ≥ rate.

    ``window_spend`` maps window length in minutes to the spend over the trailing window ending
    now ({60: …, 5: …, 360: …, 30: …} for the default tables). The long window makes the alert
    significant (enough money moved), the short window makes it current (it is still happening).
    The most severe firing rule wins; every rule's rates are in the evidence. ``rules`` default to
    ``burn_rate_rules_for_period(period_hours)``.
    """
    rules = tuple(rules) if rules is not None else burn_rate_rules_for_period(period_hours)
    evaluated: list[dict[str, Any]] = []
    firing: list[tuple[BurnRateRule, float, float]] = []
    for rule in rules:
        for minutes in (rule.long_minutes, rule.short_minutes):
            if minutes not in window_spend:
                raise ValueError(f"no spend for the {minutes}-minute window")
        long_rate = burn_rate(window_spend[rule.long_minutes], rule.long_minutes / 60, budget, period_hours)
        short_rate = burn_rate(window_spend[rule.short_minutes], rule.short_minutes / 60, budget, period_hours)
        fired = long_rate >= rule.rate and short_rate >= rule.rate
        evaluated.append(
            {
                "severity": rule.severity,
                "long_minutes": rule.long_minutes,
                "short_minutes": rule.short_minutes,
                "threshold": rule.rate,
                "long_burn_rate": long_rate,
                "short_burn_rate": short_rate,
                "budget_fraction": rule.budget_fraction(period_hours),
                "fired": fired,
            }
        )
        if fired:
            firing.append((rule, long_rate, short_rate))
    numbers = {"budget": budget, "period_hours": period_hours, "rules": evaluated}
    if not firing:
        worst = max(evaluated, key=lambda e: min(e["long_burn_rate"], e["short_burn_rate"]) / e["threshold"])
        ev = Evidence(
            test="multi-window burn rate",
            window=f"{worst['long_minutes']} min",
            statistic=worst["long_burn_rate"],
            numbers=numbers,
        )
        return Finding(
            "burn_rate",
            "ok",
            "info",
            f"{subject}: burn rate {worst['long_burn_rate']:.1f}× over {worst['long_minutes']} min, under every rule",
            ev,
        )
    order = {"page": 2, "ticket": 1, "info": 0}
    rule, long_rate, short_rate = max(firing, key=lambda f: order[f[0].severity])
    ev = Evidence(
        test="multi-window burn rate",
        window=f"{rule.long_minutes} min and {rule.short_minutes} min",
        baseline=f"budget ${budget:,.2f} per {period_hours:g} h",
        statistic=long_rate,
        numbers=numbers,
    )
    summary = (
        f"{subject}: spending {long_rate:.1f}× the sustainable rate over the last "
        f"{rule.long_minutes} min ({short_rate:.1f}× over {rule.short_minutes} min), above "
        f"{rule.rate:g}× — {pct(rule.budget_fraction(period_hours))} of the budget per "
        f"{rule.long_minutes} min"
    )
    return Finding("burn_rate", "alert", rule.severity, summary, ev)
