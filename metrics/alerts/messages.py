"""What each kind of channel sends and how its service's answer is judged: the Slack incoming-webhook
message (`text` and Block Kit `blocks`), the PagerDuty Events API v2 event (trigger, acknowledge,
resolve with one dedup key per alert) and the Microsoft Teams message with an Adaptive Card.

Every builder takes the notification data, the `signalbox` object of the webhook body
(`metrics.alerts.delivery.notification_data`, or the test message's `test_data`), so the services say the
same thing from one source. No Django and no database here; `delivery` sends what these build.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

# --- shared text ---------------------------------------------------------------------------------

WHOLE_POLICY = "(whole policy)"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title(data: dict[str, Any]) -> str:
    """One line naming the alert and what happened: `[TICKET] opened: checkout / extraction: escalation_band`."""
    alert, kind = data["alert"], data["event"]["kind"]
    if alert is None:
        return "Signalbox test notification"
    where = alert["route"] or WHOLE_POLICY
    return f"[{alert['severity'].upper()}] {kind}: {alert['policy']} / {where}: {alert['detector']}"


def facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The alert's short facts, in the order every message shows them."""
    alert = data["alert"]
    if alert is None:
        return []
    ev = alert["evidence"] or {}
    return [
        ("Severity", alert["severity"]),
        ("Status", alert["status"]),
        ("Window", str(ev.get("window") or "—")),
        ("Baseline", str(ev.get("baseline") or "—")),
        ("Test", str(ev.get("test") or "—")),
    ]


@dataclass(frozen=True)
class Verdict:
    """A service's answer judged: delivered, or why not and whether trying again can help."""

    ok: bool
    error: str = ""
    retryable: bool = True


def http_error(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _retryable(status: int) -> bool:
    """Whether an HTTP failure may pass: throttling, a timeout or the service's own trouble. Any
    other 4xx answers the same to the same request, so it is not tried again."""
    return status in (408, 429) or status >= 500


# --- Slack ---------------------------------------------------------------------------------------
# https://api.slack.com/messaging/webhooks, https://api.slack.com/reference/block-kit/blocks


def slack_escape(text: str) -> str:
    """Text safe inside Slack mrkdwn: `&`, `<` and `>` as entities, so no text becomes a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(data: dict[str, Any], *, url: str) -> dict[str, Any]:
    """`text` (the notification's fallback) and `blocks`: header, summary, facts, link and note."""
    alert, event = data["alert"], data["event"]
    if alert is None:
        text = slack_escape(event["text"])
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}]}
    heading = title(data)
    summary = alert["summary"] or "—"
    context = f"<{url}|Open in Signalbox>"
    if event["note"]:
        context += slack_escape(f" · {event['actor']}: {event['note']}")
    return {
        "text": clip(slack_escape(f"{heading}\n{summary}"), 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": clip(heading, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(slack_escape(summary), 3000)}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": clip(f"*{name}*\n{slack_escape(value)}", 2000)}
                    for name, value in facts(data)
                ],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(context, 3000)}]},
        ],
    }


# The error codes Slack answers a webhook with (its documented list): named in the delivery log,
# as nothing else of an answer is.
SLACK_ERRORS = frozenset(
    {
        "invalid_payload",
        "user_not_found",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "posting_to_general_channel_denied",
        "too_many_attachments",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "invalid_token",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "missing_text_or_fallback_or_attachments",
        "rate_limited",
    }
)


def slack_verdict(status: int, body: bytes) -> Verdict:
    """Slack answers 200 with the body `ok`; a failure with a status and an error code."""
    answer = body.decode("utf-8", "replace").strip()
    if 200 <= status < 300:
        if answer == "ok":
            return Verdict(True)
        return Verdict(False, f'HTTP {status} without Slack\'s "ok": not a Slack incoming webhook', retryable=False)
    code = f" ({answer})" if answer in SLACK_ERRORS else ""
    return Verdict(False, f"{http_error(status)}{code}", retryable=_retryable(status))


# --- PagerDuty Events API v2 -----------------------------------------------------------------------
# https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ (and …/acknowledge-events, …/resolve-events)

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_ROUTING_KEY = re.compile(r"[A-Za-z0-9]{32}")

# What each alert event does to the page. Escalating and reopening trigger again under the same
# dedup key: an open page takes the event into its log, a resolved one opens a new incident.
PAGERDUTY_ACTIONS: dict[str, str] = {
    "opened": "trigger",
    "escalated": "trigger",
    "reopened": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}
