"""The alert lifecycle: at most one active alert per policy, detector and route, opened, refreshed,
escalated, resolved and reopened by the evaluator's verdicts (`alert_record`, `alert_retire`), and
acknowledged or resolved by an editor; each step an `AlertEvent` whose notifications are queued
(docs/alerts.md, "Lifecycle")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from controlplane.errors import Conflict
from metrics.alerts.access import PERM_ALERTS_HANDLE, Actor, actor_label, require, text_clean
from metrics.alerts.delivery import deliveries_create
from metrics.alerts.detectors.base import Evaluation
from metrics.models import SEVERITY_RANK, Alert, AlertEvent
from routing.models import Policy

MAX_NOTE = 2000


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


def _event_add(alert: Alert, kind: str, *, at: datetime, user: Actor = None, note: str = "") -> AlertEvent:
    """Record one step of the alert's history; queue its notifications (to the channels that take
    this kind of event, `delivery.channel_takes`) after commit."""
    event = AlertEvent.objects.create(
        alert=alert,
        kind=kind,
        at=at,
        actor=user if getattr(user, "pk", None) else None,
        actor_label=actor_label(user),
        note=note,
        severity=alert.severity,
        summary=alert.summary,
        evidence=alert.evidence,
    )
    deliveries_create(event)
    return event


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


def alert_retire(*, policy: Policy, alert: Alert, at: datetime) -> Change:
    """Resolve an active alert that nothing evaluates any more: its route or budget left the live policy."""
    alert.status, alert.resolved_at, alert.last_evaluated_at = Alert.Status.RESOLVED, at, at
    alert.save()
    _event_add(
        alert,
        AlertEvent.Kind.RESOLVED,
        at=at,
        note="Resolved automatically: the route or budget is no longer in the live policy.",
    )
    return Change.of(policy, alert, "resolved")


def _alert_locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().select_related("policy").get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user: Actor, note: str) -> Alert:
    """Acknowledge an open alert: someone is on it. The note is required."""
    require(user, PERM_ALERTS_HANDLE, "acknowledge alerts")
    note = text_clean(note, "note", required=True, max_length=MAX_NOTE)
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
    require(user, PERM_ALERTS_HANDLE, "resolve alerts")
    note = text_clean(note, "note", required=False, max_length=MAX_NOTE)
    alert = _alert_locked(alert)
    if not alert.is_active:
        raise Conflict("The alert is already resolved.", {"status": ["is resolved"]})
    now = timezone.now()
    alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
    alert.resolved_by = user if getattr(user, "pk", None) else None
    alert.save(update_fields=["status", "resolved_at", "resolved_by"])
    _event_add(alert, AlertEvent.Kind.RESOLVED, at=now, user=user, note=note or "Resolved by hand.")
    return alert
