"""Delivery of notifications: which channels an alert event goes to, the webhook body (Slack-compatible,
signed with the channel's secret) and the email, the attempts with their retries and the channel's
failure count, and the sweep that queues lost deliveries again (docs/alerts.md, "Delivery").

The HTTP call runs outside any transaction; tasks are queued on commit, by name
(`NOTIFICATION_DELIVER_TASK`), so nothing here imports `metrics.tasks`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.celery import queue_now
from controlplane.outbound import outbound_post
from metrics.alerts.access import Actor, actor_label
from metrics.models import SEVERITY_RANK, Alert, AlertEvent, Delivery, NotificationChannel

logger = logging.getLogger(__name__)

NOTIFICATION_DELIVER_TASK = "metrics.notification_deliver"  # the Celery task of `notification_deliver`


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None
    error: str


def _channels_for(alert: Alert) -> list[NotificationChannel]:
    rank = SEVERITY_RANK[alert.severity]
    channels = NotificationChannel.objects.filter(Q(policy__isnull=True) | Q(policy_id=alert.policy_id), enabled=True)
    return [c for c in channels if SEVERITY_RANK[c.min_severity] <= rank]


def deliveries_create(event: AlertEvent) -> None:
    """One delivery of `event` per enabled channel that takes its severity, queued on commit."""
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


def alert_url(alert: Alert) -> str:
    base = settings.ALERTS_SITE_URL.rstrip("/")
    return f"{base}/dashboards/alerts/?policy={alert.policy.slug}#alert-{alert.pk}"


def clip(text: str, limit: int) -> str:
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
        "text": clip(f"{title}\n{event.summary}", 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(event.summary or "—", 3000)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": clip(f, 2000)} for f in fields]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(context, 3000)}]},
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
    text = f"Test notification from Signalbox for channel “{channel.name}”, sent by {actor_label(user)}."
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        "signalbox": {
            "version": 1,
            "event": {"id": None, "kind": "test", "at": at.isoformat(), "actor": actor_label(user), "note": ""},
            "alert": None,
        },
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Signalbox-Signature header value: sha256=HMAC-SHA256(secret, "<timestamp>.<body>") in hex."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> SendResult:
    """POST the body through the outbound rules (`controlplane.outbound`: public addresses only,
    no credentials in the URL, redirects only to the same origin, one text for any transport failure)."""
    result = outbound_post(url, body, headers, timeout=timeout)
    return SendResult(result.ok, result.status, result.error)


def send(
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
        send_mail(clip(subject, 200), email_body(payload), settings.DEFAULT_FROM_EMAIL, list(channel.emails))
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
    result = send(
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
                channel.disabled_reason = clip(
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
