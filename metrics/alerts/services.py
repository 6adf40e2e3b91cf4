"""Alert services: evaluate the detectors on the hourly rollups, keep each alert's lifecycle, manage
notification channels and deliver notifications.

Evaluation (`alerts_evaluate`) reads two GROUP BY queries of `RollupHourly` per live policy and
runs the pure detectors of `metrics.stats` (and the expectation checks of `metrics.alerts.checks`)
per route; `alert_record` turns each verdict into at most one active alert per policy, detector and
route. Windows, thresholds and the lifecycle rules are documented in docs/alerts.md.

Permissions follow the role groups' routing permissions: whoever may view policies reads alerts
(viewer), whoever may edit policies acknowledges and resolves them (editor), whoever may publish
manages the notification channels (publisher).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from controlplane.celery import queue_now
from controlplane.errors import Conflict, InvalidInput, NotAllowed
from metrics.alerts import checks as alerts_checks
from metrics.budget.thresholds import spend_thresholds
from metrics.models import (
    BUCKET_FIELDS,
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    Delivery,
    NotificationChannel,
    Severity,
)
from metrics.rollups.selectors import rollup_cells
from metrics.rules import bands as band_rules
from metrics.rules.bands import route_doc as _route_doc
from metrics.rules.latency import QUANTILE_BOUNDS
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.rules.periods import midnight, month_days
from metrics.stats import (
    PROVIDER_FAILURE_OUTCOMES,
    BurnRateRule,
    Evidence,
    Finding,
    budget_forecast_overrun,
    budget_thresholds,
    burn_rate_alert,
    burn_rate_rules_for_period,
    cost_per_request_regression,
    error_spike,
    escalation_band,
    forecast_linear,
    latency_p95_regression,
    mix_shift,
    pass_rate_drop,
)
from routing.models import Policy

logger = logging.getLogger(__name__)

PERM_ALERTS_VIEW = "routing.view_policy"
PERM_ALERTS_HANDLE = "routing.change_policy"
PERM_CHANNELS_MANAGE = "routing.publish_policy"

DETECTORS: tuple[str, ...] = (
    "escalation_band",
    "pass_rate_drop",
    "cost_per_request_regression",
    "latency_p95_regression",
    "mix_shift",
    "error_spike",
    "budget_thresholds",
    "budget_forecast",
    "burn_rate",
)
MAX_NOTE = 2000
NOTIFICATION_DELIVER_TASK = "metrics.notification_deliver"  # the Celery task of `notification_deliver`
SYSTEM = "system"

# Window labels, as the summaries print them.
DRIFT_WINDOW = "the last 24 h"
DRIFT_BASELINE = "the 7 days before"
SPIKE_WINDOW = "the last 1–2 h (this hour and the previous one)"
SPIKE_BASELINE = "the 24 h before"


Actor = Any  # a user, or None for the system (the evaluator, management commands)


def _require(user: Actor, perm: str, what: str) -> None:
    if user is None:
        return
    if not getattr(user, "is_active", False) or not user.has_perm(perm):
        raise NotAllowed(f"You do not have permission to {what}.")


def _label(user: Actor) -> str:
    return SYSTEM if user is None else user.get_username()


def _text(value: Any, name: str, *, required: bool, max_length: int) -> str:
    text = (value or "").strip() if isinstance(value, str) or value is None else None
    if text is None:
        raise InvalidInput(f"'{name}' must be text.", {name: ["must be a string"]})
    if required and not text:
        raise InvalidInput(f"A {name} is required.", {name: ["This field is required."]})
    if len(text) > max_length:
        raise InvalidInput(f"The {name} is too long.", {name: [f"At most {max_length} characters."]})
    if "\x00" in text:
        raise InvalidInput(f"The {name} holds a NUL character.", {name: ["the NUL character is not allowed"]})
    return text


def json_safe(value: Any) -> Any:
    """Evidence as strict JSON: infinities and NaN (a zero baseline) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# =================================================================================================
# Evaluation: windows, rollup reads, detectors per route


@dataclass(frozen=True)
class Windows:
    """The evaluation windows at `at`, as half-open ranges of rollup hours.

    Drift: the 24 hourly cells ending with the current (partial) hour against the 7 days before.
    Spike: the previous and the current hour against the 24 h before. Budgets: the UTC day and
    calendar month holding `at`; burn rate over the trailing 1 h and 6 h ending at `at`, the
    oldest hour's spend prorated by the part of it inside the window.
    """

    at: datetime

    @property
    def hour(self) -> datetime:
        return hour_floor(self.at)

    @property
    def end(self) -> datetime:
        return self.hour + timedelta(hours=1)

    @property
    def current_start(self) -> datetime:
        return self.hour - timedelta(hours=23)

    @property
    def baseline_start(self) -> datetime:
        return self.current_start - timedelta(days=7)

    @property
    def spike_start(self) -> datetime:
        return self.hour - timedelta(hours=1)

    @property
    def spike_baseline_start(self) -> datetime:
        return self.spike_start - timedelta(hours=24)

    @property
    def day_start(self) -> datetime:
        return midnight(self.at.astimezone(UTC).date())

    @property
    def month_start(self) -> datetime:
        return self.day_start.replace(day=1)

    @property
    def month_days(self) -> int:
        return month_days(self.month_start.date())

    @property
    def spend_start(self) -> datetime:
        return min(self.month_start, self.hour - timedelta(hours=6))


