"""The alert detectors, one module each, behind one interface (`base.Detector`: a `name` and
`evaluate(context) -> list[Evaluation]`). `REGISTRY` is the list the evaluator runs, in the order
verdicts are reported; `DETECTORS` their names, the values of an alert's `detector` field.

May import `metrics.alerts.windows`, `metrics.alerts.reads`, `metrics.alerts.checks`,
`metrics.rules`, `metrics.stats` and `metrics.models`; nothing here writes.
"""

from __future__ import annotations

from metrics.alerts.detectors import (
    budget_forecast,
    budget_thresholds,
    burn_rate,
    canary_guardrail,
    confidence_drift,
    cost_per_request_regression,
    error_spike,
    escalation_band,
    latency_p95_regression,
    mix_shift,
    pass_rate_drop,
    traffic_share,
)
from metrics.alerts.detectors.base import BudgetDetector, Checks, Context, Detector, Evaluation, combine, discoveries

REGISTRY: tuple[Detector, ...] = (
    escalation_band.DETECTOR,
    pass_rate_drop.DETECTOR,
    cost_per_request_regression.DETECTOR,
    latency_p95_regression.DETECTOR,
    mix_shift.DETECTOR,
    confidence_drift.DETECTOR,
    traffic_share.DETECTOR,
    error_spike.DETECTOR,
    canary_guardrail.DETECTOR,
    budget_thresholds.DETECTOR,
    budget_forecast.DETECTOR,
    burn_rate.DETECTOR,
)
DETECTORS: tuple[str, ...] = tuple(d.name for d in REGISTRY)

# Verdicts are reported route by route (each route's drift detectors in registry order), then
# budget by budget (the policy's, scope "", first).
_ORDER = {d.name: (isinstance(d, BudgetDetector), i) for i, d in enumerate(REGISTRY)}


def detectors_run(context: Context) -> list[Evaluation]:
    """Every registered detector's verdicts on the policy in `context`; with a false discovery
    rate in the context, every check with a p-value judged together first (`discoveries`)."""
    evaluations: list[Evaluation] = []
    checked: list[tuple[str, str, Checks]] = []
    for detector in REGISTRY:
        named = detector.checked(context)
        if named is None:
            evaluations += detector.evaluate(context)
        else:
            checked += [(detector.name, route, checks) for route, checks in named]
    if context.false_discovery_rate is not None:
        checked = discoveries(checked, context.false_discovery_rate)
    for name, route, checks in checked:
        verdict = combine(name, route, checks)
        if verdict is not None:
            evaluations.append(verdict)
    evaluations.sort(key=lambda e: (_ORDER[e.detector][0], e.route, _ORDER[e.detector][1]))
    return evaluations
