"""Slow drift, per-tier latency and the evaluation's false discovery rate, end to end: decisions
ingested through the client endpoint, folded into the rollups, judged by `manage.py
alerts_evaluate --at`.

The traffic is deterministic (exact counts per hour), so each case sits where it is meant to: an
escalation rise of 10 points over the last 3 days that the 24 h window against the 7 days before
cannot prove (p ≈ 3e-4 among a dozen tests), and a tier-2 slowdown that leaves the route's tail
above its baseline p95's bucket unchanged.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from metrics.models import Alert
from metrics.rollups import services as rollups
from signalbox_client.protocol import MAX_BATCH_RECORDS
from tests import factories
from tests.metrics.conftest import URL, record

pytestmark = pytest.mark.django_db

DOC = {
    "schema_version": 1,
    "default_route": "r",
    "task_types": {"t": "r"},
    "routes": {
        "r": {
            "tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}],
            "escalate": {"min_confidence": 0.7, "max_depth": 1},
        }
    },
}


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def request(at: datetime, *, escalated: bool, latency: float = 400.0, tier2_latency: float = 800.0) -> list[Any]:
    """One request of route r: tier 1 ok, or tier 1 low_confidence and tier 2 ok (one confidence
    for both, so only the escalation rate moves)."""
    rid = uuid.uuid4().hex
    stamp = at.isoformat().replace("+00:00", "Z")
    common = {"policy": "drift", "route": "r", "task_type": "t", "request_id": rid, "confidence": 0.5}
    first = record(
        **common,
        event_id=str(uuid.uuid4()),
        timestamp=stamp,
        model="gpt-4o-mini",
        provider=factories.CATALOG["gpt-4o-mini"][0],
        tier=1,
        attempt=1,
        outcome="low_confidence" if escalated else "ok",
        latency_ms=latency,
    )
    if not escalated:
        return [first]
    second = record(
        **common,
        event_id=str(uuid.uuid4()),
        timestamp=(at + timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
        model="gpt-4o",
        provider=factories.CATALOG["gpt-4o"][0],
        tier=2,
        attempt=2,
        outcome="ok",
        latency_ms=tier2_latency,
    )
    return [first, second]


def ingest(client: Any, records: list[Any]) -> Any:
    policy = factories.policy("drift", doc=DOC)
    _, secret = factories.sdk_key(policy)
    for i in range(0, len(records), MAX_BATCH_RECORDS):
        response = client.post(
            URL,
            data=orjson.dumps({"decisions": records[i : i + MAX_BATCH_RECORDS]}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.status_code == 200, response.content
        assert response.json()["rejected"] == 0, response.json()
    rollups.rollups_update()
    return policy


def evaluate(at: datetime) -> str:
    out = io.StringIO()
    call_command("alerts_evaluate", "--at", at.isoformat(), stdout=out)
    return out.getvalue()


def escalation_drift(now: datetime) -> list[Any]:
    """8 days of 20 requests an hour: 4 escalate (20%), 6 (30%) in the last 72 hours."""
    out = []
    for h in range(8 * 24):
        at = now - timedelta(hours=h)
        escalating = 6 if h < 72 else 4
        for i in range(20):
            out += request(at - timedelta(minutes=i), escalated=i < escalating)
    return out


def test_escalation_drift_over_three_days__cusum_check_opens_the_alert(client: Any, now: datetime) -> None:
    policy = ingest(client, escalation_drift(now))

    output = evaluate(now)

    alert = Alert.objects.get(policy=policy, detector="escalation_band", route="r")
    assert alert.evidence["check"] == "tier 1→2 slow drift"
    # the 24 h window against the 7 days before does not prove it on its own
    assert alert.evidence["checks"]["tier 1→2 against baseline"] == "ok"
    numbers = alert.evidence["numbers"]
    assert numbers["baseline_rate"] == pytest.approx((5 * 24 * 4 + 0.5) / (5 * 24 * 20 + 1))
    assert numbers["run_hours"] == 72
    assert numbers["run_rate"] == pytest.approx(0.3)
    assert alert.evidence["p_value"] < 1e-6
    assert alert.summary.startswith("route r: tier 1→2 escalation 30.0% over the last 72 h")
    assert f"opened    #{alert.pk} drift/r escalation_band [ticket]" in output


def test_false_discovery_rate__setting__decides_whether_the_same_evidence_alerts(
    client: Any, now: datetime, settings: Any
) -> None:
    policy = ingest(client, escalation_drift(now))

    settings.ALERTS_FALSE_DISCOVERY_RATE = 1e-15
    evaluate(now)
    assert not Alert.objects.filter(policy=policy, detector="escalation_band").exists()

    settings.ALERTS_FALSE_DISCOVERY_RATE = 0  # off: each test at its own level (1e-5)
    evaluate(now)
    alert = Alert.objects.get(policy=policy, detector="escalation_band")
    assert alert.evidence["check"] == "tier 1→2 slow drift"
    assert "false_discovery_rate" not in alert.evidence["numbers"]


def test_false_discovery_rate__out_of_range__refused_naming_the_setting(
    client: Any, now: datetime, settings: Any
) -> None:
    ingest(client, [r for h in range(2) for r in request(now - timedelta(hours=h), escalated=False)])
    settings.ALERTS_FALSE_DISCOVERY_RATE = 1.5
    with pytest.raises(ImproperlyConfigured, match="ALERTS_FALSE_DISCOVERY_RATE"):
        evaluate(now)


def test_tier_two_slowdown__per_tier_latency_check_opens_the_alert(client: Any, now: datetime) -> None:
    """1000 requests a day, 250 of them escalated; tier 2 answers in 800 ms (80%) or 1500 ms, then
    twice as slow in the last 24 h. The route's share slower than its baseline p95 bucket's lower
    edge (500 ms: every tier-2 attempt) does not move; tier 2's (1000 ms) goes from 20% to 100%."""
    records = []
    for day in range(4):  # the window (day 0) and three days of baseline
        slow = 2.0 if day == 0 else 1.0
        for i in range(1000):
            at = now - timedelta(days=day, minutes=i)
            escalated = i % 4 == 0
            second = (1500.0 if (i // 4) % 5 == 0 else 800.0) * slow
            records += request(at, escalated=escalated, tier2_latency=second)
    policy = ingest(client, records)

    evaluate(now)

    alert = Alert.objects.get(policy=policy, detector="latency_p95_regression", route="r")
    assert alert.evidence["check"] == "tier 2 against baseline"
    assert alert.evidence["checks"]["against baseline"] == "ok"  # the route as a whole: not judged slower
    numbers = alert.evidence["numbers"]
    assert (numbers["x"], numbers["n"]) == (250, 250)  # tier 2's attempts slower than 1000 ms
    assert numbers["baseline_rate"] == pytest.approx(0.2)
    assert alert.summary.startswith("route r: tier 2 latency p95")