@dataclass
class _RouteTotals:
    """A route's sums over the drift and spike windows."""

    requests: int = 0
    base_requests: int = 0
    ok: int = 0
    base_ok: int = 0
    cost: float = 0.0
    base_cost: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_FIELDS))
    base_buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_FIELDS))
    # tier -> [requests starting there, escalations into it], current window only
    tiers: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    task_mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    base_task_mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    model_mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    base_model_mix: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    spike_attempts: int = 0
    spike_failures: int = 0
    spike_base_attempts: int = 0
    spike_base_failures: int = 0


def _route_totals(policy_id: int, w: Windows) -> dict[str, _RouteTotals]:
    """Every route's sums over the drift and spike windows (one GROUP BY query)."""
    cur = Q(hour__gte=w.current_start)
    base = Q(hour__lt=w.current_start)
    spike = Q(hour__gte=w.spike_start)
    spike_base = Q(hour__gte=w.spike_baseline_start, hour__lt=w.spike_start)
    sums: dict[str, Any] = {
        "c_req": Sum("requests", filter=cur),
        "b_req": Sum("requests", filter=base),
        "c_cnt": Sum("count", filter=cur),
        "b_cnt": Sum("count", filter=base),
        "c_esc": Sum("escalations", filter=cur),
        "c_cost": Sum("cost_usd", filter=cur),
        "b_cost": Sum("cost_usd", filter=base),
        "s_cnt": Sum("count", filter=spike),
        "sb_cnt": Sum("count", filter=spike_base),
    }
    for name in BUCKET_FIELDS:
        sums[f"c_{name}"] = Sum(name, filter=cur)
        sums[f"b_{name}"] = Sum(name, filter=base)
    rows: Any = (
        rollup_cells(policy_id=policy_id, start=w.baseline_start, end=w.end)
        .values("route", "task_type", "model", "tier", "outcome")
        .order_by("route", "task_type", "model", "tier", "outcome")
        .annotate(**sums)
    )
    out: dict[str, _RouteTotals] = defaultdict(_RouteTotals)
    for r in rows:
        t = out[r["route"]]
        c_req, b_req, c_cnt, b_cnt = _int(r["c_req"]), _int(r["b_req"]), _int(r["c_cnt"]), _int(r["b_cnt"])
        t.requests += c_req
        t.base_requests += b_req
        if r["outcome"] == "ok":
            t.ok += c_cnt
            t.base_ok += b_cnt
        t.cost += _num(r["c_cost"])
        t.base_cost += _num(r["b_cost"])
        for i, name in enumerate(BUCKET_FIELDS):
            t.buckets[i] += _int(r[f"c_{name}"])
            t.base_buckets[i] += _int(r[f"b_{name}"])
        tier = t.tiers[r["tier"]]
        tier[0] += c_req
        tier[1] += _int(r["c_esc"])
        t.task_mix[r["task_type"]] += c_req
        t.base_task_mix[r["task_type"]] += b_req
        t.model_mix[r["model"]] += c_cnt
        t.base_model_mix[r["model"]] += b_cnt
        s_cnt, sb_cnt = _int(r["s_cnt"]), _int(r["sb_cnt"])
        t.spike_attempts += s_cnt
        t.spike_base_attempts += sb_cnt
        if r["outcome"] in PROVIDER_FAILURE_OUTCOMES:
            t.spike_failures += s_cnt
            t.spike_base_failures += sb_cnt
    return out


def _hourly_spend(policy_id: int, w: Windows) -> dict[str, dict[datetime, float]]:
    """Spend per route and hour from the month's (or the 6 h burn window's) start to `at` (one query)."""
    out: dict[str, dict[datetime, float]] = defaultdict(dict)
    for r in (
        rollup_cells(policy_id=policy_id, start=w.spend_start, end=w.end)
        .values("route", "hour")
        .order_by("route", "hour")
        .annotate(cost=Sum("cost_usd"))
    ):
        out[r["route"]][r["hour"].astimezone(UTC)] = _num(r["cost"])
    return out


@dataclass(frozen=True)
class Evaluation:
    """One detector's verdict on one route: the finding that speaks for it and each check's status.

    A detector can run several checks (tier 1→2 and 2→3; against the baseline and against the
    expectation; daily and monthly budget). `check` names the one whose finding is shown; an open
    alert resolves when the check that opened it says "ok" (or every check does).
    """

    detector: str
    route: str
    finding: Finding
    check: str
    checks: Mapping[str, str]

    @property
    def evidence(self) -> dict[str, Any]:
        return json_safe({**self.finding.evidence.to_dict(), "check": self.check, "checks": dict(self.checks)})


def _combine(detector: str, route: str, named: Sequence[tuple[str, Finding]]) -> Evaluation | None:
    """The firing check of highest severity; else the first ok when every check is ok; else the
    first check without enough data."""
    if not named:
        return None
    firing = [(n, f) for n, f in named if f.fired]
    if firing:
        name, finding = max(firing, key=lambda nf: SEVERITY_RANK[nf[1].severity])
    elif all(f.status == "ok" for _, f in named):
        name, finding = named[0]
    else:
        name, finding = next((n, f) for n, f in named if f.status == "insufficient_data")
    return Evaluation(detector, route, replace(finding, detector=detector), name, {n: f.status for n, f in named})


