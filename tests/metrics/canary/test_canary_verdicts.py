"""Canary verdicts end to end: decision records of a split posted to the client endpoint, folded
into the dimension rollups, judged by the canary API (and shown on the canary page)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from metrics.rollups import services as rollups
from tests import factories
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db

URL = "/api/v1/metrics/canary/"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
SPLIT = {
    "key": "user_id",
    "arms": [{"name": "control", "weight": 50}, {"name": "canary", "weight": 50, "model": "gpt-4o"}],
}


def canary_policy(split: dict[str, Any] | None = None) -> tuple[Any, str]:
    doc = factories.document()
    doc["routes"]["extraction"]["split"] = split or SPLIT
    policy = factories.policy("checkout", doc=doc)
    _, secret = factories.sdk_key(policy)
    return policy, secret


def simulated_records(
    policy: Any,
    *,
    hours: int = 48,
    per_hour: int = 40,
    shares: tuple[float, float] = (0.5, 0.5),
    canary_cost: float = 1.08,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """Requests of a 50/50 split (or `shares`) over `hours`: per-request cost lognormal around
    $0.002 (the canary's `canary_cost` times dearer in expectation), every tenth request failing
    validation in both arms (equal pass rates), latency around 600 ms in both."""
    rnd = random.Random(seed)
    version = policy.live_version.number
    out = []
    for h in range(hours):
        start = NOW - timedelta(hours=hours - h + 1)
        for arm, share in zip(("control", "canary"), shares, strict=True):
            for i in range(round(per_hour * 2 * share)):
                factor = canary_cost if arm == "canary" else 1.0
                cost = 0.002 * factor * rnd.lognormvariate(-0.02, 0.2)
                out.append(
                    record(
                        timestamp=(start + timedelta(seconds=i * 30 + (arm == "canary"))).isoformat(),
                        policy_version=version,
                        model="gpt-4o" if arm == "canary" else "gpt-4o-mini",
                        reason={"route_by": "task_type", "split": {"arm": arm, "bucket": i % 100}},
                        outcome="validation_failed" if i % 10 == 0 else "ok",
                        cost_usd=round(cost, 9),
                        latency_ms=round(600 * rnd.lognormvariate(0, 0.3), 3),
                    )
                )
    return out


def ingest(post: Any, secret: str, records: list[dict[str, Any]]) -> None:
    for i in range(0, len(records), 5000):
        response = post(records[i : i + 5000], secret)
        assert response.status_code == 200, response.content[:300]
        assert response.json()["accepted"] == len(records[i : i + 5000])
    rollups.rollups_update()


def metric(body: dict[str, Any], name: str) -> dict[str, Any]:
    (split,) = body["splits"]
    (comparison,) = split["comparisons"]
    return next(m for m in comparison["metrics"] if m["metric"] == name)


def test_canary_api__arm_truly_8_percent_dearer__cost_worse_pass_rate_no_difference(
    post: Any, api: Any, make_user: Any
) -> None:
    policy, secret = canary_policy()
    records = simulated_records(policy)
    ingest(post, secret, records)

    response = api(make_user("viewer")).get(URL, {"policy": "checkout"})

    assert response.status_code == 200, response.content[:500]
    body = response.json()
    (split,) = body["splits"]
    assert split["route"] == "extraction"
    assert split["srm"]["mismatch"] is False
    control, canary = split["arms"]
    assert (control["requests"], canary["requests"]) == (48 * 40, 48 * 40)
    cost, passing = metric(body, "cost_per_request"), metric(body, "pass_rate")
    assert cost["verdict"] == "worse"
    assert passing["verdict"] == "no difference yet"
    assert passing["sample_needed"] > 0
    truth = 0.002 * 0.08  # the lognormal factor has mean 1: the true difference per request
    for low, high in (cost["interval"], cost["sequence"]):
        assert low < truth < high
    assert cost["relative"] == pytest.approx(0.08, abs=0.02)
    for low, high in (passing["interval"], passing["sequence"]):
        assert low < 0.0 < high
    # The arms' own numbers are those of the raw records.
    raw_cost = math.fsum(r["cost_usd"] for r in records if r["reason"]["split"]["arm"] == "canary")
    assert canary["cost_usd"] == pytest.approx(raw_cost, abs=1e-9)
    assert canary["pass_rate"] == pytest.approx(0.9)


def test_canary_api__50_50_split_ingested_as_60_40__srm_flag_blocks_the_verdict(
    post: Any, api: Any, make_user: Any
) -> None:
    policy, secret = canary_policy()
    ingest(post, secret, simulated_records(policy, hours=30, shares=(0.6, 0.4), canary_cost=1.0))

    body = api(make_user("viewer")).get(URL, {"policy": "checkout"}).json()

    (split,) = body["splits"]
    assert split["srm"]["mismatch"] is True
    assert split["srm"]["p_value"] < split["srm"]["alpha"]
    assert {m["verdict"] for m in split["comparisons"][0]["metrics"]} == {"blocked"}


def test_canary_api__records_of_an_older_split__not_counted(post: Any, api: Any, make_user: Any) -> None:
    """A split whose weights change is a new canary: the records of the old weights stay out."""
    policy, secret = canary_policy()
    ingest(post, secret, simulated_records(policy, hours=4, per_hour=10))
    doc = policy.live_version.document
    doc["routes"]["extraction"]["split"]["arms"][0]["weight"] = 90
    doc["routes"]["extraction"]["split"]["arms"][1]["weight"] = 10
    factories.publish(policy, doc, comment="canary to 10%")

    body = api(make_user("viewer")).get(URL, {"policy": "checkout"}).json()

    (split,) = body["splits"]
    assert split["versions"] == [policy.versions.order_by("-number").first().number]
    assert [a["requests"] for a in split["arms"]] == [0, 0]


def test_canary_api__no_split__empty_and_bad_input_400(api: Any, make_user: Any) -> None:
    factories.policy("checkout")
    client = api(make_user("viewer"))

    assert client.get(URL, {"policy": "checkout"}).json()["splits"] == []
    bad = client.get(URL, {"policy": "checkout", "start": "2025-13-01"})
    assert bad.status_code == 400
    assert "start" in bad.json()["errors"]
    assert client.get(URL, {"policy": "nope"}).status_code == 404
    assert api(None).get(URL, {"policy": "checkout"}).status_code in (401, 403)


def test_canary_api__in_the_openapi_schema(api: Any, make_user: Any) -> None:
    schema = api(make_user("viewer")).get("/api/schema/", {"format": "json"}).json()

    assert "/api/v1/metrics/canary/" in schema["paths"]
    assert "MetricsCanary" in schema["components"]["schemas"]


def test_canary_page__shows_the_verdicts_and_the_srm_state(post: Any, client: Any, make_user: Any) -> None:
    policy, secret = canary_policy()
    ingest(post, secret, simulated_records(policy))
    client.force_login(make_user("viewer"))

    page = client.get("/dashboards/canary/", {"policy": "checkout"})

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="verdicts-extraction"' in html
    assert '<span class="sb-badge bad">worse</span>' in html
    assert "Sample ratio fits the weights" in html
    assert 'id="fig-split-0"' in html  # the chart's data


def test_canary_page__srm__says_no_verdict(post: Any, client: Any, make_user: Any) -> None:
    policy, secret = canary_policy()
    ingest(post, secret, simulated_records(policy, hours=30, shares=(0.6, 0.4), canary_cost=1.0))
    client.force_login(make_user("viewer"))

    html = client.get("/dashboards/canary/", {"policy": "checkout"}).content.decode()

    assert "Sample ratio mismatch: no verdict." in html
    assert "worse</span>" not in html


def test_report__canary_section__the_months_verdicts(post: Any, client: Any, make_user: Any) -> None:
    policy, secret = canary_policy()
    ingest(post, secret, simulated_records(policy))
    client.force_login(make_user("viewer"))
    month = (NOW - timedelta(hours=2)).strftime("%Y-%m")

    html = client.get(f"/reports/checkout/{month}/").content.decode()
    data = client.get(f"/reports/checkout/{month}/report.json").json()

    assert 'id="canary-extraction"' in html
    (split,) = data["canaries"]
    assert "hourly" not in split
    verdicts = {m["metric"]: m["verdict"] for m in split["comparisons"][0]["metrics"]}
    assert verdicts["cost_per_request"] == "worse"
