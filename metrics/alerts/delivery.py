"""Delivery of notifications: which channels an alert event goes to, the webhook body (Slack-compatible,
signed with the channel's secret), the email, the Slack, PagerDuty and Teams requests (their bodies
and verdicts are `metrics.alerts.messages`), the attempts with their retries and the channel's
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
from collections.abc import Callable, Iterable, Mapping
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
from metrics.alerts import messages
from metrics.alerts.access import Actor, actor_label
from metrics.alerts.messages import clip
from metrics.models import SEVERITY_RANK, Alert, AlertEvent, Delivery, NotificationChannel

logger = logging.getLogger(__name__)

NOTIFICATION_DELIVER_TASK = "metrics.notification_deliver"  # the Celery task of `notification_deliver`
ANSWER_LIMIT = 1024  # bytes of a Slack, PagerDuty or Teams answer read to judge it
USER_AGENT = "Signalbox-Alerts/1"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None
    error: str
    retryable: bool = True  # False: the same request can only fail again (an event PagerDuty refused)
    retry_after: float | None = None  # seconds the receiver asked to wait (Retry-After)


def channel_takes(kind: str, event_kind: str) -> bool:
    """Whether a channel of `kind` is told about an event of `event_kind`: PagerDuty about every
    event that changes the page (acknowledgements too), the others about `AlertEvent.NOTIFY`."""
    if kind == NotificationChannel.Kind.PAGERDUTY:
        return event_kind in messages.PAGERDUTY_ACTIONS
    return event_kind in AlertEvent.NOTIFY


def _channels_for(alert: Alert, event_kind: str) -> list[NotificationChannel]:
    rank = SEVERITY_RANK[alert.severity]
    channels = NotificationChannel.objects.filter(Q(policy__isnull=True) | Q(policy_id=alert.policy_id), enabled=True)
    return [c for c in channels if SEVERITY_RANK[c.min_severity] <= rank and channel_takes(c.kind, event_kind)]


def deliveries_create(event: AlertEvent) -> None:
    """One delivery of `event` per enabled channel that takes its kind and severity, queued on commit."""
    channels = _channels_for(event.alert, event.kind)
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


def notification_data(event: AlertEvent) -> dict[str, Any]:
    """The event and its alert as data: the webhook body's `signalbox` object, and what every
    other kind of channel builds its message from (`metrics.alerts.messages`)."""
    alert = event.alert
    return {
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
            "evidence": event.evidence or {},
            "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "url": alert_url(alert),
        },
    }


def webhook_body(data: dict[str, Any]) -> dict[str, Any]:
    """The webhook body: a Slack message (`text` and `blocks`) and the data in `signalbox`."""
    url = data["alert"]["url"] if data["alert"] else ""
    return {**messages.slack_message(data, url=url), "signalbox": data}


def test_data(channel: NotificationChannel, *, at: datetime, user: Actor) -> dict[str, Any]:
    """The data of a test message: no alert, and the text to show in `event.text`."""
    text = f"Test notification from Signalbox for channel “{channel.name}”, sent by {actor_label(user)}."
    return {
        "version": 1,
        "event": {
            "id": None,
            "kind": "test",
            "at": at.isoformat(),
            "actor": actor_label(user),
            "note": "",
            "text": text,
        },
        "alert": None,
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Signalbox-Signature header value: sha256=HMAC-SHA256(secret, "<timestamp>.<body>") in hex."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> SendResult:
    """POST the body through the outbound rules (`controlplane.outbound`: public addresses only,
    no credentials in the URL, redirects only to the same origin, one text for any transport failure)."""
    result = outbound_post(url, body, headers, timeout=timeout)
    return SendResult(result.ok, result.status, result.error, retry_after=result.retry_after)


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def service_post(url: str, payload: dict[str, Any], judge: Callable[[int, bytes], messages.Verdict]) -> SendResult:
    """POST `payload` to a service (Slack, PagerDuty, Teams) through the outbound rules and judge its
    answer with `judge`. Transport failures and refused redirects keep the outbound error."""
    result = outbound_post(
        url,
        _json(payload),
        {"Content-Type": "application/json", "User-Agent": USER_AGENT},
        timeout=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS,
        read_limit=ANSWER_LIMIT,
    )
    if result.status is None or 300 <= result.status < 400:
        return SendResult(result.ok, result.status, result.error)
    verdict = judge(result.status, result.body)
    return SendResult(verdict.ok, result.status, verdict.error, verdict.retryable, result.retry_after)


def pagerduty_send(channel: NotificationChannel, data: dict[str, Any], *, action: str, dedup_key: str) -> SendResult:
    event = messages.pagerduty_event(data, routing_key=channel.routing_key, action=action, dedup_key=dedup_key)
    return service_post(channel.url or messages.PAGERDUTY_EVENTS_URL, event, messages.pagerduty_verdict)


def send(channel: NotificationChannel, data: dict[str, Any], *, delivery_id: str, event: str) -> SendResult:
    """One attempt to tell `channel` about `data` (an alert event's, or a test's): the request or
    mail its kind sends. PagerDuty takes alert events only (a test is `channel_test`'s pair of events)."""
    kind = channel.kind
    if kind == NotificationChannel.Kind.WEBHOOK:
        body = _json(webhook_body(data))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Signalbox-Event": event,
            "X-Signalbox-Delivery": delivery_id,
            "X-Signalbox-Timestamp": timestamp,
            "X-Signalbox-Signature": signature(channel.secret, timestamp, body),
        }
        return webhook_post(channel.url, body, headers, timeout=settings.ALERTS_WEBHOOK_TIMEOUT_SECONDS)
    if kind == NotificationChannel.Kind.SLACK:
        url = data["alert"]["url"] if data["alert"] else ""
        return service_post(channel.url, messages.slack_message(data, url=url), messages.slack_verdict)
    if kind == NotificationChannel.Kind.TEAMS:
        return service_post(channel.url, messages.teams_message(data), messages.teams_verdict)
    if kind == NotificationChannel.Kind.PAGERDUTY:
        action = messages.PAGERDUTY_ACTIONS[data["event"]["kind"]]
        return pagerduty_send(channel, data, action=action, dedup_key=messages.pagerduty_dedup_key(data["alert"]["id"]))
    subject = f"[Signalbox] {messages.title(data) if data['alert'] else f'Test notification for {channel.name}'}"
    try:
        send_mail(clip(subject, 200), email_body(data), settings.DEFAULT_FROM_EMAIL, list(channel.emails))
    except Exception as exc:  # any transport error is a failed attempt, never a crash
        return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:500])
    return SendResult(True, None, "")