def route_drift_evaluate(route: str, t: _RouteTotals, route_doc: Mapping[str, Any]) -> list[Evaluation]:
    """The six drift detectors on one route's window totals, thresholds from its expectations."""
    who = f"route {route}"
    expect = route_doc.get("expectations") or {}
    cw, bw = DRIFT_WINDOW, DRIFT_BASELINE
    out: list[Evaluation | None] = []

    steps = []
    for i, band in enumerate(band_rules.escalation_bands(route_doc, max(t.tiers, default=1))):
        if band is None:
            continue  # a transition with no band is not judged
        lower, upper = t.tiers.get(i + 1, [0, 0]), t.tiers.get(i + 2, [0, 0])
        reached, escalated = lower[0] + lower[1], upper[1]
        step = f"tier {i + 1}→{i + 2}"
        steps.append(
            (
                step,
                escalation_band(
                    escalated, reached, band=(band.lo, band.hi), subject=f"{who}: {step} escalation", window=cw
                ),
            )
        )
    out.append(_combine("escalation_band", route, steps))

    passes = min(t.ok, t.requests)
    checks = [
        (
            "against baseline",
            pass_rate_drop(
                passes,
                t.requests,
                min(t.base_ok, t.base_requests),
                t.base_requests,
                subject=f"{who}: pass rate",
                window=cw,
                baseline_window=bw,
            ),
        )
    ]
    if expect.get("min_pass_rate") is not None:
        checks.append(
            (
                "against expected minimum",
                alerts_checks.pass_rate_below_minimum(
                    passes, t.requests, minimum=float(expect["min_pass_rate"]), subject=f"{who}: pass rate", window=cw
                ),
            )
        )
    out.append(_combine("pass_rate_drop", route, checks))

    checks = [
        (
            "against baseline",
            cost_per_request_regression(
                t.cost,
                t.requests,
                t.base_cost,
                t.base_requests,
                subject=f"{who}: cost per request",
                window=cw,
                baseline_window=bw,
            ),
        )
    ]
    if expect.get("max_cost_per_request_usd") is not None:
        checks.append(
            (
                "against expected maximum",
                alerts_checks.cost_per_request_over_maximum(
                    t.cost,
                    t.requests,
                    maximum=float(expect["max_cost_per_request_usd"]),
                    subject=f"{who}: cost per request",
                    window=cw,
                ),
            )
        )
    out.append(_combine("cost_per_request_regression", route, checks))

    checks = [
        (
            "against baseline",
            latency_p95_regression(
                QUANTILE_BOUNDS,
                t.buckets,
                t.base_buckets,
                subject=f"{who}: latency p95",
                window=cw,
                baseline_window=bw,
            ),
        )
    ]
    if expect.get("latency_p95_ms") is not None:
        checks.append(
            (
                "against p95 budget",
                alerts_checks.latency_p95_over_budget(
                    QUANTILE_BOUNDS,
                    t.buckets,
                    budget_ms=float(expect["latency_p95_ms"]),
                    subject=f"{who}: latency p95",
                    window=cw,
                ),
            )
        )
    out.append(_combine("latency_p95_regression", route, checks))

    out.append(
        _combine(
            "mix_shift",
            route,
            [
                (
                    "task types",
                    mix_shift(
                        t.task_mix, t.base_task_mix, subject=f"{who}: task-type mix", window=cw, baseline_window=bw
                    ),
                ),
                (
                    "models",
                    mix_shift(
                        t.model_mix, t.base_model_mix, subject=f"{who}: model mix", window=cw, baseline_window=bw
                    ),
                ),
            ],
        )
    )

    out.append(
        _combine(
            "error_spike",
            route,
            [
                (
                    "provider failures",
                    error_spike(
                        t.spike_failures,
                        t.spike_attempts,
                        t.spike_base_failures,
                        t.spike_base_attempts,
                        subject=f"{who}: provider failures",
                        window=SPIKE_WINDOW,
                        baseline_window=SPIKE_BASELINE,
                    ),
                )
            ],
        )
    )
    return [e for e in out if e is not None]


def _trailing(spend: Mapping[datetime, float], w: Windows, hours: int) -> float:
    """Spend over the `hours` hours ending at `at`: whole cells, the oldest prorated."""
    inside = (w.at.astimezone(UTC) - w.hour).total_seconds() / 3600
    total = sum(spend.get(w.hour - timedelta(hours=i), 0.0) for i in range(hours))
    return total + spend.get(w.hour - timedelta(hours=hours), 0.0) * (1 - inside)


def hourly_burn_rules(period_hours: float) -> tuple[BurnRateRule, ...]:
    """The burn-rate rules with their short windows (5 and 30 min) widened to 60 min, the shortest
    window hourly rollups measure."""
    return tuple(replace(rule, short_minutes=60) for rule in burn_rate_rules_for_period(period_hours))


