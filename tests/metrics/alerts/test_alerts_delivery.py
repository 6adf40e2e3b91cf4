"""Notification delivery against a real HTTP server on 127.0.0.1: Slack-compatible, HMAC-signed
webhooks sent after commit, retried on failure, a channel disabled after repeated failures; email
in the outbox. Celery runs eagerly here (the settings' default without a broker), so every retry
runs at once instead of after its countdown."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from metrics.alerts import channels, lifecycle
from metrics.models import Alert, Delivery, NotificationChannel
from tests import factories
from tests.metrics.alerts.test_alerts import AT, evaluate, stream


class Receiver:
    """A webhook receiver: records every request; answers with the next queued status (200 after)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.redirect_to: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if receiver.redirect_to and self.path == "/hook":
                    self.send_response(307)
                    self.send_header("Location", receiver.redirect_to)
                    self.end_headers()
                    return
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def verified(self, request: dict[str, Any], secret: str) -> bool:
        """The receiver's side of the signature check, as docs/alerts.md describes it."""
        timestamp = request["headers"]["X-Signalbox-Timestamp"]
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
        return hmac.compare_digest(request["headers"]["X-Signalbox-Signature"], f"sha256={expected}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def checkout(db: Any) -> Any:
    return factories.policy("checkout")


@pytest.fixture
def fast_retries(settings: Any) -> Any:
    settings.ALERTS_DELIVERY_MAX_ATTEMPTS = 3
    settings.ALERTS_DELIVERY_BACKOFF_SECONDS = 0.01
    settings.ALERTS_CHANNEL_MAX_FAILURES = 5
    return settings


def webhook(receiver: Receiver, **fields: Any) -> NotificationChannel:
    return channels.channel_create(user=None, kind="webhook", name="ops", url=receiver.url, secret="s3cret", **fields)


def open_escalation_alert(django_capture_on_commit_callbacks: Any) -> Alert:
    with django_capture_on_commit_callbacks(execute=True):
        evaluate()
    return Alert.objects.get(detector="escalation_band")


def test_webhook__alert_opened__signed_slack_payload_posted_after_commit(
    checkout: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    channel = webhook(receiver)
    stream(checkout, change_hours=24, change={"escalation": 0.45})

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        evaluate()
    assert receiver.requests == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()

    [request] = receiver.requests
    assert receiver.verified(request, "s3cret")
    assert not receiver.verified(request, "another secret")
    headers = request["headers"]
    assert headers["X-Signalbox-Event"] == "alert.opened"
    assert headers["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    alert = Alert.objects.get(detector="escalation_band")
    assert body["text"].startswith("[TICKET] opened: checkout / extraction: escalation_band")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert body["signalbox"]["alert"]["id"] == alert.pk
    assert body["signalbox"]["alert"]["route"] == "extraction"
    assert body["signalbox"]["alert"]["evidence"]["window"] == "the last 24 h"
    delivery = Delivery.objects.get()
    assert (delivery.channel, delivery.status, delivery.attempts, delivery.response_status) == (channel, "sent", 1, 200)
    assert headers["X-Signalbox-Delivery"] == str(delivery.pk)


def test_webhook__alert_unchanged_at_next_evaluation__not_sent_again(
    checkout: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    webhook(receiver)
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    open_escalation_alert(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate(at=AT + timedelta(minutes=5))
    assert len(receiver.requests) == 1


def test_webhook__receiver_answers_500_twice__retried_then_sent(
    checkout: Any, receiver: Receiver, fast_retries: Any, django_capture_on_commit_callbacks: Any
) -> None:
    channel = webhook(receiver)
    receiver.statuses = [500, 503]
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    open_escalation_alert(django_capture_on_commit_callbacks)

    assert len(receiver.requests) == 3
    assert len({r["headers"]["X-Signalbox-Delivery"] for r in receiver.requests}) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == ("sent", 3, 200, "")
    channel.refresh_from_db()
    assert channel.consecutive_failures == 0  # a success resets the count


def test_webhook__receiver_keeps_failing__delivery_given_up_after_max_attempts(
    checkout: Any, receiver: Receiver, fast_retries: Any, django_capture_on_commit_callbacks: Any
) -> None:
    channel = webhook(receiver)
    receiver.statuses = [500] * 10
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    open_escalation_alert(django_capture_on_commit_callbacks)

    assert len(receiver.requests) == 3
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("given_up", 3, 500)
    # The status, never the receiver's body ("ok"): a channel must not read what an address serves.
    assert delivery.last_error == "HTTP 500 Internal Server Error"
    channel.refresh_from_db()
    assert (channel.enabled, channel.consecutive_failures) == (True, 3)


def test_webhook__repeated_failures__channel_disabled_and_reenabling_resets_the_count(
    checkout: Any, receiver: Receiver, fast_retries: Any, editor: Any, django_capture_on_commit_callbacks: Any
) -> None:
    channel = webhook(receiver)
    receiver.statuses = [500] * 10
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    alert = open_escalation_alert(django_capture_on_commit_callbacks)  # 3 failures
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.alert_resolve(alert=alert, user=editor, note="done")  # 2 more: the fifth disables it

    assert len(receiver.requests) == 5
    channel.refresh_from_db()
    assert (channel.enabled, channel.consecutive_failures) == (False, 5)
    assert channel.disabled_at is not None
    assert channel.disabled_reason.startswith("disabled after 5 failed deliveries in a row; last: HTTP 500")
    assert list(Delivery.objects.order_by("id").values_list("status", "attempts")) == [("given_up", 3), ("given_up", 2)]

    # A disabled channel gets nothing.
    with django_capture_on_commit_callbacks(execute=True):
        evaluate(at=AT + timedelta(minutes=5))  # reopens the alert
    assert len(receiver.requests) == 5

    channels.channel_update(channel=channel, user=None, enabled=True)
    channel.refresh_from_db()
    assert (channel.enabled, channel.consecutive_failures, channel.disabled_at, channel.disabled_reason) == (
        True,
        0,
        None,
        "",
    )


def test_webhook__redirect_to_another_host__not_followed(
    checkout: Any, receiver: Receiver, fast_retries: Any, django_capture_on_commit_callbacks: Any
) -> None:
    webhook(receiver)
    receiver.redirect_to = "http://localhost:9/elsewhere"
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    open_escalation_alert(django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    assert delivery.status == "given_up"
    assert "redirect to another host (localhost) refused" in delivery.last_error
    assert {r["path"] for r in receiver.requests} == {"/hook"}


def test_webhook__redirect_on_the_same_host__followed_with_the_same_signed_body(
    checkout: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    webhook(receiver)
    receiver.redirect_to = receiver.url.replace("/hook", "/moved")
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    open_escalation_alert(django_capture_on_commit_callbacks)
    assert [r["path"] for r in receiver.requests] == ["/hook", "/moved"]
    assert receiver.verified(receiver.requests[1], "s3cret")
    assert Delivery.objects.get().status == "sent"


def test_webhook__severity_below_the_channels_minimum__not_sent(
    checkout: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    webhook(receiver, min_severity="page")
    stream(checkout, change_hours=24, change={"escalation": 0.45})  # a ticket
    open_escalation_alert(django_capture_on_commit_callbacks)
    assert receiver.requests == []
    assert not Delivery.objects.exists()


def test_webhook__channel_scoped_to_another_policy__not_sent(
    checkout: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    webhook(receiver, policy=factories.policy("other"))
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    open_escalation_alert(django_capture_on_commit_callbacks)
    assert receiver.requests == []


def test_email__alert_opened_and_resolved__two_mails_with_the_evidence(
    checkout: Any, mailoutbox: list[Any], editor: Any, django_capture_on_commit_callbacks: Any
) -> None:
    channels.channel_create(user=None, kind="email", name="team", emails=["oncall@example.com", "lead@example.com"])
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    alert = open_escalation_alert(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.alert_resolve(alert=alert, user=editor, note="prompt reverted")

    assert [m.subject for m in mailoutbox] == [
        "[Signalbox] [TICKET] opened: checkout / extraction: escalation_band",
        "[Signalbox] [TICKET] resolved: checkout / extraction: escalation_band",
    ]
    assert mailoutbox[0].to == ["oncall@example.com", "lead@example.com"]
    body = mailoutbox[0].body
    assert "Window: the last 24 h" in body
    assert "Test: Wilson score interval, 99%" in body
    assert f"#alert-{alert.pk}" in body
    assert f"Note from {editor.username}: prompt reverted" in mailoutbox[1].body
    assert list(Delivery.objects.values_list("status", flat=True)) == ["sent", "sent"]


def test_channel_test__webhook__signed_test_message_sent_and_counters_untouched(receiver: Receiver, db: Any) -> None:
    channel = webhook(receiver)
    receiver.statuses = [500]
    result = channels.channel_test(channel=channel, user=None)
    assert (result.ok, result.status) == (False, 500)
    result = channels.channel_test(channel=channel, user=None)
    assert (result.ok, result.status, result.error) == (True, 200, "")
    assert receiver.verified(receiver.requests[1], "s3cret")
    assert json.loads(receiver.requests[1]["body"])["signalbox"]["event"]["kind"] == "test"
    channel.refresh_from_db()
    assert channel.consecutive_failures == 0


def test_sweep__delivery_lost_in_the_queue__sent_by_the_next_evaluation(
    checkout: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    webhook(receiver)
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    with django_capture_on_commit_callbacks(execute=False):
        evaluate()  # the queueing callback never runs: as if the broker was down
    Delivery.objects.update(next_attempt_at=AT)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate(at=AT + timedelta(minutes=5))
    assert len(receiver.requests) == 1
    assert Delivery.objects.get().status == "sent"
