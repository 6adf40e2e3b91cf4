"""The alerts and channels management API: every endpoint with each role, filters, bad input
refused by field, pinned query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from metrics.models import Alert, AlertEvent, NotificationChannel
from tests import factories

BASE = "/api/v1/metrics"
T0 = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


def make_alert(
    policy: Any,
    *,
    detector: str = "escalation_band",
    route: str = "extraction",
    status: str = "open",
    severity: str = "ticket",
    opened_at: datetime = T0,
    resolved_at: datetime | None = None,
) -> Alert:
    alert = Alert.objects.create(
        policy=policy,
        detector=detector,
        route=route,
        status=status,
        severity=severity,
        summary=f"route {route}: {detector} fired",
        opened_at=opened_at,
        last_evaluated_at=opened_at,
        resolved_at=resolved_at,
        evidence={"test": "Wilson score interval, 99%", "window": "the last 24 h", "numbers": {"requests": 500}},
    )
    AlertEvent.objects.create(
        alert=alert,
        kind="opened",
        at=opened_at,
        actor_label="system",
        severity=severity,
        summary=alert.summary,
        evidence=alert.evidence,
    )
    return alert


@pytest.fixture
def checkout(db: Any) -> Any:
    return factories.policy("checkout")


@pytest.fixture
def alert(checkout: Any) -> Alert:
    return make_alert(checkout)


@pytest.fixture
def channel(db: Any) -> NotificationChannel:
    return NotificationChannel.objects.create(name="ops", kind="webhook", url="https://hooks.example.com/x", secret="s")


# ----------------------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("get", "/alerts/", None, {"viewer", "editor", "publisher"}),
        ("get", "/alerts/{alert}/", None, {"viewer", "editor", "publisher"}),
        ("post", "/alerts/{alert}/acknowledge/", {"note": "on it"}, {"editor", "publisher"}),
        ("post", "/alerts/{alert}/resolve/", {"note": "fixed"}, {"editor", "publisher"}),
        ("get", "/channels/", None, {"publisher"}),
        ("post", "/channels/", {"name": "n", "kind": "email", "emails": ["a@example.com"]}, {"publisher"}),
        ("get", "/channels/{channel}/", None, {"publisher"}),
        ("patch", "/channels/{channel}/", {"min_severity": "page"}, {"publisher"}),
        ("delete", "/channels/{channel}/", None, {"publisher"}),
    ],
)
@pytest.mark.parametrize("role", [None, "viewer", "editor", "publisher"])
def test_api__role_matrix__allowed_roles_succeed_others_403(
    api: Any,
    make_user: Any,
    alert: Alert,
    channel: NotificationChannel,
    role: str | None,
    method: str,
    path: str,
    body: Any,
    allowed: set[str],
) -> None:
    client = api(make_user(role))
    url = BASE + path.format(alert=alert.pk, channel=channel.pk)
    response = getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
    if role in allowed:
        assert response.status_code in (200, 201, 204), response.content
    else:
        assert response.status_code == 403
        assert response.json()["message"] == "You do not have permission to do this."


def test_api__anonymous__401(api: Any, alert: Alert) -> None:
    assert api(None).get(f"{BASE}/alerts/").status_code == 401


# ---------------------------------------------------------------------------------------- alerts


def test_alert_list__filters__each_narrows_the_list(api: Any, viewer: Any, checkout: Any) -> None:
    other = factories.policy("other")
    a1 = make_alert(checkout)
    a2 = make_alert(checkout, detector="burn_rate", route="", severity="page", opened_at=T0 - timedelta(days=3))
    a3 = make_alert(
        checkout,
        detector="error_spike",
        status="resolved",
        opened_at=T0 - timedelta(days=10),
        resolved_at=T0 - timedelta(days=9),
    )
    a4 = make_alert(other)
    client = api(viewer)

    def ids(**params: str) -> list[int]:
        response = client.get(f"{BASE}/alerts/", params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [a4.pk, a1.pk, a2.pk, a3.pk]  # newest first
    assert ids(policy="checkout") == [a1.pk, a2.pk, a3.pk]
    assert ids(status="resolved") == [a3.pk]
    assert ids(detector="burn_rate") == [a2.pk]
    assert ids(route="", policy="checkout") == [a2.pk]
    assert ids(severity="page") == [a2.pk]
    assert ids(since=(T0 - timedelta(days=5)).isoformat(), policy="checkout") == [a1.pk, a2.pk]
    assert ids(until=(T0 - timedelta(days=1)).isoformat(), policy="checkout") == [a2.pk, a3.pk]
    row = client.get(f"{BASE}/alerts/", {"detector": "burn_rate"}).json()["results"][0]
    assert row == {
        "id": a2.pk,
        "policy": "checkout",
        "route": "",
        "detector": "burn_rate",
        "severity": "page",
        "status": "open",
        "summary": "route : burn_rate fired",
        "evidence": a2.evidence,
        "opened_at": "2025-03-17T12:00:00Z",
        "last_evaluated_at": "2025-03-17T12:00:00Z",
        "acknowledged_at": None,
        "resolved_at": None,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "closed"}, "status"),
        ({"detector": "vibes"}, "detector"),
        ({"severity": "urgent"}, "severity"),
        ({"since": "yesterday"}, "since"),
        ({"route": "a\x00b"}, "route"),
        ({"route": "r" * 201}, "route"),
        ({"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"}, "until"),
    ],
)
def test_alert_list__bad_filter__400_naming_the_field(
    api: Any, viewer: Any, alert: Alert, params: dict[str, str], field: str
) -> None:
    response = api(viewer).get(f"{BASE}/alerts/", params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_alert_list__unknown_policy__404(api: Any, viewer: Any, alert: Alert) -> None:
    response = api(viewer).get(f"{BASE}/alerts/", {"policy": "nope"})
    assert response.status_code == 404
    assert response.json()["errors"] == {"policy": ["not found"]}


def test_alert_list__query_count__pinned_and_independent_of_rows(
    api: Any, viewer: Any, checkout: Any, django_assert_num_queries: Any
) -> None:
    client = api(viewer)
    make_alert(checkout)
    # token + user, the user's permissions (user and group), count, page (with the policy joined)
    with django_assert_num_queries(5):
        assert client.get(f"{BASE}/alerts/").status_code == 200
    for i in range(10):
        make_alert(factories.policy(f"p{i}") if i < 3 else checkout, route=f"r{i}")
    with django_assert_num_queries(5):
        assert len(client.get(f"{BASE}/alerts/").json()["results"]) == 11


def test_alert_detail__history_with_deliveries(
    api: Any, viewer: Any, editor: Any, alert: Alert, channel: NotificationChannel
) -> None:
    api(editor).post(f"{BASE}/alerts/{alert.pk}/acknowledge/", {"note": "looking"}, format="json")
    body = api(viewer).get(f"{BASE}/alerts/{alert.pk}/").json()
    assert body["status"] == "acknowledged"
    assert [(e["kind"], e["actor"], e["note"]) for e in body["events"]] == [
        ("opened", "system", ""),
        ("acknowledged", editor.username, "looking"),
    ]
    assert body["events"][0]["deliveries"] == []


def test_alert_detail__query_count__pinned_and_independent_of_history(
    api: Any, viewer: Any, alert: Alert, django_assert_num_queries: Any
) -> None:
    client = api(viewer)
    # token + user, the user's permissions (user and group), the alert with its policy, its events,
    # their deliveries (and, once there are some, the deliveries' channels)
    with django_assert_num_queries(6):
        assert client.get(f"{BASE}/alerts/{alert.pk}/").status_code == 200
    channels = [
        NotificationChannel.objects.create(name=f"c{i}", kind="email", emails=["a@example.com"]) for i in range(3)
    ]
    for i in range(4):
        event = AlertEvent.objects.create(
            alert=alert,
            kind="escalated",
            at=T0 + timedelta(hours=i),
            actor_label="system",
            severity="page",
            summary="s",
            evidence={},
        )
        for channel in channels:
            event.deliveries.create(channel=channel)
    with django_assert_num_queries(7):
        body = client.get(f"{BASE}/alerts/{alert.pk}/").json()
    assert [len(e["deliveries"]) for e in body["events"]] == [0, 3, 3, 3, 3]


def test_alert_detail__unknown__404(api: Any, viewer: Any, db: Any) -> None:
    response = api(viewer).get(f"{BASE}/alerts/999999/")
    assert response.status_code == 404
    assert response.json()["errors"] == {"alert": ["not found"]}


def test_acknowledge__note_missing_or_blank__400_naming_note_and_nothing_changes(
    api: Any, editor: Any, alert: Alert
) -> None:
    client = api(editor)
    for body in ({}, {"note": "   "}, {"note": "x" * 2001}, {"note": "a\x00"}):
        response = client.post(f"{BASE}/alerts/{alert.pk}/acknowledge/", body, format="json")
        assert response.status_code == 400, body
        assert "note" in response.json()["errors"]
    alert.refresh_from_db()
    assert alert.status == "open"
    assert alert.events.count() == 1


def test_acknowledge__then_again__409_conflict(api: Any, editor: Any, alert: Alert) -> None:
    client = api(editor)
    first = client.post(f"{BASE}/alerts/{alert.pk}/acknowledge/", {"note": "mine"}, format="json")
    assert first.status_code == 200
    assert first.json()["acknowledged_at"] is not None
    again = client.post(f"{BASE}/alerts/{alert.pk}/acknowledge/", {"note": "mine too"}, format="json")
    assert again.status_code == 409
    assert again.json()["errors"] == {"status": ["is acknowledged"]}


def test_resolve__by_hand__resolved_with_actor_and_note_then_409(api: Any, editor: Any, alert: Alert) -> None:
    client = api(editor)
    response = client.post(f"{BASE}/alerts/{alert.pk}/resolve/", {"note": "false alarm"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "resolved"
    assert body["resolved_at"] is not None
    assert body["events"][-1] | {"at": None} == {
        "id": body["events"][-1]["id"],
        "kind": "resolved",
        "at": None,
        "actor": editor.username,
        "note": "false alarm",
        "severity": "ticket",
        "summary": alert.summary,
        "deliveries": [],
    }
    assert client.post(f"{BASE}/alerts/{alert.pk}/resolve/", {}, format="json").status_code == 409


def test_resolve__unknown_field__400_naming_it(api: Any, editor: Any, alert: Alert) -> None:
    response = api(editor).post(f"{BASE}/alerts/{alert.pk}/resolve/", {"comment": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"comment": ["unknown field"]}


# -------------------------------------------------------------------------------------- channels


def test_channel_create__webhook_without_secret__random_secret_returned(
    api: Any, publisher: Any, checkout: Any
) -> None:
    response = api(publisher).post(
        f"{BASE}/channels/",
        {
            "name": "slack #ops",
            "kind": "webhook",
            "url": "https://hooks.example.com/T1",
            "policy": "checkout",
            "min_severity": "page",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["secret"]) >= 32
    assert {
        k: body[k]
        for k in (
            "name",
            "kind",
            "url",
            "policy",
            "min_severity",
            "enabled",
            "emails",
            "consecutive_failures",
            "disabled_at",
        )
    } == {
        "name": "slack #ops",
        "kind": "webhook",
        "url": "https://hooks.example.com/T1",
        "policy": "checkout",
        "min_severity": "page",
        "enabled": True,
        "emails": [],
        "consecutive_failures": 0,
        "disabled_at": None,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "webhook"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "ftp://example.com/x"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "not a url"}, "url"),
        ({"name": "x", "kind": "email"}, "emails"),
        ({"name": "x", "kind": "email", "emails": ["ok@example.com", "nope"]}, "emails.1"),
        ({"name": "x", "kind": "email", "emails": "a@example.com"}, "emails"),
        ({"name": "x", "kind": "email", "emails": ["a@example.com, b@example.com"]}, "emails.0"),
        ({"name": "x", "kind": "email", "emails": [None]}, "emails.0"),
        ({"name": "x", "kind": "email", "emails": ["a@example.com"] * 51}, "emails"),
        ({"name": "x", "kind": "email", "emails": ["a@example.com"], "url": "https://hooks.example.com/x"}, "url"),
        ({"name": "x", "kind": "email", "emails": ["a@example.com"], "secret": "s"}, "secret"),
        ({"name": "x", "kind": "webhook", "url": "https://hooks.example.com/x", "emails": ["a@example.com"]}, "emails"),
        ({"name": "x", "kind": "webhook", "url": "https://hooks.example.com/" + "a" * 2000}, "url"),
        ({"name": "x", "kind": "webhook", "url": "https://[::1"}, "url"),
        ({"name": "x", "kind": "sms"}, "kind"),
        ({"name": "", "kind": "email", "emails": ["a@example.com"]}, "name"),
        ({"name": "x", "kind": "email", "emails": ["a@example.com"], "min_severity": "loud"}, "min_severity"),
        ({"name": "x", "kind": "email", "emails": ["a@example.com"], "policy": "nope"}, "policy"),
        ({"name": "x", "kind": "email", "emails": ["a@example.com"], "colour": "red"}, "colour"),
    ],
)
def test_channel_create__bad_input__4xx_naming_the_field_and_nothing_created(
    api: Any, publisher: Any, body: dict[str, Any], field: str
) -> None:
    response = api(publisher).post(f"{BASE}/channels/", body, format="json")
    assert response.status_code in (400, 404), response.content
    assert field in response.json()["errors"]
    assert not NotificationChannel.objects.exists()


def test_channel_create__same_address_twice__stored_once(api: Any, publisher: Any, db: Any) -> None:
    response = api(publisher).post(
        f"{BASE}/channels/",
        {"name": "team", "kind": "email", "emails": ["oncall@example.com", "lead@example.com", "OnCall@example.com"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["emails"] == ["oncall@example.com", "lead@example.com"]


def test_channel_list__query_count__pinned(
    api: Any, publisher: Any, checkout: Any, django_assert_num_queries: Any
) -> None:
    for i in range(5):
        NotificationChannel.objects.create(
            name=f"c{i}", kind="email", emails=["a@example.com"], policy=checkout if i % 2 else None
        )
    client = api(publisher)
    with django_assert_num_queries(5):
        body = client.get(f"{BASE}/channels/").json()
    assert [c["policy"] for c in body["results"]] == [None, "checkout", None, "checkout", None]


def test_channel_update__disabled_after_failures__reenabled_with_counter_reset(
    api: Any, publisher: Any, channel: NotificationChannel
) -> None:
    NotificationChannel.objects.filter(pk=channel.pk).update(
        enabled=False, consecutive_failures=10, disabled_at=T0, disabled_reason="disabled after 10 failed deliveries"
    )
    client = api(publisher)
    shown = client.get(f"{BASE}/channels/{channel.pk}/").json()
    assert (shown["enabled"], shown["consecutive_failures"], shown["disabled_reason"]) == (
        False,
        10,
        "disabled after 10 failed deliveries",
    )
    body = client.patch(f"{BASE}/channels/{channel.pk}/", {"enabled": True}, format="json").json()
    assert (body["enabled"], body["consecutive_failures"], body["disabled_at"], body["disabled_reason"]) == (
        True,
        0,
        None,
        "",
    )


def test_channel_update__by_hand_disabled__reason_names_the_user(
    api: Any, publisher: Any, channel: NotificationChannel
) -> None:
    body = api(publisher).patch(f"{BASE}/channels/{channel.pk}/", {"enabled": False}, format="json").json()
    assert (body["enabled"], body["disabled_reason"]) == (False, f"disabled by {publisher.username}")


def test_channel_update__bad_url__400_and_unchanged(api: Any, publisher: Any, channel: NotificationChannel) -> None:
    response = api(publisher).patch(f"{BASE}/channels/{channel.pk}/", {"url": "javascript:alert(1)"}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["errors"]
    channel.refresh_from_db()
    assert channel.url == "https://hooks.example.com/x"


def test_channel_update__field_of_the_other_kind__400_naming_it_and_unchanged(
    api: Any, publisher: Any, channel: NotificationChannel
) -> None:
    response = api(publisher).patch(
        f"{BASE}/channels/{channel.pk}/",
        {"url": "https://hooks.example.com/y", "emails": ["a@example.com"]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"emails": ["only for email channels"]}
    channel.refresh_from_db()
    assert (channel.url, channel.emails) == ("https://hooks.example.com/x", [])


def test_channel_delete__gone(api: Any, publisher: Any, channel: NotificationChannel) -> None:
    assert api(publisher).delete(f"{BASE}/channels/{channel.pk}/").status_code == 204
    assert api(publisher).get(f"{BASE}/channels/{channel.pk}/").status_code == 404


def test_channel_test__email__sent_and_reported(
    api: Any, publisher: Any, viewer: Any, db: Any, mailoutbox: list[Any]
) -> None:
    channel = NotificationChannel.objects.create(name="team", kind="email", emails=["oncall@example.com"])
    assert api(viewer).post(f"{BASE}/channels/{channel.pk}/test/").status_code == 403
    response = api(publisher).post(f"{BASE}/channels/{channel.pk}/test/")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "status": None, "error": ""}
    assert mailoutbox[0].subject == "[Signalbox] Test notification for team"
    assert mailoutbox[0].to == ["oncall@example.com"]


def test_channel_test__unreachable_webhook__reported_not_raised(api: Any, publisher: Any, db: Any) -> None:
    channel = NotificationChannel.objects.create(name="dead", kind="webhook", url="http://127.0.0.1:9/x", secret="s")
    response = api(publisher).post(f"{BASE}/channels/{channel.pk}/test/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["status"] is None
    assert body["error"] == "the receiver could not be reached"  # one text for any transport failure