def budget_evaluate(
    scope: str, budget: Mapping[str, Any], spend: Mapping[datetime, float], w: Windows, thresholds: Sequence[float]
) -> list[Evaluation]:
    """Thresholds, forecast and burn rate of one budget (a route's, or the policy's with scope "")."""
    who = f"route {scope} budget" if scope else "policy budget"
    daily = float(budget["daily_usd"]) if budget.get("daily_usd") else None
    monthly = float(budget["monthly_usd"]) if budget.get("monthly_usd") else None
    today = sum(v for h, v in spend.items() if h >= w.day_start)
    month = sum(v for h, v in spend.items() if h >= w.month_start)
    windows = {60: _trailing(spend, w, 1), 360: _trailing(spend, w, 6)}
    thresholds_checks, burn_checks, forecast_checks = [], [], []
    if daily:
        thresholds_checks.append(
            (
                "daily",
                budget_thresholds(today, daily, thresholds=thresholds, subject=f"{who} (daily)", window="today (UTC)"),
            )
        )
        burn_checks.append(
            (
                "daily",
                burn_rate_alert(
                    windows, budget=daily, period_hours=24, rules=hourly_burn_rules(24), subject=f"{who} (daily)"
                ),
            )
        )
    if monthly:
        period_hours = w.month_days * 24
        thresholds_checks.append(
            (
                "monthly",
                budget_thresholds(
                    month, monthly, thresholds=thresholds, subject=f"{who} (monthly)", window="this month"
                ),
            )
        )
        burn_checks.append(
            (
                "monthly",
                burn_rate_alert(
                    windows,
                    budget=monthly,
                    period_hours=period_hours,
                    rules=hourly_burn_rules(period_hours),
                    subject=f"{who} (monthly)",
                ),
            )
        )
        elapsed = (w.at.astimezone(UTC) - w.month_start).total_seconds() / 86400
        if elapsed >= 1:
            per_day: dict[date, float] = defaultdict(float)
            for h, v in spend.items():
                if h >= w.month_start:
                    per_day[h.date()] += v
            first = w.month_start.date()
            daily_spend = [per_day.get(first + timedelta(days=i), 0.0) for i in range(math.ceil(elapsed - 1e-9))]
            forecast = forecast_linear(daily_spend, float(w.month_days), elapsed)
            forecast_checks.append(
                ("monthly", budget_forecast_overrun(forecast, monthly, subject=f"{who} (monthly)", window="this month"))
            )
        else:  # a few hours of a new month say nothing about its end: no opinion (an open alert stays)
            forecast_checks.append(
                (
                    "monthly",
                    Finding(
                        "budget_forecast",
                        "insufficient_data",
                        "info",
                        f"{who} (monthly): no forecast in the first day of the month",
                        Evidence(test="linear forecast", window="this month", numbers={"elapsed_days": elapsed}),
                    ),
                )
            )
    return [
        e
        for e in (
            _combine("budget_thresholds", scope, thresholds_checks),
            _combine("budget_forecast", scope, forecast_checks),
            _combine("burn_rate", scope, burn_checks),
        )
        if e is not None
    ]


def policy_evaluate(policy: Policy, *, at: datetime) -> list[Evaluation]:
    """Every detector on every route of the policy's live document (and every route with traffic
    in the windows), plus its budgets (2 queries). Pure reads: nothing is written."""
    doc = policy.live_version.document if policy.live_version else {}
    w = Windows(at)
    totals = _route_totals(policy.pk, w)
    routes = sorted(set(doc.get("routes") or {}) | set(totals))
    evaluations: list[Evaluation] = []
    for route in routes:
        evaluations += route_drift_evaluate(route, totals.get(route) or _RouteTotals(), _route_doc(doc, route))
    thresholds = spend_thresholds()
    budgets = [("", doc.get("budget"))]
    budgets += [(r, _route_doc(doc, r).get("budget")) for r in sorted(doc.get("routes") or {})]
    if any(b for _, b in budgets):
        spend = _hourly_spend(policy.pk, w)
        for scope, budget in budgets:
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
            evaluations += budget_evaluate(scope, budget, scope_spend, w, thresholds)
    return evaluations


# =================================================================================================
# Lifecycle


@dataclass(frozen=True)
class Change:
    """What an evaluation did to one alert (printed by `manage.py alerts_evaluate`)."""

    policy: str
    route: str
    detector: str
    action: str  # opened, reopened, escalated, resolved
    severity: str
    summary: str
    alert_id: int

    @classmethod
    def of(cls, policy: Policy, alert: Alert, action: str) -> Change:
        return cls(policy.slug, alert.route, alert.detector, action, alert.severity, alert.summary, alert.pk)


@dataclass
class EvaluationReport:
    policies: int = 0
    evaluations: int = 0
    changes: list[Change] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


def _event_add(alert: Alert, kind: str, *, at: datetime, user: Actor = None, note: str = "") -> AlertEvent:
    """Record one step of the alert's history; queue its notifications after commit."""
    event = AlertEvent.objects.create(
        alert=alert,
        kind=kind,
        at=at,
        actor=user if getattr(user, "pk", None) else None,
        actor_label=_label(user),
        note=note,
        severity=alert.severity,
        summary=alert.summary,
        evidence=alert.evidence,
    )
    if kind in AlertEvent.NOTIFY:
        _deliveries_create(event)
    return event


def _channels_for(alert: Alert) -> list[NotificationChannel]:
    rank = SEVERITY_RANK[alert.severity]
    channels = NotificationChannel.objects.filter(Q(policy__isnull=True) | Q(policy_id=alert.policy_id), enabled=True)
    return [c for c in channels if SEVERITY_RANK[c.min_severity] <= rank]


