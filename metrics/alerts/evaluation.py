"""Alert evaluation: every live policy (or one) judged at a moment by every registered detector, the
verdicts applied to its alerts, each policy in its own transaction and isolated from the others.

`policy_evaluate` is the pure read (two rollup queries per policy, `metrics.alerts.reads`) that runs
`metrics.alerts.detectors`; `alerts_evaluate` applies what it finds through
`metrics.alerts.lifecycle`. A policy whose evaluation raises is rolled back, logged with its slug
and traceback and listed in the report's `failed`; the policies after it are still evaluated.
Windows, thresholds and the lifecycle rules: docs/alerts.md.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from controlplane import prometheus
from controlplane.errors import InvalidInput
from metrics.alerts import lifecycle
from metrics.alerts.delivery import deliveries_sweep
from metrics.alerts.detectors import canary_guardrail, detectors_run
from metrics.alerts.detectors.base import BudgetView, CanaryView, Context, Evaluation, RouteView
from metrics.alerts.reads import RouteTotals, hourly_spend, route_series, route_totals
from metrics.alerts.windows import Windows
from metrics.budget.dimensions import dimension_budget_spend
from metrics.budget.thresholds import spend_thresholds
from metrics.canary import services as canary_services
from metrics.canary.selectors import CANARY_LOOKBACK, canary_guarded_splits
from metrics.models import Alert
from metrics.rules.bands import route_doc
from metrics.rules.budgets import dimension_budgets
from routing.models import Policy

logger = logging.getLogger(__name__)
CANARY_GUARDRAIL = canary_guardrail.DETECTOR.name  # the detector whose breaches may stop an arm


@dataclass(frozen=True)
class Failure:
    """A policy whose evaluation raised: nothing of it was applied."""

    policy: str
    error: str


@dataclass
class EvaluationReport:
    policies: int = 0
    evaluations: int = 0
    changes: list[lifecycle.Change] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


def false_discovery_rate() -> float | None:
    """`ALERTS_FALSE_DISCOVERY_RATE`, None when 0 (off: each test at its own level)."""
    q = float(settings.ALERTS_FALSE_DISCOVERY_RATE)
    if not 0.0 <= q < 1.0:
        raise ImproperlyConfigured(f"ALERTS_FALSE_DISCOVERY_RATE must be in [0, 1), got {q!r}")
    return q or None


def policy_context(policy: Policy, *, at: datetime) -> Context:
    """What the detectors judge: every route of the policy's live document and every route with
    traffic in the windows, and its budgets with their spend (3 queries; 2 without a budget; one
    more per dimension with value budgets)."""
    doc = policy.live_version.document if policy.live_version else {}
    w = Windows(at)
    totals = route_totals(policy.pk, w)
    route_series(policy.pk, w, totals)
    q = false_discovery_rate()
    series_hours = w.series_hours
    overlap = tuple(h for h in series_hours if h < w.current_start)
    routes = [
        RouteView(
            route,
            totals.get(route) or RouteTotals(),
            route_doc(doc, route),
            series_hours=series_hours,
            overlap_hours=overlap,
            alpha=q,
        )
        for route in sorted(set(doc.get("routes") or {}) | set(totals))
    ]
    declared = [("", doc.get("budget"))]
    declared += [(r, route_doc(doc, r).get("budget")) for r in sorted(doc.get("routes") or {})]
    budgets: list[BudgetView] = []
    if any(b for _, b in declared):
        spend = hourly_spend(policy.pk, w)
        thresholds = spend_thresholds()
        for scope, budget in declared:
            if not budget:
                continue
            if scope:
                scope_spend: Mapping[datetime, float] = spend.get(scope, {})
            else:
                merged: dict[datetime, float] = defaultdict(float)
                for per_hour in spend.values():
                    for h, v in per_hour.items():
                        merged[h] += v
                scope_spend = merged
            budgets.append(BudgetView(scope, budget, scope_spend, w, thresholds))
    per_value = dimension_budgets(doc)
    if per_value:
        cells = dimension_budget_spend(
            policy_id=policy.pk,
            budgets=per_value,
            start=w.spend_start,
            end=w.end,
            hourly_from=w.hour - timedelta(hours=6),
        )
        thresholds = spend_thresholds()
        for b in per_value:
            value_spend = {h: float(v) for h, v in cells.get((b.key, b.value), {}).items()}
            budgets.append(BudgetView(b.scope, b.budget, value_spend, w, thresholds, dimension=(b.key, b.value)))
    canaries = [
        CanaryView(s.split.route, s.split.guardrails, s.versions, s.verdict)
        for s in canary_guarded_splits(policy, start=w.end - CANARY_LOOKBACK, end=w.end)
    ]
    return Context(w, routes, budgets, canaries, false_discovery_rate=q)


def policy_evaluate(policy: Policy, *, at: datetime) -> list[Evaluation]:
    """Every detector on every route and budget of the policy. Pure reads: nothing is written."""
    return detectors_run(policy_context(policy, at=at))


def _policy_alerts_evaluate(policy: Policy, at: datetime) -> tuple[int, list[lifecycle.Change]]:
    """Apply the policy's verdicts in one transaction; return (verdicts, changes) once committed."""
    changes: list[lifecycle.Change] = []
    with transaction.atomic():
        # One evaluator per policy at a time (beat and a manual run may overlap).
        Policy.objects.select_for_update().filter(pk=policy.pk).first()
        evaluations = policy_evaluate(policy, at=at)
        # Locked: an acknowledgement or resolution made meanwhile would otherwise be overwritten by
        # the save of the copy read here (they wait for this transaction, then see its outcome).
        active = {
            (a.detector, a.route): a
            for a in Alert.objects.select_for_update().filter(policy=policy, status__in=Alert.ACTIVE)
        }
        seen = set()
        for evaluation in evaluations:
            key = (evaluation.detector, evaluation.route)
            seen.add(key)
            change = lifecycle.alert_record(policy=policy, evaluation=evaluation, active=active.get(key), at=at)
            if change is not None:
                changes.append(change)
        for key, alert in active.items():
            if key not in seen:
                changes.append(lifecycle.alert_retire(policy=policy, alert=alert, at=at))
        _guardrail_stops(policy, evaluations, changes)
    return len(evaluations), changes


