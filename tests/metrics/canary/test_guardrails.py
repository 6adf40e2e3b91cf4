"""Guarded rollouts: a canary past its split's guardrail opens an alert and, with `on_breach: "stop"`,
the control plane publishes the stop version (history, audit log), which a running client fetches."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from metrics.alerts.evaluation import alerts_evaluate
from metrics.models import Alert
from routing.models import PolicyVersion
from signalbox_client import RoutingClient
from tests import factories
from tests.metrics.canary.test_canary_verdicts import SPLIT, ingest, simulated_records

API = "/api/v1"


def guarded_policy(on_breach: str) -> tuple[Any, str]:
    split = copy.deepcopy(SPLIT)
    split["guardrails"] = {"max_cost_increase": 0.05, "max_pass_rate_drop": 0.02, "on_breach": on_breach}
    doc = factories.document()
    doc["routes"]["extraction"]["split"] = split
    policy = factories.policy("checkout", doc=doc)
    _, secret = factories.sdk_key(policy)
    return policy, secret


@pytest.mark.django_db(transaction=True)
def test_guardrail_breach__stop__published_in_history_and_audit_and_fetched_by_the_client(
    live_server: Any, post: Any, api: Any, make_user: Any, tmp_path: Any
) -> None:
    policy, secret = guarded_policy("stop")
    live_before = policy.live_version.number
    client = RoutingClient(live_server.url, secret, "checkout", refresh_interval=3600, jitter=0, cache_dir=tmp_path)
    try:
        assert client.refresh() == "installed"
        assert client.refresh() == "not_modified"  # 304: nothing new
        ingest(post, secret, simulated_records(policy))  # the canary arm is truly 8% dearer

        report = alerts_evaluate(policy=policy, at=datetime.now(UTC))

        # The alert is open, with the breach as its evidence.
        alert = Alert.objects.get(policy=policy, detector="canary_guardrail")
        assert alert.status == Alert.Status.OPEN
        assert alert.route == "extraction"
        (breach,) = alert.evidence["numbers"]["breaches"]
        assert (breach["arm"], breach["guardrail"]) == ("canary", "max_cost_increase")
        assert any(c.detector == "canary_guardrail" and c.action == "opened" for c in report.changes)
        # A new version is live, the canary's weight moved to the control.
        policy.refresh_from_db()
        stop = policy.live_version
        assert stop.number == live_before + 1
        arms = {a["name"]: a["weight"] for a in stop.document["routes"]["extraction"]["split"]["arms"]}
        assert arms == {"control": 100, "canary": 0}
        # Visible in the version history and the audit log, as done by the control plane.
        viewer = api(make_user("viewer"))
        versions = viewer.get(f"{API}/policies/checkout/versions/").json()
        newest = versions["results"][0] if isinstance(versions, dict) else versions[0]
        assert newest["number"] == stop.number
        assert "stopped by the control plane" in newest["comment"]
        audit = viewer.get(f"{API}/audit/", {"policy": "checkout", "action": "policy.publish"}).json()["results"]
        entry = audit[0]
        assert entry["target"] == f"checkout:v{stop.number}"
        assert entry["actor"] == "signalbox control plane"
        assert "max_cost_increase" in entry["comment"]
        # The running client fetches the stop version (200 after the 304) and routes to the control only.
        assert client.refresh() == "installed"
        assert client.stats().policy_version == stop.number
        decisions = [client.decide("extraction", user_id=f"u{i}") for i in range(200)]
        assert {d.reason["split"]["arm"] for d in decisions} == {"control"}
    finally:
        client.close(timeout=1)


@pytest.mark.django_db
def test_guardrail_breach__alert_only__alert_opened_and_nothing_published(post: Any) -> None:
    policy, secret = guarded_policy("alert")
    versions_before = PolicyVersion.objects.filter(policy=policy).count()
    ingest(post, secret, simulated_records(policy))

    alerts_evaluate(policy=policy, at=datetime.now(UTC))

    assert Alert.objects.get(policy=policy, detector="canary_guardrail").status == Alert.Status.OPEN
    assert PolicyVersion.objects.filter(policy=policy).count() == versions_before


@pytest.mark.django_db
def test_guardrail__equal_arms__no_alert(post: Any) -> None:
    policy, secret = guarded_policy("stop")
    ingest(post, secret, simulated_records(policy, canary_cost=1.0))

    alerts_evaluate(policy=policy, at=datetime.now(UTC))

    assert not Alert.objects.filter(policy=policy, detector="canary_guardrail", status=Alert.Status.OPEN).exists()
    policy.refresh_from_db()
    assert policy.live_version.number == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "weights"), [("stop", {"control": 100, "canary": 0}), ("promote", {"control": 0, "canary": 100})]
)
def test_canary_buttons__editor__draft_with_the_split_collapsed(
    client: Any, make_user: Any, action: str, weights: dict
) -> None:
    policy, _ = guarded_policy("alert")
    client.force_login(make_user("editor"))

    page = client.get("/dashboards/canary/", {"policy": "checkout"}).content.decode()
    response = client.post(
        "/dashboards/canary/draft/", {"policy": "checkout", "route": "extraction", "arm": "canary", "action": action}
    )

    assert 'value="promote"' in page
    assert response.status_code == 302
    assert response["Location"] == f"/admin/routing/policy/{policy.pk}/change/"
    draft = PolicyVersion.objects.get(policy=policy, status=PolicyVersion.Status.DRAFT)
    assert {a["name"]: a["weight"] for a in draft.document["routes"]["extraction"]["split"]["arms"]} == weights
    policy.refresh_from_db()
    assert policy.live_version.number == 1  # nothing published: a publisher reviews the draft


@pytest.mark.django_db
def test_canary_buttons__bad_input_or_existing_draft_or_viewer__refused_nothing_written(
    client: Any, make_user: Any
) -> None:
    policy, _ = guarded_policy("alert")
    client.force_login(make_user("editor"))
    url = "/dashboards/canary/draft/"
    base = {"policy": "checkout", "route": "extraction", "arm": "canary", "action": "stop"}

    unknown_arm = client.post(url, {**base, "arm": "nope"})
    control = client.post(url, {**base, "arm": "control"})
    bad_action = client.post(url, {**base, "action": "explode"})
    assert (unknown_arm.status_code, control.status_code, bad_action.status_code) == (400, 400, 400)
    assert "arm" in unknown_arm.content.decode()
    assert "action" in bad_action.content.decode()
    assert not PolicyVersion.objects.filter(policy=policy, status=PolicyVersion.Status.DRAFT).exists()

    client.force_login(make_user("viewer"))
    assert 'value="promote"' not in client.get("/dashboards/canary/", {"policy": "checkout"}).content.decode()
    assert client.post(url, base).status_code == 403
    assert not PolicyVersion.objects.filter(policy=policy, status=PolicyVersion.Status.DRAFT).exists()

    client.force_login(make_user("editor"))
    assert client.post(url, base).status_code == 302
    assert client.post(url, base).status_code == 409  # a draft exists: not overwritten