def email_body(data: dict[str, Any]) -> str:
    alert = data.get("alert")
    if not alert:
        return data["event"]["text"] + "\n"
    ev = alert["evidence"] or {}
    lines = [
        messages.title(data),
        alert["summary"],
        "",
        f"Policy: {alert['policy']}",
        f"Route: {alert['route'] or messages.WHOLE_POLICY}",
        f"Detector: {alert['detector']}",
        *(f"{name}: {value if value != '—' else '-'}" for name, value in messages.facts(data)),
        "",
        "Numbers:",
    ]
    lines += [f"  {k}: {v}" for k, v in (ev.get("numbers") or {}).items() if not isinstance(v, dict | list)]
    if data["event"]["note"]:
        lines += ["", f"Note from {data['event']['actor']}: {data['event']['note']}"]
    lines += ["", f"Open in Signalbox: {alert['url']}", ""]
    return "\n".join(lines)


SUPERSEDED = "superseded: a later event of the alert was already sent to this channel"


def notification_deliver(*, delivery_id: int) -> float | None:
    """Make one attempt at a delivery; return the seconds to wait before the next one, or None when
    done (sent, given up, or nothing to do).

    A failure counts against the channel; at ALERTS_CHANNEL_MAX_FAILURES failures in a row the
    channel is disabled and its pending deliveries give up. A failure the receiver will only repeat
    (`SendResult.retryable` false) gives up at once; a Retry-After longer than the backoff is waited
    out. A PagerDuty delivery whose alert has a later event already sent to the channel gives up
    instead of sending: a trigger retried after its resolve would page for a resolved alert. The
    HTTP call runs outside any transaction, so a slow receiver holds no locks.
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
    if (
        channel.kind == NotificationChannel.Kind.PAGERDUTY
        and Delivery.objects.filter(
            channel=channel, event__alert_id=event.alert_id, event_id__gt=event.pk, status=Delivery.Status.SENT
        ).exists()
    ):
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.GIVEN_UP, next_attempt_at=None, last_error=SUPERSEDED
        )
        return None
    result = send(channel, notification_data(event), delivery_id=str(delivery.pk), event=f"alert.{event.kind}")
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
            if (
                delivery.attempts >= settings.ALERTS_DELIVERY_MAX_ATTEMPTS
                or not channel.enabled
                or not result.retryable
            ):
                delivery.status, delivery.next_attempt_at = Delivery.Status.GIVEN_UP, None
            else:
                retry_in = max(
                    settings.ALERTS_DELIVERY_BACKOFF_SECONDS * 2 ** (delivery.attempts - 1), result.retry_after or 0.0
                )
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