# Signalbox severity → PagerDuty severity (critical, error, warning or info).
PAGERDUTY_SEVERITY: dict[str, str] = {"page": "critical", "ticket": "warning", "info": "info"}


def pagerduty_dedup_key(alert_id: int) -> str:
    """The alert's dedup key: the same for every event of the alert, so they all reach one page."""
    return f"signalbox-alert-{alert_id}"


def pagerduty_event(data: dict[str, Any], *, routing_key: str, action: str, dedup_key: str) -> dict[str, Any]:
    """The event for `action`; a trigger carries the alert (summary, source, severity, timestamp,
    component, group, class, custom details, link), acknowledge and resolve only the key."""
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}
    if action != "trigger":
        return event
    alert, happened = data["alert"], data["event"]
    if alert is None:
        event["payload"] = {
            "summary": clip(happened["text"], 1024),
            "source": "signalbox",
            "severity": "info",
            "timestamp": happened["at"],
            "custom_details": {"sent_by": happened["actor"]},
        }
        event["client"] = "Signalbox"
        return event
    where = alert["route"] or WHOLE_POLICY
    ev = alert["evidence"] or {}
    event["payload"] = {
        "summary": clip(f"[Signalbox] {alert['policy']} / {where}: {alert['detector']}: {alert['summary']}", 1024),
        "source": f"{alert['policy']}/{alert['route']}" if alert["route"] else alert["policy"],
        "severity": PAGERDUTY_SEVERITY[alert["severity"]],
        "timestamp": happened["at"],
        "component": where,
        "group": alert["policy"],
        "class": alert["detector"],
        "custom_details": {
            "event": happened["kind"],
            "severity": alert["severity"],
            "status": alert["status"],
            "summary": alert["summary"],
            **{name.lower(): value for name, value in facts(data)[2:]},
            "numbers": ev.get("numbers") or {},
            "note": happened["note"],
            "actor": happened["actor"],
            "opened_at": alert["opened_at"],
        },
    }
    event["client"] = "Signalbox"
    event["client_url"] = alert["url"]
    event["links"] = [{"href": alert["url"], "text": "Open in Signalbox"}]
    return event


def pagerduty_verdict(status: int, body: bytes) -> Verdict:
    """PagerDuty answers 202 with `{"status": "success", …}`; 400 is an event it will never take,
    429 and 5xx are worth another try."""
    if 200 <= status < 300:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("status") == "success":
            return Verdict(True)
        return Verdict(False, f'HTTP {status} without PagerDuty\'s "success": not the Events API v2')
    if status == 400:
        return Verdict(False, f"{http_error(400)}: PagerDuty refused the event (check the routing key)", False)
    return Verdict(False, http_error(status), retryable=_retryable(status))


# --- Microsoft Teams -----------------------------------------------------------------------------
# https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
# (the message with an Adaptive Card attachment, taken by incoming webhooks and by the Workflows app)

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_VERSION = "1.4"
_TEAMS_COLOUR = {"page": "Attention", "ticket": "Warning", "info": "Accent"}


def teams_message(data: dict[str, Any]) -> dict[str, Any]:
    """A `message` whose one attachment is an Adaptive Card: title, summary, facts, note, link."""
    alert, event = data["alert"], data["event"]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title(data),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": "Good"
            if alert is not None and alert["status"] == "resolved"
            else _TEAMS_COLOUR.get(alert["severity"] if alert else "info", "Default"),
        },
        {"type": "TextBlock", "text": (alert["summary"] if alert else event["text"]) or "—", "wrap": True},
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if alert is not None:
        body.append({"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in facts(data)]})
        if event["note"]:
            body.append({"type": "TextBlock", "text": f"{event['actor']}: {event['note']}", "wrap": True})
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Signalbox", "url": alert["url"]}]
    return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


def teams_verdict(status: int, body: bytes) -> Verdict:
    """A workflow answers 202, an incoming webhook 200 with `1`. A webhook that could not post answers
    200 with the reason instead (throttling among them), so any other 200 is a failure to try again."""
    if 200 <= status < 300:
        answer = body.decode("utf-8", "replace").strip()
        if status == 202 or answer in ("", "1"):
            return Verdict(True)
        throttled = " (throttled)" if "429" in answer else ""
        return Verdict(False, f"HTTP {status} but Teams did not post the message{throttled}")
    return Verdict(False, http_error(status), retryable=_retryable(status))
