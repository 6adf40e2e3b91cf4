"""Slack, PagerDuty (Events API v2) and Microsoft Teams channels: created through the REST API and the
admin (each bad field refused by name), alerts delivered to live receivers on 127.0.0.1 standing in
for each service, every body checked against a JSON Schema written from the service's public docs
(tests/metrics/alerts/schemas/), each service's answer judged as it documents it, acknowledge and
resolve reaching the PagerDuty page under the alert's one dedup key, retries with backoff, the
severity filter and "send test". Celery runs eagerly here, so retries run at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from jsonschema import Draft202012Validator

from metrics.alerts import delivery
from metrics.models import Alert, Delivery, NotificationChannel
from tests import factories
from tests.metrics.alerts.test_alerts import AT, evaluate, stream

BASE = "/api/v1/metrics"
CHANNELS = f"{BASE}/channels/"
ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
SCHEMAS = Path(__file__).parent / "schemas"

SLACK_OK = (200, b"ok", {})
PAGERDUTY_OK = (202, b'{"status":"success","message":"Event processed","dedup_key":"k"}', {})
TEAMS_WORKFLOW_OK = (202, b"", {})


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


SLACK, PAGERDUTY, TEAMS = validator("slack_message"), validator("pagerduty_event"), validator("teams_message")


def problems(schema: Draft202012Validator, body: Any) -> list[str]:
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in schema.iter_errors(body))


class Service:
    """A stand-in for Slack, PagerDuty or Teams on 127.0.0.1: records every POST and answers with the
    next queued (status, body, headers), then with its path's answer in `by_path`, then with `default`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, bytes, dict[str, str]]] = []
        self.default: tuple[int, bytes, dict[str, str]] = SLACK_OK
        self.by_path: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if service.answers:
                    status, answer, headers = service.answers.pop(0)
                else:
                    status, answer, headers = service.by_path.get(self.path, service.default)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def service() -> Iterator[Service]:
    s = Service()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture
def checkout(db: Any) -> Any:
    return factories.policy("checkout")


@pytest.fixture
def fast_retries(settings: Any) -> Any:
    settings.ALERTS_DELIVERY_MAX_ATTEMPTS = 3
    settings.ALERTS_DELIVERY_BACKOFF_SECONDS = 0.01
    settings.ALERTS_CHANNEL_MAX_FAILURES = 5
    return settings


def create(api: Any, publisher: Any, **body: Any) -> dict[str, Any]:
    response = api(publisher).post(CHANNELS, {"name": body.pop("name", "ops"), **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def open_alert(checkout: Any, capture: Any) -> Alert:
    """An escalation_band alert (ticket) on checkout/extraction, opened by the evaluator; its
    notifications sent."""
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    with capture(execute=True):
        evaluate()
    return Alert.objects.get(detector="escalation_band")


# ------------------------------------------------------------------------------ the schemas bite


def test_schemas__reject_what_the_services_would_refuse() -> None:
    """The schemas are not vacuous: the generic webhook body is no Slack message, a Signalbox
    severity is no PagerDuty one, a card without its attachment wrapper is no Teams message."""
    assert problems(SLACK, {"text": "t", "blocks": [{"type": "section"}], "signalbox": {}})
    assert problems(
        SLACK, {"text": "t", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]}
    )
    trigger = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "k",
        "payload": {"summary": "s", "source": "x", "severity": "page", "timestamp": "now", "custom_details": {}},
    }
    assert len(problems(PAGERDUTY, trigger)) == 2  # severity and timestamp
    assert problems(PAGERDUTY, {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "k", "x": 1})
    assert problems(TEAMS, {"type": "AdaptiveCard", "version": "1.4", "body": []})