def _deliveries_create(event: AlertEvent) -> None:
    channels = _channels_for(event.alert)
    if not channels:
        return
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create([Delivery(event=event, channel=c, next_attempt_at=now) for c in channels])
    ids = [d.pk for d in deliveries]
    if ids[0] is None:  # backends that return no ids from bulk_create
        ids = list(Delivery.objects.filter(event=event).values_list("pk", flat=True))
    deliveries_queue(ids)


def deliveries_queue(ids: Iterable[int]) -> None:
    """Queue `notification_deliver` for each delivery once the current transaction commits."""
    ids = list(ids)

    def queue() -> None:
        for delivery_id in ids:
            try:
                queue_now(NOTIFICATION_DELIVER_TASK, args=[delivery_id])
            except Exception:  # the evaluator's sweep queues it again; never fail the write
                logger.warning("could not queue delivery %s", delivery_id, exc_info=True)
                return

    if ids:
        transaction.on_commit(queue)


def alert_record(*, policy: Policy, evaluation: Evaluation, active: Alert | None, at: datetime) -> Change | None:
    """Apply one verdict to the policy's active alert of that detector and route (if any).

    Fires, none active: open one (or reopen the last resolved one when it resolved within
    ALERTS_REOPEN_HOURS). Fires, one active: refresh its summary and evidence; a higher severity
    escalates it (open again, notify again); the same or lower does nothing more. Does not fire:
    resolve it when the check that opened it (or every check) says "ok"; "insufficient data" keeps it.
    """
    f = evaluation.finding
    evidence = evaluation.evidence
    if f.fired:
        if active is None:
            since = at - timedelta(hours=settings.ALERTS_REOPEN_HOURS)
            last = (
                Alert.objects.filter(
                    policy=policy,
                    detector=evaluation.detector,
                    route=evaluation.route,
                    status=Alert.Status.RESOLVED,
                    resolved_at__gte=since,
                )
                .order_by("-resolved_at", "-id")
                .first()
            )
            if last is not None:
                last.status, last.resolved_at, last.resolved_by = Alert.Status.OPEN, None, None
                last.acknowledged_at = last.acknowledged_by = None
                last.severity, last.summary, last.evidence, last.last_evaluated_at = f.severity, f.summary, evidence, at
                last.save()
                _event_add(last, AlertEvent.Kind.REOPENED, at=at)
                return Change.of(policy, last, "reopened")
            alert = Alert.objects.create(
                policy=policy,
                route=evaluation.route,
                detector=evaluation.detector,
                severity=f.severity,
                status=Alert.Status.OPEN,
                summary=f.summary,
                evidence=evidence,
                opened_at=at,
                last_evaluated_at=at,
            )
            _event_add(alert, AlertEvent.Kind.OPENED, at=at)
            return Change.of(policy, alert, "opened")
        escalated = SEVERITY_RANK[f.severity] > SEVERITY_RANK[active.severity]
        active.summary, active.evidence, active.last_evaluated_at = f.summary, evidence, at
        if escalated:
            active.severity = f.severity
            active.status = Alert.Status.OPEN  # a new severity needs a new acknowledgement
            active.acknowledged_at = active.acknowledged_by = None
        active.save()
        if escalated:
            _event_add(active, AlertEvent.Kind.ESCALATED, at=at)
            return Change.of(policy, active, "escalated")
        return None
    if active is None:
        return None
    opened_by = str(active.evidence.get("check")) if isinstance(active.evidence, dict) else ""
    if f.status == "ok" or evaluation.checks.get(opened_by) == "ok":
        active.status, active.resolved_at, active.resolved_by = Alert.Status.RESOLVED, at, None
        active.last_evaluated_at = at
        active.summary, active.evidence = f.summary, evidence
        active.save()
        _event_add(active, AlertEvent.Kind.RESOLVED, at=at, note="Resolved automatically: back within limits.")
        return Change.of(policy, active, "resolved")
    Alert.objects.filter(pk=active.pk).update(last_evaluated_at=at)
    return None


def _policy_alerts_evaluate(policy: Policy, at: datetime, report: EvaluationReport) -> None:
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
            change = alert_record(policy=policy, evaluation=evaluation, active=active.get(key), at=at)
            if change is not None:
                report.changes.append(change)
        # An active alert nothing evaluated any more: its route or budget left the live policy.
        for key, alert in active.items():
            if key in seen:
                continue
            alert.status, alert.resolved_at, alert.last_evaluated_at = Alert.Status.RESOLVED, at, at
            alert.save()
            _event_add(
                alert,
                AlertEvent.Kind.RESOLVED,
                at=at,
                note="Resolved automatically: the route or budget is no longer in the live policy.",
            )
            report.changes.append(Change.of(policy, alert, "resolved"))
        report.evaluations += len(evaluations)
        report.policies += 1


def alerts_evaluate(*, policy: Policy | None = None, at: datetime | None = None) -> EvaluationReport:
    """Evaluate every live policy (or one) at `at` (default now) and apply the verdicts; each
    policy in its own transaction. Also queues deliveries stuck in the queue (see `deliveries_sweep`)."""
    if at is not None and at.tzinfo is None:
        raise InvalidInput("'at' needs a time zone.", {"at": ["needs a time zone"]})
    at = (at or timezone.now()).astimezone(UTC)
    policies = Policy.objects.select_related("live_version").filter(live_version__isnull=False).order_by("slug")
    if policy is not None:
        policies = policies.filter(pk=policy.pk)
    report = EvaluationReport()
    for p in policies:
        _policy_alerts_evaluate(p, at, report)
    deliveries_sweep()
    return report


