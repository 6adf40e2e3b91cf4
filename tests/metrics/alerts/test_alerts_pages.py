"""The Alerts dashboard page, the Overview's open-alerts figure and the alerts admin."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse

from metrics.models import Alert, NotificationChannel
from tests import factories
from tests.metrics.alerts.test_alerts_api import T0, make_alert

RANGE = {"policy": "checkout", "start": "2025-03-01", "end": "2025-03-31"}


@pytest.fixture
def checkout(db: Any) -> Any:
    return factories.policy("checkout")


def page(client: Any, name: str, **params: str) -> str:
    response = client.get(reverse(f"dashboards:{name}"), {**RANGE, **params})
    assert response.status_code == 200
    return response.content.decode()


def test_alerts_page__no_alerts__empty_state(client: Any, viewer: Any, checkout: Any) -> None:
    client.force_login(viewer)
    html = page(client, "alerts")
    assert 'id="alerts-empty"' in html
    assert "No drift or budget alert of <b>checkout</b>" in html


def test_alerts_page__active_and_resolved__listed_apart_with_evidence(client: Any, viewer: Any, checkout: Any) -> None:
    active = make_alert(checkout)
    resolved = make_alert(
        checkout,
        detector="error_spike",
        route="general",
        status="resolved",
        severity="page",
        opened_at=T0 - timedelta(days=2),
        resolved_at=T0 - timedelta(days=1),
    )
    make_alert(
        checkout,
        detector="burn_rate",
        route="",
        status="resolved",
        opened_at=T0 - timedelta(days=60),
        resolved_at=T0 - timedelta(days=59),
    )  # before the range
    make_alert(factories.policy("other"))
    client.force_login(viewer)
    html = page(client, "alerts")
    active_table = html.split('id="alerts-active"')[1].split("</table>")[0]
    recent_table = html.split('id="alerts-recent"')[1].split("</table>")[0]
    assert re.findall(r'data-alert="(\d+)"', active_table) == [str(active.pk)]
    assert re.findall(r'data-alert="(\d+)"', recent_table) == [str(resolved.pk)]
    assert "Wilson score interval, 99%" in active_table
    assert "the last 24 h" in active_table
    assert "<dt>requests</dt><dd>500</dd>" in active_table

    narrowed = page(client, "alerts", severity="page")
    assert re.findall(r'data-alert="(\d+)"', narrowed) == [str(resolved.pk)]
    by_route = page(client, "alerts", route="extraction")
    assert re.findall(r'data-alert="(\d+)"', by_route) == [str(active.pk)]
    ignored = page(client, "alerts", status="bogus")  # an unknown choice is ignored, not an error
    assert len(re.findall(r'data-alert="(\d+)"', ignored)) == 2


def test_overview__open_alerts__counts_active_alerts_of_the_policy(client: Any, viewer: Any, checkout: Any) -> None:
    make_alert(checkout)
    make_alert(checkout, detector="burn_rate", route="", status="acknowledged")
    make_alert(checkout, detector="error_spike", status="resolved", resolved_at=T0)
    make_alert(factories.policy("other"))
    client.force_login(viewer)
    response = client.get(reverse("dashboards:overview"), RANGE)
    assert response.context["data"]["open_alerts"] == 2
    response = client.get(reverse("dashboards:overview"), {**RANGE, "route": "extraction"})
    assert response.context["data"]["open_alerts"] == 1


# ------------------------------------------------------------------------------------------ admin


def test_admin_acknowledge_action__note_required_then_acknowledged(client: Any, editor: Any, checkout: Any) -> None:
    alert = make_alert(checkout)
    client.force_login(editor)
    url = reverse("admin:metrics_alert_changelist")
    form = {"action": "acknowledge_selected", "_selected_action": [alert.pk]}
    asked = client.post(url, form)
    assert asked.status_code == 200
    assert b'id="confirm-note-action"' in asked.content
    blank = client.post(url, {**form, "post": "yes", "note": " "})
    assert b"A note is required." in blank.content
    done = client.post(url, {**form, "post": "yes", "note": "on it"})
    assert done.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert list(alert.events.values_list("kind", "note")) == [("opened", ""), ("acknowledged", "on it")]


def test_admin_resolve_action__viewer__not_offered(client: Any, viewer: Any, editor: Any, checkout: Any) -> None:
    make_alert(checkout)
    url = reverse("admin:metrics_alert_changelist")
    client.force_login(viewer)
    assert b"resolve_selected" not in client.get(url).content
    client.force_login(editor)
    assert b"resolve_selected" in client.get(url).content


def test_admin_channels__disabled_shown_and_reenabled_by_action(
    client: Any, publisher: Any, editor: Any, db: Any
) -> None:
    channel = NotificationChannel.objects.create(
        name="ops",
        kind="webhook",
        url="https://hooks.example.com/x",
        secret="s",
        enabled=False,
        consecutive_failures=10,
        disabled_at=T0,
        disabled_reason="disabled after 10 failed deliveries in a row",
    )
    url = reverse("admin:metrics_notificationchannel_changelist")
    client.force_login(editor)
    assert client.get(url).status_code == 403  # channels are the publisher's
    client.force_login(publisher)
    html = client.get(url).content.decode()
    assert "disabled after 10 failed deliveries in a row" in html
    response = client.post(url, {"action": "enable_selected", "_selected_action": [channel.pk]})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.enabled, channel.consecutive_failures, channel.disabled_reason) == (True, 0, "")


def test_admin_channel_add__bad_email__error_on_the_field_and_nothing_saved(
    client: Any, publisher: Any, db: Any
) -> None:
    client.force_login(publisher)
    url = reverse("admin:metrics_notificationchannel_add")
    response = client.post(
        url,
        {
            "name": "team",
            "kind": "email",
            "emails_text": "ok@example.com\nnope",
            "min_severity": "ticket",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "not an email address" in response.content.decode()
    assert not NotificationChannel.objects.exists()
    response = client.post(
        url,
        {"name": "team", "kind": "email", "emails_text": "ok@example.com", "min_severity": "ticket", "enabled": "on"},
    )
    assert response.status_code == 302
    assert NotificationChannel.objects.get().emails == ["ok@example.com"]


def test_admin_alert_change_page__read_only_with_history(client: Any, viewer: Any, checkout: Any) -> None:
    alert = make_alert(checkout)
    client.force_login(viewer)
    response = client.get(reverse("admin:metrics_alert_change", args=[alert.pk]))
    assert response.status_code == 200
    assert b'name="_save"' not in response.content
    assert Alert.objects.get().status == "open"