# ------------------------------------------------------------------------- creating: bad input


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"kind": "slack"}, "url", "This field is required."),
        ({"kind": "slack", "url": "http://hooks.slack.com/services/T1/B1/x"}, "url", "https"),
        ({"kind": "slack", "url": "hooks.slack.com/services/T1/B1/x"}, "url", "https:// URL"),
        ({"kind": "slack", "url": "https://10.0.0.5/services/x"}, None, None),  # allowed here: see the fixture
        ({"kind": "slack", "url": "https://hooks.slack.com/services/T1/B1/x", "secret": "s"}, "secret", "webhook"),
        (
            {"kind": "slack", "url": "https://hooks.slack.com/services/T1/B1/x", "routing_key": ROUTING_KEY},
            "routing_key",
            "only for pagerduty channels",
        ),
        (
            {"kind": "slack", "url": "https://hooks.slack.com/services/T1/B1/x", "emails": ["a@example.com"]},
            "emails",
            "only for email channels",
        ),
        ({"kind": "teams"}, "url", "This field is required."),
        ({"kind": "teams", "url": "http://example.webhook.office.com/webhookb2/x"}, "url", "Teams takes https only"),
        ({"kind": "teams", "url": "https://example.webhook.office.com/x", "secret": "s"}, "secret", "webhook"),
        ({"kind": "pagerduty"}, "routing_key", "This field is required."),
        ({"kind": "pagerduty", "routing_key": ROUTING_KEY[:31]}, "routing_key", "32-character"),
        ({"kind": "pagerduty", "routing_key": ROUTING_KEY + "a"}, "routing_key", "32-character"),
        (
            {"kind": "pagerduty", "routing_key": "e93facc0-4764-012d-7bfb-002500d5d1"},
            "routing_key",
            "letters and digits",
        ),
        (
            {"kind": "pagerduty", "routing_key": ROUTING_KEY, "url": "http://events.pagerduty.com/v2/enqueue"},
            "url",
            "PagerDuty takes https only",
        ),
        ({"kind": "pagerduty", "routing_key": ROUTING_KEY, "url": "ftp://events.pagerduty.com/x"}, "url", "https"),
        ({"kind": "pagerduty", "routing_key": ROUTING_KEY, "secret": "s"}, "secret", "webhook"),
        ({"kind": "pagerduty", "routing_key": ROUTING_KEY, "emails": ["a@example.com"]}, "emails", "email"),
        ({"kind": "pagerduty", "routing_key": ROUTING_KEY, "min_severity": "loud"}, "min_severity", "valid choice"),
        ({"kind": "email", "emails": ["a@example.com"], "routing_key": ROUTING_KEY}, "routing_key", "pagerduty"),
        ({"kind": "webhook", "url": "https://hooks.example.com/x", "routing_key": ROUTING_KEY}, "routing_key", "pager"),
    ],
)
def test_channel_create__bad_field__400_naming_it_and_nothing_created(
    api: Any, publisher: Any, settings: Any, body: dict[str, Any], field: str | None, reason: str | None
) -> None:
    response = api(publisher).post(CHANNELS, {"name": "x", **body}, format="json")
    if field is None:  # a private address over https, with OUTBOUND_ALLOW_PRIVATE_NETWORKS on (this folder)
        assert response.status_code == 201, response.content
        return
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors, errors
    assert reason is not None
    assert reason in " ".join(errors[field]), errors
    assert not NotificationChannel.objects.exists()


def test_channel_create__service_url_over_http__refused_unless_local_and_allowed(
    api: Any, publisher: Any, settings: Any, db: Any
) -> None:
    """Plain http reaches a service only on this machine or a private network, and only when
    OUTBOUND_ALLOW_PRIVATE_NETWORKS lets channels go there at all (a relay on the same network)."""
    body = {"name": "relay", "kind": "slack", "url": "http://10.0.0.5/slack"}
    assert api(publisher).post(CHANNELS, body, format="json").status_code == 201
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    response = api(publisher).post(CHANNELS, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"url": ["must not point at this server or its private network"]}


def test_channel_create__pagerduty__key_stored_never_shown_in_full_and_default_endpoint(
    api: Any, publisher: Any, db: Any
) -> None:
    body = create(api, publisher, name="on-call", kind="pagerduty", routing_key=ROUTING_KEY, min_severity="page")
    assert (body["kind"], body["url"], body["routing_key"], body["secret"]) == (
        "pagerduty",
        "https://events.pagerduty.com/v2/enqueue",
        "…d1a6",
        "",
    )
    client = api(publisher)
    listed = client.get(CHANNELS).content.decode()
    detail = client.get(f"{CHANNELS}{body['id']}/").content.decode()
    assert ROUTING_KEY not in listed + detail
    assert NotificationChannel.objects.get().routing_key == ROUTING_KEY