def _alert_locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().select_related("policy").get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user: Actor, note: str) -> Alert:
    """Acknowledge an open alert: someone is on it. The note is required."""
    _require(user, PERM_ALERTS_HANDLE, "acknowledge alerts")
    note = _text(note, "note", required=True, max_length=MAX_NOTE)
    alert = _alert_locked(alert)
    if alert.status != Alert.Status.OPEN:
        raise Conflict(
            f"The alert is {alert.status}; only an open alert can be acknowledged.", {"status": [f"is {alert.status}"]}
        )
    now = timezone.now()
    alert.status, alert.acknowledged_at = Alert.Status.ACKNOWLEDGED, now
    alert.acknowledged_by = user if getattr(user, "pk", None) else None
    alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
    _event_add(alert, AlertEvent.Kind.ACKNOWLEDGED, at=now, user=user, note=note)
    return alert


@transaction.atomic
def alert_resolve(*, alert: Alert, user: Actor, note: str = "") -> Alert:
    """Resolve an open or acknowledged alert by hand. If its detector still fires at the next
    evaluation, the alert is reopened."""
    _require(user, PERM_ALERTS_HANDLE, "resolve alerts")
    note = _text(note, "note", required=False, max_length=MAX_NOTE)
    alert = _alert_locked(alert)
    if not alert.is_active:
        raise Conflict("The alert is already resolved.", {"status": ["is resolved"]})
    now = timezone.now()
    alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
    alert.resolved_by = user if getattr(user, "pk", None) else None
    alert.save(update_fields=["status", "resolved_at", "resolved_by"])
    _event_add(alert, AlertEvent.Kind.RESOLVED, at=now, user=user, note=note or "Resolved by hand.")
    return alert


# =================================================================================================
# Channels

MAX_EMAILS = 50
_url_check = URLValidator(schemes=["http", "https"])


def channel_fields_check(
    *, kind: str, name: Any, url: Any = "", secret: Any = "", emails: Any = (), min_severity: Any = Severity.TICKET
) -> dict[str, Any]:
    """The channel's fields cleaned, or InvalidInput naming every bad field."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}

    def take(field_name: str, fn: Any) -> None:
        try:
            cleaned[field_name] = fn()
        except InvalidInput as exc:
            for path, reasons in exc.errors.items():
                errors.setdefault(path, []).extend(reasons)

    if kind not in NotificationChannel.Kind.values:
        errors["kind"] = [f"must be one of {', '.join(NotificationChannel.Kind.values)}"]
    take("name", lambda: _text(name, "name", required=True, max_length=200))
    if min_severity not in Severity.values:
        errors["min_severity"] = [f"must be one of {', '.join(Severity.values)}"]
    else:
        cleaned["min_severity"] = min_severity
    if kind == NotificationChannel.Kind.WEBHOOK:
        if emails:  # a field of the other kind would be dropped without a word
            errors["emails"] = ["only for email channels"]

        def url_clean() -> str:
            text = _text(url, "url", required=True, max_length=2000)
            try:
                _url_check(text)
            except DjangoValidationError:
                raise InvalidInput("Invalid url.", {"url": ["must be an http:// or https:// URL"]}) from None
            return text

        take("url", url_clean)
        take("secret", lambda: _text(secret, "secret", required=False, max_length=200) or secrets.token_urlsafe(32))
        cleaned["emails"] = []
    elif kind == NotificationChannel.Kind.EMAIL:
        for other, value in (("url", url), ("secret", secret)):
            if value:
                errors[other] = ["only for webhook channels"]
        if not isinstance(emails, list | tuple) or not emails:
            errors["emails"] = ["a non-empty list of email addresses"]
        elif len(emails) > MAX_EMAILS:
            errors["emails"] = [f"at most {MAX_EMAILS} addresses"]
        else:
            good: dict[str, str] = {}  # one mail per address, however often it is listed
            for i, address in enumerate(emails):
                try:
                    validate_email(address if isinstance(address, str) else "")
                    good.setdefault(address.strip().lower(), address.strip())
                except DjangoValidationError:
                    errors[f"emails.{i}"] = ["not an email address"]
            cleaned["emails"] = list(good.values())
        cleaned["url"], cleaned["secret"] = "", ""
    if errors:
        raise InvalidInput("; ".join(f"{k}: {v[0]}" for k, v in list(errors.items())[:3]), errors)
    return cleaned


@transaction.atomic
def channel_create(
    *,
    user: Actor,
    kind: str,
    name: str,
    url: str = "",
    secret: str = "",
    emails: Sequence[str] = (),
    min_severity: str = Severity.TICKET,
    enabled: bool = True,
    policy: Policy | None = None,
) -> NotificationChannel:
    """Create a webhook or email channel; a webhook without a secret gets a random one."""
    _require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    cleaned = channel_fields_check(
        kind=kind, name=name, url=url, secret=secret, emails=list(emails), min_severity=min_severity
    )
    channel = NotificationChannel(kind=kind, enabled=bool(enabled), policy=policy, **cleaned)
    if not channel.enabled:
        channel.disabled_at, channel.disabled_reason = timezone.now(), f"disabled by {_label(user)}"
    channel.save()
    return channel


_UNSET: Any = object()


@transaction.atomic
def channel_update(
    *,
    channel: NotificationChannel,
    user: Actor,
    name: Any = _UNSET,
    url: Any = _UNSET,
    secret: Any = _UNSET,
    emails: Any = _UNSET,
    min_severity: Any = _UNSET,
    enabled: Any = _UNSET,
    policy: Any = _UNSET,
) -> NotificationChannel:
    """Change a channel. Enabling a disabled channel (by hand or after failures) resets its failure count."""
    _require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    channel = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    given = {"name": name, "url": url, "secret": secret, "emails": emails, "min_severity": min_severity}
    merged = {k: (getattr(channel, k) if v is _UNSET else v) for k, v in given.items()}
    if merged["secret"] in (None, "") and channel.kind == NotificationChannel.Kind.WEBHOOK:
        merged["secret"] = channel.secret if secret is _UNSET else ""
    cleaned = channel_fields_check(kind=channel.kind, **merged)
    for k, v in cleaned.items():
        setattr(channel, k, v)
    if policy is not _UNSET:
        channel.policy = policy
    if enabled is not _UNSET:
        if enabled and not channel.enabled:
            channel.enabled, channel.consecutive_failures = True, 0
            channel.disabled_at, channel.disabled_reason = None, ""
        elif not enabled and channel.enabled:
            channel.enabled = False
            channel.disabled_at, channel.disabled_reason = timezone.now(), f"disabled by {_label(user)}"
    channel.save()
    return channel


@transaction.atomic
def channel_delete(*, channel: NotificationChannel, user: Actor) -> None:
    _require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    channel.delete()


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None
    error: str


def channel_test(*, channel: NotificationChannel, user: Actor) -> SendResult:
    """Send a test notification now, synchronously; the channel's failure count is not touched."""
    _require(user, PERM_CHANNELS_MANAGE, "manage notification channels")
    now = timezone.now()
    payload = test_payload(channel, at=now, user=user)
    return _send(
        channel,
        payload,
        delivery_id=f"test-{secrets.token_hex(8)}",
        event="test",
        subject=f"[Signalbox] Test notification for {channel.name}",
    )


