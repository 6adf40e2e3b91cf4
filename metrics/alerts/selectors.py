"""Reads of alerts and notification channels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from metrics.rollups.selectors import policy_id_of


def alert_list(
    *,
    policy: Any = None,
    status: str | Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    detector: str | None = None,
    route: str | None = None,
    severity: str | None = None,
) -> QuerySet[Any]:
    """Alerts, newest first, with their policy; optionally of one policy (or id), status(es),
    detector, route ("" = policy-wide) and severity.

    `since`/`until` keep the alerts active at some moment of [since, until): opened before `until`
    and not resolved before `since` (a report of a month lists every alert that was open in it).
    """
    from metrics.models import Alert

    qs = Alert.objects.select_related("policy")
    if policy is not None:
        qs = qs.filter(policy_id=policy_id_of(policy))
    if status:
        qs = qs.filter(status=status) if isinstance(status, str) else qs.filter(status__in=list(status))
    if detector:
        qs = qs.filter(detector=detector)
    if route is not None:
        qs = qs.filter(route=route)
    if severity:
        qs = qs.filter(severity=severity)
    if until is not None:
        qs = qs.filter(opened_at__lt=until)
    if since is not None:
        qs = qs.filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=since))
    return qs.order_by("-opened_at", "-id")


def alert_get(alert_id: int) -> Any:
    """One alert with its policy, its history and each event's deliveries (3 queries)."""
    from django.db.models import Prefetch

    from controlplane.errors import NotFound
    from metrics.models import Alert, AlertEvent

    alert = (
        Alert.objects.select_related("policy")
        .prefetch_related(
            Prefetch("events", queryset=AlertEvent.objects.prefetch_related("deliveries__channel").order_by("id"))
        )
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        raise NotFound(f"No alert {alert_id}.", {"alert": ["not found"]})
    return alert


def channel_list() -> QuerySet[Any]:
    """Notification channels with their policy scope, by name."""
    from metrics.models import NotificationChannel

    return NotificationChannel.objects.select_related("policy").order_by("name", "id")