def test_channel_update__pagerduty__bad_key_400_and_unchanged__key_kept_when_not_given(
    api: Any, publisher: Any, db: Any
) -> None:
    channel = create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY)
    client = api(publisher)
    url = f"{CHANNELS}{channel['id']}/"
    response = client.patch(url, {"routing_key": "short"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["routing_key"]
    response = client.patch(url, {"routing_key": ""}, format="json")
    assert response.json()["errors"] == {"routing_key": ["This field is required."]}
    assert client.patch(url, {"min_severity": "page"}, format="json").status_code == 200
    assert NotificationChannel.objects.get().routing_key == ROUTING_KEY
    eu = "https://events.eu.pagerduty.com/v2/enqueue"
    new_key = "R0UT1NGKEY" * 3 + "ab"
    body = client.patch(url, {"routing_key": new_key, "url": eu}, format="json").json()
    assert (body["routing_key"], body["url"]) == ("…EYab", eu)
    assert NotificationChannel.objects.get().routing_key == new_key


# ----------------------------------------------------------------------------------- the admin


def test_admin_channel_add__each_kinds_bad_field__error_on_the_field_and_nothing_saved(
    client: Any, publisher: Any, db: Any
) -> None:
    client.force_login(publisher)
    url = reverse("admin:metrics_notificationchannel_add")
    form = {"name": "on-call", "min_severity": "page", "enabled": "on"}
    cases = [
        ({"kind": "pagerduty", "routing_key": "not-a-key"}, "routing_key", "32-character integration key"),
        ({"kind": "pagerduty"}, "routing_key", "This field is required."),
        ({"kind": "slack", "url": "http://hooks.slack.com/services/x"}, "url", "Slack takes https only"),
        ({"kind": "teams", "url": ""}, "url", "This field is required."),
        ({"kind": "teams", "url": "https://example.webhook.office.com/x", "secret": "s"}, "secret", "only for webhook"),
    ]
    for fields, field, reason in cases:
        response = client.post(url, {**form, **fields})
        assert response.status_code == 200, fields
        errors = response.context["adminform"].form.errors
        assert reason in " ".join(errors.get(field, [])), (fields, errors)
    assert not NotificationChannel.objects.exists()

    response = client.post(url, {**form, "kind": "pagerduty", "routing_key": ROUTING_KEY})
    assert response.status_code == 302
    channel = NotificationChannel.objects.get()
    assert (channel.routing_key, channel.url) == (ROUTING_KEY, "https://events.pagerduty.com/v2/enqueue")


def test_admin_channel_change__pagerduty__key_not_in_the_page_and_kept_when_left_empty(
    client: Any, publisher: Any, db: Any
) -> None:
    channel = NotificationChannel.objects.create(
        name="on-call", kind="pagerduty", routing_key=ROUTING_KEY, url="https://events.pagerduty.com/v2/enqueue"
    )
    client.force_login(publisher)
    change = reverse("admin:metrics_notificationchannel_change", args=[channel.pk])
    page = client.get(change).content.decode()
    assert ROUTING_KEY not in page
    assert "…d1a6" in page
    assert ROUTING_KEY not in client.get(reverse("admin:metrics_notificationchannel_changelist")).content.decode()
    response = client.post(
        change,
        {
            "name": "on-call (EU)",
            "url": "https://events.eu.pagerduty.com/v2/enqueue",
            "routing_key": "",
            "min_severity": "ticket",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    channel.refresh_from_db()
    assert (channel.name, channel.routing_key, channel.url) == (
        "on-call (EU)",
        ROUTING_KEY,
        "https://events.eu.pagerduty.com/v2/enqueue",
    )


def test_admin_send_test__pagerduty__trigger_then_resolve_reported(
    client: Any, publisher: Any, service: Service, db: Any
) -> None:
    service.default = PAGERDUTY_OK
    channel = NotificationChannel.objects.create(
        name="on-call", kind="pagerduty", routing_key=ROUTING_KEY, url=service.url
    )
    client.force_login(publisher)
    url = reverse("admin:metrics_notificationchannel_changelist")
    response = client.post(url, {"action": "test_selected", "_selected_action": [channel.pk]}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["on-call: test sent."]
    assert [b["event_action"] for b in service.bodies] == ["trigger", "resolve"]


# --------------------------------------------------------------------------------------- Slack


def test_slack__alert_opened__block_kit_message_posted_and_ok_counted_as_sent(
    api: Any, publisher: Any, checkout: Any, service: Service, django_capture_on_commit_callbacks: Any
) -> None:
    channel = create(api, publisher, kind="slack", url=service.url)
    alert = open_alert(checkout, django_capture_on_commit_callbacks)

    [request] = service.requests
    assert request["headers"]["Content-Type"] == "application/json"
    assert "X-Signalbox-Signature" not in request["headers"]  # Slack verifies nothing; the URL is the secret
    body = json.loads(request["body"])
    assert problems(SLACK, body) == []
    assert body["text"].startswith("[TICKET] opened: checkout / extraction: escalation_band")
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]
    assert f"#alert-{alert.pk}|Open in Signalbox>" in body["blocks"][3]["elements"][0]["text"]
    assert "*Window*\nthe last 24 h" in [f["text"] for f in body["blocks"][2]["fields"]]
    d = Delivery.objects.get()
    assert (d.channel_id, d.status, d.attempts, d.response_status) == (channel["id"], "sent", 1, 200)


def test_slack__text_with_markup__escaped_so_it_links_and_mentions_nothing(
    api: Any, publisher: Any, editor: Any, checkout: Any, service: Service, django_capture_on_commit_callbacks: Any
) -> None:
    create(api, publisher, kind="slack", url=service.url)
    alert = open_alert(checkout, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        api(editor).post(
            f"{BASE}/alerts/{alert.pk}/resolve/", {"note": "<!channel> fixed & <b>done</b>"}, format="json"
        )
    resolved = service.bodies[1]
    assert problems(SLACK, resolved) == []
    context = resolved["blocks"][3]["elements"][0]["text"]
    assert context.endswith(f"{editor.username}: &lt;!channel&gt; fixed &amp; &lt;b&gt;done&lt;/b&gt;")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ((404, b"no_service", {}), "HTTP 404 Not Found (no_service)"),
        ((410, b"channel_is_archived", {}), "HTTP 410 Gone (channel_is_archived)"),
        ((403, b"<html>some other page</html>", {}), "HTTP 403 Forbidden"),
        ((200, b"accepted", {}), 'HTTP 200 without Slack\'s "ok": not a Slack incoming webhook'),
    ],
)
def test_slack__answer_slack_documents_as_final__given_up_at_once_with_its_code(
    api: Any,
    publisher: Any,
    checkout: Any,
    service: Service,
    fast_retries: Any,
    django_capture_on_commit_callbacks: Any,
    answer: tuple[int, bytes, dict[str, str]],
    error: str,
) -> None:
    """An archived channel or a revoked webhook answers the same every time: not retried. Only a
    code from Slack's documented list is named; any other answer is shown by its status alone."""
    create(api, publisher, kind="slack", url=service.url)
    service.default = answer
    open_alert(checkout, django_capture_on_commit_callbacks)
    assert len(service.requests) == 1
    d = Delivery.objects.get()
    assert (d.status, d.attempts, d.last_error) == ("given_up", 1, error)


def test_slack__429_then_500__retried_and_sent(
    api: Any,
    publisher: Any,
    checkout: Any,
    service: Service,
    fast_retries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    create(api, publisher, kind="slack", url=service.url)
    service.answers = [(429, b"rate_limited", {"Retry-After": "0"}), (500, b"", {})]
    open_alert(checkout, django_capture_on_commit_callbacks)
    assert len(service.requests) == 3
    assert len({r["body"] for r in service.requests}) == 1
    d = Delivery.objects.get()
    assert (d.status, d.attempts, d.response_status) == ("sent", 3, 200)


# --------------------------------------------------------------------------------------- Teams


def test_teams__alert_opened_and_resolved__adaptive_cards_posted(
    api: Any, publisher: Any, editor: Any, checkout: Any, service: Service, django_capture_on_commit_callbacks: Any
) -> None:
    create(api, publisher, kind="teams", url=service.url)
    service.default = TEAMS_WORKFLOW_OK
    alert = open_alert(checkout, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        api(editor).post(f"{BASE}/alerts/{alert.pk}/resolve/", {"note": "prompt reverted"}, format="json")

    opened, resolved = service.bodies
    for body, request in zip(service.bodies, service.requests, strict=True):
        assert problems(TEAMS, body) == []
        assert len(request["body"]) < 28 * 1024  # Teams' message size limit
    card = opened["attachments"][0]["content"]
    assert card["body"][0]["text"] == "[TICKET] opened: checkout / extraction: escalation_band"
    assert card["body"][0]["color"] == "Warning"
    assert {f["title"]: f["value"] for f in card["body"][2]["facts"]}["Window"] == "the last 24 h"
    assert card["actions"][0]["url"].endswith(f"#alert-{alert.pk}")
    card = resolved["attachments"][0]["content"]
    assert (card["body"][0]["color"], card["body"][-1]["text"]) == ("Good", f"{editor.username}: prompt reverted")
    assert list(Delivery.objects.values_list("status", "response_status")) == [("sent", 202), ("sent", 202)]


def test_teams__webhook_answers_200_with_a_throttling_text__retried_until_it_posts(
    api: Any,
    publisher: Any,
    checkout: Any,
    service: Service,
    fast_retries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """An incoming webhook answers 200 with `1` when it posted, and 200 with the reason when it did not."""
    create(api, publisher, kind="teams", url=service.url)
    service.answers = [(200, b"Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0", {})]
    service.default = (200, b"1", {})
    open_alert(checkout, django_capture_on_commit_callbacks)
    assert len(service.requests) == 2
    d = Delivery.objects.get()
    assert (d.status, d.attempts) == ("sent", 2)


# ----------------------------------------------------------------------------------- PagerDuty


def test_pagerduty__opened_acknowledged_resolved__trigger_ack_resolve_under_one_dedup_key(
    api: Any,
    publisher: Any,
    editor: Any,
    checkout: Any,
    service: Service,
    django_capture_on_commit_callbacks: Any,
) -> None:
    service.default = PAGERDUTY_OK
    create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url, min_severity="ticket")
    alert = open_alert(checkout, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        ack = api(editor).post(f"{BASE}/alerts/{alert.pk}/acknowledge/", {"note": "on it"}, format="json")
        assert ack.status_code == 200, ack.content
    with django_capture_on_commit_callbacks(execute=True):
        assert api(editor).post(f"{BASE}/alerts/{alert.pk}/resolve/", {}, format="json").status_code == 200

    bodies = service.bodies
    assert [b["event_action"] for b in bodies] == ["trigger", "acknowledge", "resolve"]
    for body in bodies:
        assert problems(PAGERDUTY, body) == []
    assert {b["dedup_key"] for b in bodies} == {f"signalbox-alert-{alert.pk}"}
    assert {b["routing_key"] for b in bodies} == {ROUTING_KEY}
    trigger = bodies[0]["payload"]
    assert trigger["severity"] == "warning"  # ticket
    assert trigger["summary"].startswith("[Signalbox] checkout / extraction: escalation_band: ")
    assert (trigger["source"], trigger["component"], trigger["group"], trigger["class"]) == (
        "checkout/extraction",
        "extraction",
        "checkout",
        "escalation_band",
    )
    assert trigger["custom_details"]["window"] == "the last 24 h"
    assert bodies[0]["links"][0]["href"].endswith(f"#alert-{alert.pk}")
    detail = api(editor).get(f"{BASE}/alerts/{alert.pk}/").json()
    assert [(e["kind"], [d["status"] for d in e["deliveries"]]) for e in detail["events"]] == [
        ("opened", ["sent"]),
        ("acknowledged", ["sent"]),
        ("resolved", ["sent"]),
    ]


def test_pagerduty__alert_back_in_band__evaluator_resolves_the_page_under_the_same_key(
    api: Any, publisher: Any, checkout: Any, service: Service, django_capture_on_commit_callbacks: Any
) -> None:
    service.default = PAGERDUTY_OK
    create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    alert = open_alert(checkout, django_capture_on_commit_callbacks)
    # The next day's traffic is back at 25%: the last 24 h are clean again.
    stream(checkout, hours=24, at=AT + timedelta(days=1), seed=11)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate(at=AT + timedelta(days=1))
    alert.refresh_from_db()
    assert alert.status == "resolved"
    trigger, resolve = service.bodies
    assert problems(PAGERDUTY, resolve) == []
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == f"signalbox-alert-{alert.pk}"


def test_acknowledge__tells_pagerduty_only(
    api: Any, publisher: Any, editor: Any, checkout: Any, service: Service, django_capture_on_commit_callbacks: Any
) -> None:
    service.default = PAGERDUTY_OK
    service.by_path = {"/slack": SLACK_OK, "/generic": (204, b"", {})}
    pagerduty = create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    create(api, publisher, name="slack", kind="slack", url=service.url.replace("/hook", "/slack"))
    create(api, publisher, name="hook", kind="webhook", url=service.url.replace("/hook", "/generic"))
    alert = open_alert(checkout, django_capture_on_commit_callbacks)
    assert len(service.requests) == 3
    assert list(Delivery.objects.values_list("status", flat=True)) == ["sent"] * 3
    with django_capture_on_commit_callbacks(execute=True):
        api(editor).post(f"{BASE}/alerts/{alert.pk}/acknowledge/", {"note": "on it"}, format="json")
    assert [r["path"] for r in service.requests[3:]] == ["/hook"]
    assert Delivery.objects.filter(event__kind="acknowledged").get().channel_id == pagerduty["id"]


def test_pagerduty__500_then_429__retried_with_the_same_event_then_sent(
    api: Any,
    publisher: Any,
    checkout: Any,
    service: Service,
    fast_retries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    service.answers = [(500, b"", {}), (429, b"", {"Retry-After": "0"})]
    service.default = PAGERDUTY_OK
    create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    open_alert(checkout, django_capture_on_commit_callbacks)
    assert len(service.requests) == 3
    assert len({r["body"] for r in service.requests}) == 1
    d = Delivery.objects.get()
    assert (d.status, d.attempts, d.response_status, d.last_error) == ("sent", 3, 202, "")


def test_delivery__failed_attempts__backoff_doubles_and_retry_after_is_waited_out(
    api: Any, publisher: Any, checkout: Any, service: Service, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Each failed attempt schedules the next ALERTS_DELIVERY_BACKOFF_SECONDS × 2^(attempt−1) later,
    or after the receiver's Retry-After when that is longer."""
    settings.ALERTS_DELIVERY_BACKOFF_SECONDS = 30.0
    service.answers = [(500, b"", {}), (503, b"", {}), (429, b"", {"Retry-After": "600"}), (429, b"", {})]
    service.default = PAGERDUTY_OK
    create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    with django_capture_on_commit_callbacks(execute=False):
        evaluate()  # deliveries created, none sent
    d = Delivery.objects.get()
    waits = []
    for _ in range(4):
        before = timezone.now()
        waits.append(delivery.notification_deliver(delivery_id=d.pk))
        d.refresh_from_db()
        assert d.status == "failed"
        assert (
            before + timedelta(seconds=waits[-1]) <= d.next_attempt_at <= timezone.now() + timedelta(seconds=waits[-1])
        )
    assert waits == [30.0, 60.0, 600.0, 240.0]
    assert delivery.notification_deliver(delivery_id=d.pk) is None
    d.refresh_from_db()
    assert (d.status, d.attempts, d.next_attempt_at) == ("sent", 5, None)


def test_pagerduty__400__given_up_at_once_naming_the_routing_key(
    api: Any,
    publisher: Any,
    checkout: Any,
    service: Service,
    fast_retries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    service.default = (400, b'{"status":"invalid event","message":"Event object is invalid","errors":["x"]}', {})
    create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    open_alert(checkout, django_capture_on_commit_callbacks)
    assert len(service.requests) == 1
    d = Delivery.objects.get()
    assert (d.status, d.attempts, d.response_status) == ("given_up", 1, 400)
    assert d.last_error == "HTTP 400 Bad Request: PagerDuty refused the event (check the routing key)"
    assert "Event object is invalid" not in d.last_error  # the answer's body is never shown back


def test_pagerduty__2xx_without_success__not_counted_as_sent(
    api: Any,
    publisher: Any,
    checkout: Any,
    service: Service,
    fast_retries: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    service.default = (200, b"<html>a login page</html>", {})
    create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    open_alert(checkout, django_capture_on_commit_callbacks)
    d = Delivery.objects.get()
    assert (d.status, d.attempts) == ("given_up", 3)
    assert d.last_error == 'HTTP 200 without PagerDuty\'s "success": not the Events API v2'


def test_pagerduty__trigger_still_failing_when_resolve_is_sent__trigger_given_up_not_sent_late(
    api: Any, publisher: Any, editor: Any, checkout: Any, service: Service, django_capture_on_commit_callbacks: Any
) -> None:
    """A trigger retried after its alert's resolve went through would page for a resolved alert."""
    service.answers = [(500, b"", {})]
    service.default = PAGERDUTY_OK
    create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    stream(checkout, change_hours=24, change={"escalation": 0.45})
    with django_capture_on_commit_callbacks(execute=False):
        evaluate()
    trigger = Delivery.objects.get()
    assert delivery.notification_deliver(delivery_id=trigger.pk) is not None  # 500: to be retried
    alert = Alert.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        api(editor).post(f"{BASE}/alerts/{alert.pk}/resolve/", {}, format="json")
    assert delivery.notification_deliver(delivery_id=trigger.pk) is None
    assert [b["event_action"] for b in service.bodies] == ["trigger", "resolve"]
    trigger.refresh_from_db()
    assert (trigger.status, trigger.last_error) == ("given_up", delivery.SUPERSEDED)


# ---------------------------------------------------------------------------------- severity


@pytest.mark.parametrize("kind", ["slack", "teams", "pagerduty"])
def test_severity_filter__ticket_alert__only_channels_taking_ticket_get_it(
    api: Any, publisher: Any, checkout: Any, service: Service, django_capture_on_commit_callbacks: Any, kind: str
) -> None:
    service.default = PAGERDUTY_OK if kind == "pagerduty" else SLACK_OK if kind == "slack" else TEAMS_WORKFLOW_OK
    extra = {"routing_key": ROUTING_KEY} if kind == "pagerduty" else {}
    paging = create(
        api,
        publisher,
        name="pages only",
        kind=kind,
        url=service.url.replace("/hook", "/page"),
        min_severity="page",
        **extra,
    )
    ticket = create(api, publisher, name="tickets", kind=kind, url=service.url, min_severity="ticket", **extra)
    open_alert(checkout, django_capture_on_commit_callbacks)
    assert [r["path"] for r in service.requests] == ["/hook"]
    assert list(Delivery.objects.values_list("channel_id", flat=True)) == [ticket["id"]]
    assert paging["id"] != ticket["id"]


# ------------------------------------------------------------------------------- send test


def test_send_test__pagerduty__info_trigger_then_resolve_of_its_own_key(
    api: Any, publisher: Any, service: Service, db: Any
) -> None:
    service.default = PAGERDUTY_OK
    channel = create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    response = api(publisher).post(f"{CHANNELS}{channel['id']}/test/")
    assert response.json() == {"ok": True, "status": 202, "error": ""}
    trigger, resolve = service.bodies
    assert problems(PAGERDUTY, trigger) == problems(PAGERDUTY, resolve) == []
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["dedup_key"].startswith("signalbox-test-")
    assert trigger["payload"]["severity"] == "info"
    assert "Test notification from Signalbox" in trigger["payload"]["summary"]
    assert NotificationChannel.objects.get().consecutive_failures == 0


def test_send_test__pagerduty_refuses_the_trigger__reported_and_nothing_resolved(
    api: Any, publisher: Any, service: Service, db: Any
) -> None:
    service.default = (400, b"{}", {})
    channel = create(api, publisher, kind="pagerduty", routing_key=ROUTING_KEY, url=service.url)
    response = api(publisher).post(f"{CHANNELS}{channel['id']}/test/")
    assert response.json() == {
        "ok": False,
        "status": 400,
        "error": "HTTP 400 Bad Request: PagerDuty refused the event (check the routing key)",
    }
    assert len(service.requests) == 1


@pytest.mark.parametrize(("kind", "schema", "answer"), [("slack", SLACK, SLACK_OK), ("teams", TEAMS, (200, b"1", {}))])
def test_send_test__slack_and_teams__documented_message_sent_and_reported(
    api: Any, publisher: Any, service: Service, db: Any, kind: str, schema: Draft202012Validator, answer: Any
) -> None:
    service.default = answer
    channel = create(api, publisher, name="ops <team>", kind=kind, url=service.url)
    response = api(publisher).post(f"{CHANNELS}{channel['id']}/test/")
    assert response.json() == {"ok": True, "status": 200, "error": ""}
    [body] = service.bodies
    assert problems(schema, body) == []
    assert "Test notification from Signalbox" in json.dumps(body, ensure_ascii=False)
    service.default = (404, b"no_service", {})
    response = api(publisher).post(f"{CHANNELS}{channel['id']}/test/")
    assert response.json()["ok"] is False
    assert response.json()["status"] == 404