# =================================================================================================
# Delivery


def alert_url(alert: Alert) -> str:
    base = settings.ALERTS_SITE_URL.rstrip("/")
    return f"{base}/dashboards/alerts/?policy={alert.policy.slug}#alert-{alert.pk}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def notification_payload(event: AlertEvent) -> dict[str, Any]:
    """The webhook body: Slack-compatible `text` and `blocks`, and the alert as data in `signalbox`."""
    alert = event.alert
    where = alert.route or "(whole policy)"
    title = f"[{alert.severity.upper()}] {event.kind}: {alert.policy.slug} / {where}: {alert.detector}"
    ev = event.evidence or {}
    url = alert_url(alert)
    fields = [
        f"*Severity*\n{alert.severity}",
        f"*Status*\n{alert.status}",
        f"*Window*\n{ev.get('window') or '—'}",
        f"*Baseline*\n{ev.get('baseline') or '—'}",
        f"*Test*\n{ev.get('test') or '—'}",
    ]
    context = f"<{url}|Open in Signalbox>"
    if event.note:
        context += f" · {event.actor_label}: {event.note}"
    return {
        "text": _clip(f"{title}\n{event.summary}", 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(event.summary or "—", 3000)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(f, 2000)} for f in fields]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context, 3000)}]},
        ],
        "signalbox": {
            "version": 1,
            "event": {
                "id": event.pk,
                "kind": event.kind,
                "at": event.at.isoformat(),
                "actor": event.actor_label,
                "note": event.note,
            },
            "alert": {
                "id": alert.pk,
                "policy": alert.policy.slug,
                "route": alert.route,
                "detector": alert.detector,
                "severity": alert.severity,
                "status": alert.status,
                "summary": event.summary,
                "evidence": ev,
                "opened_at": alert.opened_at.isoformat(),
                "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
                "url": url,
            },
        },
    }


def test_payload(channel: NotificationChannel, *, at: datetime, user: Actor) -> dict[str, Any]:
    text = f"Test notification from Signalbox for channel “{channel.name}”, sent by {_label(user)}."
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "signalbox": {
            "version": 1,
            "event": {"id": None, "kind": "test", "at": at.isoformat(), "actor": _label(user), "note": ""},
            "alert": None,
        },
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Signalbox-Signature header value: sha256=HMAC-SHA256(secret, "<timestamp>.<body>") in hex."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


MAX_REDIRECTS = 3


def webhook_post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> SendResult:
    """POST the body; follow a redirect only to the same scheme, host and port (at most 3)."""
    origin = httpx.URL(url)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = client.post(url, content=body, headers=dict(headers))
            except httpx.HTTPError as exc:
                return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:500])
            if response.is_redirect:
                target = httpx.URL(url).join(response.headers.get("location", ""))
                if (target.scheme, target.host, target.port) != (origin.scheme, origin.host, origin.port):
                    return SendResult(
                        False,
                        response.status_code,
                        f"HTTP {response.status_code}: redirect to another host ({target.host}) refused",
                    )
                url = str(target)
                continue
            if response.is_success:
                return SendResult(True, response.status_code, "")
            # The status only: the answer's body is not shown back, so a channel aimed at an
            # internal address can't be used to read what that address serves.
            return SendResult(False, response.status_code, f"HTTP {response.status_code} {response.reason_phrase}")
    return SendResult(False, response.status_code, f"more than {MAX_REDIRECTS} redirects")