_STOPPING = frozenset({"opened", "reopened", "escalated"})


def _guardrail_stops(policy: Policy, evaluations: list[Evaluation], changes: list[lifecycle.Change]) -> None:
    """A canary guardrail alert that opened now, on a split with `on_breach: "stop"`: publish the
    version that moves each breached arm's weight to the control, in the alert's transaction (both
    happen, or neither)."""
    opened = {c.route for c in changes if c.detector == CANARY_GUARDRAIL and c.action in _STOPPING}
    for evaluation in evaluations:
        if evaluation.detector != CANARY_GUARDRAIL or evaluation.route not in opened:
            continue
        numbers = evaluation.evidence.get("numbers") or {}
        if (numbers.get("guardrails") or {}).get("on_breach") != "stop":
            continue
        for arm in sorted({b["arm"] for b in numbers.get("breaches") or []}):
            version = canary_services.canary_arm_stop(
                policy=policy,
                route=evaluation.route,
                arm=arm,
                summary=evaluation.finding.summary,
                evidence=evaluation.evidence,
            )
            logger.warning(
                "canary guardrail: stopped arm %s of %s route %s in v%s",
                arm,
                policy.slug,
                evaluation.route,
                version.number,
            )
            policy.refresh_from_db()


def alerts_evaluate(*, policy: Policy | None = None, at: datetime | None = None) -> EvaluationReport:
    """Evaluate every live policy (or one) at `at` (default now) and apply the verdicts; each
    policy in its own transaction, a failing one rolled back and reported without stopping the
    others. Also queues deliveries stuck in the queue (see `deliveries_sweep`)."""
    if at is not None and at.tzinfo is None:
        raise InvalidInput("'at' needs a time zone.", {"at": ["needs a time zone"]})
    at = (at or timezone.now()).astimezone(UTC)
    false_discovery_rate()  # a setting out of range stops every policy's evaluation, not each one
    policies = Policy.objects.select_related("live_version").filter(live_version__isnull=False).order_by("slug")
    if policy is not None:
        policies = policies.filter(pk=policy.pk)
    report = EvaluationReport()
    for p in policies:
        started = time.perf_counter()
        try:
            evaluations, changes = _policy_alerts_evaluate(p, at)
        except Exception as exc:  # one tenant's data or bug must not stop the others' alerts
            logger.exception("alert evaluation failed for policy %s", p.slug)
            report.failed.append(Failure(p.slug, f"{type(exc).__name__}: {exc}"[:500]))
            prometheus.ALERT_EVALUATIONS.labels("failed").inc()
            continue
        finally:
            prometheus.ALERT_EVALUATION_SECONDS.observe(time.perf_counter() - started)
        prometheus.ALERT_EVALUATIONS.labels("ok").inc()
        report.policies += 1
        report.evaluations += evaluations
        report.changes += changes
    deliveries_sweep()
    return report
