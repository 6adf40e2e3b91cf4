"""Pure statistics behind Signalbox's drift and budget alerts (no Django, standard library only).

Each detector takes window totals read from rollups and returns a ``Finding`` whose ``Evidence``
states the window, the baseline, the numbers and the test. Methods and defaults: docs/alerts.md.
"""

from metrics.stats.budgets import (
    DAILY_BURN_RATE_RULES,
    DEFAULT_THRESHOLDS,
    MONTHLY_BURN_RATE_RULES,
    BurnRateRule,
    Forecast,
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
from metrics.stats.divergence import (
    jensen_shannon_divergence,
    population_stability_index,
    smoothed_distributions,
)
from metrics.stats.drift import (
    PROVIDER_FAILURE_OUTCOMES,
    cost_per_request_regression,
    error_spike,
    escalation_band,
    latency_p95_regression,
    mix_shift,
    pass_rate_drop,
)
from metrics.stats.findings import Evidence, Finding, Severity, Status, most_severe
from metrics.stats.histogram import histogram_quantile, sum_histograms
from metrics.stats.proportions import (
    TwoProportionZTest,
    WilsonInterval,
    two_proportion_z_test,
    wilson_interval,
)

__all__ = [
    "DAILY_BURN_RATE_RULES",
    "DEFAULT_THRESHOLDS",
    "MONTHLY_BURN_RATE_RULES",
    "PROVIDER_FAILURE_OUTCOMES",
    "BurnRateRule",
    "Evidence",
    "Finding",
    "Forecast",
    "Severity",
    "Status",
    "TwoProportionZTest",
    "WilsonInterval",
    "budget_forecast_overrun",
    "budget_thresholds",
    "burn_rate",
    "burn_rate_alert",
    "burn_rate_rules_for_period",
    "cost_per_request_regression",
    "error_spike",
    "escalation_band",
    "forecast_linear",
    "forecast_recent",
    "histogram_quantile",
    "jensen_shannon_divergence",
    "latency_p95_regression",
    "mix_shift",
    "most_severe",
    "pass_rate_drop",
    "population_stability_index",
    "runway_days",
    "smoothed_distributions",
    "sum_histograms",
    "thresholds_newly_crossed",
    "two_proportion_z_test",
    "wilson_interval",
]