def _send(
    channel: NotificationChannel, payload: dict[str, Any], *, delivery_id: str, event: str, subject: str
) -> SendResult:
    if channel.kind == NotificationChannel.Kind.WEBHOOK:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Signalbox-Alerts/1",
            "X-Signalbox-Event": event,
            "X-Signalbox-Delivery": delivery_id,
            "X-Signalbox-Timestamp": timestamp,
            "X-Signalbox-Signature": signature(channel.secret, timestamp, body),
        }
        return webhook_post(channel.url, body, headers, timeout=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS)
    try:
        send_mail(_clip(subject, 200), email_body(payload), settings.DEFAULT_FROM_EMAIL, list(channel.emails))
    except Exception as exc:  # any transport error is a failed attempt, never a crash
        return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:500])
    return SendResult(True, None, "")


def email_body(payload: dict[str, Any]) -> str:
    data = payload["signalbox"]
    alert = data.get("alert")
    if not alert:
        return payload["text"] + "\n"
    ev = alert["evidence"] or {}
    lines = [
        payload["text"],
        "",
        f"Policy: {alert['policy']}",
        f"Route: {alert['route'] or '(whole policy)'}",
        f"Detector: {alert['detector']}",
        f"Severity: {alert['severity']}",
        f"Status: {alert['status']}",
        f"Window: {ev.get('window') or '-'}",
        f"Baseline: {ev.get('baseline') or '-'}",
        f"Test: {ev.get('test') or '-'}",
        "",
        "Numbers:",
    ]
    lines += [f"  {k}: {v}" for k, v in (ev.get("numbers") or {}).items() if not isinstance(v, dict | list)]
    if data["event"]["note"]:
        lines += ["", f"Note from {data['event']['actor']}: {data['event']['note']}"]
    lines += ["", f"Open in Signalbox: {alert['url']}", ""]
    return "\n".join(lines)


def notification_deliver(*, delivery_id: int) -> float | None:
    """Make one attempt at a delivery; return the seconds to wait before the next one, or None when
    done (sent, given up, or nothing to do).

    A failure counts against the channel; at ALERTS_CHANNEL_MAX_FAILURES failures in a row the
    channel is disabled and its pending deliveries give up. The HTTP call runs outside any
    transaction, so a slow receiver holds no locks.
    """
    delivery = Delivery.objects.select_related("channel", "event__alert__policy").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (Delivery.Status.SENT, Delivery.Status.GIVEN_UP):
        return None
    channel = delivery.channel
    if not channel.enabled:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.GIVEN_UP,
            next_attempt_at=None,
            last_error=channel.disabled_reason or "channel disabled",
        )
        return None
    event = delivery.event
    payload = notification_payload(event)
    result = _send(
        channel,
        payload,
        delivery_id=str(delivery.pk),
        event=f"alert.{event.kind}",
        subject=f"[Signalbox] {payload['blocks'][0]['text']['text']}",
    )
    now = timezone.now()
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
        channel = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
        delivery.attempts += 1
        delivery.response_status = result.status
        retry_in: float | None = None
        if result.ok:
            delivery.status, delivery.sent_at, delivery.last_error, delivery.next_attempt_at = (
                Delivery.Status.SENT,
                now,
                "",
                None,
            )
            channel.consecutive_failures = 0
        else:
            delivery.last_error = result.error
            channel.consecutive_failures += 1
            if channel.enabled and channel.consecutive_failures >= settings.ALERTS_CHANNEL_MAX_FAILURES:
                channel.enabled, channel.disabled_at = False, now
                channel.disabled_reason = _clip(
                    f"disabled after {channel.consecutive_failures} failed deliveries in a row; last: {result.error}",
                    500,
                )
                logger.warning("notification channel %s disabled: %s", channel.pk, channel.disabled_reason)
            if delivery.attempts >= settings.ALERTS_DELIVERY_MAX_ATTEMPTS or not channel.enabled:
                delivery.status, delivery.next_attempt_at = Delivery.Status.GIVEN_UP, None
            else:
                retry_in = settings.ALERTS_DELIVERY_BACKOFF_SECONDS * 2 ** (delivery.attempts - 1)
                delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, now + timedelta(seconds=retry_in)
        delivery.save()
        channel.save(update_fields=["consecutive_failures", "enabled", "disabled_at", "disabled_reason"])
    return retry_in


# A delivery waiting this long past its next attempt was lost (broker down when it was queued, or a
# worker died holding its retry): the evaluator queues it again.
STUCK_AFTER = timedelta(minutes=15)


def deliveries_sweep(*, now: datetime | None = None) -> int:
    """Queue again the deliveries whose next attempt is overdue by STUCK_AFTER; return how many."""
    now = now or timezone.now()
    ids = list(
        Delivery.objects.filter(
            status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED], next_attempt_at__lt=now - STUCK_AFTER
        ).values_list("pk", flat=True)[:500]
    )
    if ids:
        Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
        deliveries_queue(ids)
    return len(ids)
