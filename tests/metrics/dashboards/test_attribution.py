"""Attribution by dimension: records posted to the client endpoint, cost and quality read back by
team (or tenant, arm, client app) through the metrics API, equal to the raw records' sums."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from metrics.rollups import services as rollups
from tests import factories
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db

URL = "/api/v1/metrics/attribution/"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture
def teams(post: Any) -> list[dict[str, Any]]:
    policy = factories.policy("checkout", doc=factories.document(dimensions=["team", "tenant"]))
    _, secret = factories.sdk_key(policy)
    rnd = random.Random(11)
    records = []
    for i in range(600):
        attributes = {"team": rnd.choice(["search", "ads", "billing"]), "tenant": rnd.choice(["acme", "globex"])}
        if i % 50 == 0:
            attributes.pop("team")  # an older client without the key
        records.append(
            record(
                timestamp=(NOW - timedelta(hours=1 + i % 40, minutes=i % 60)).isoformat(),
                route=rnd.choice(["extraction", "general"]),
                model=rnd.choice(["gpt-4o-mini", "gpt-4o"]),
                cost_usd=round(rnd.uniform(0.0001, 0.05), 9),
                outcome="ok" if i % 7 else "low_confidence",
                attributes=attributes,
            )
        )
    assert post(records, secret).json()["accepted"] == len(records)
    rollups.rollups_update()
    return records


def test_attribution_api__cost_by_team__equals_the_raw_records_to_the_cent(
    teams: list[dict[str, Any]], api: Any, make_user: Any
) -> None:
    body = api(make_user("viewer")).get(URL, {"policy": "checkout", "dimension": "team"}).json()

    by_team = {r["value"]: r for r in body["rows"]}
    raw: dict[str, Decimal] = {}
    for r in teams:
        team = r["attributes"].get("team", "(none)")
        raw[team] = raw.get(team, Decimal(0)) + Decimal(str(r["cost_usd"]))
    assert {t: _cents(r["cost_usd"]) for t, r in by_team.items()} == {t: _cents(v) for t, v in raw.items()}
    assert sum(r["requests"] for r in body["rows"]) == len(teams)
    assert [r["cost_usd"] for r in body["rows"]] == sorted((r["cost_usd"] for r in body["rows"]), reverse=True)
    assert body["dimensions"] == ["arm", "client", "team", "tenant"]


def test_attribution_api__route_and_model_filters__combine_with_the_dimension(
    teams: list[dict[str, Any]], api: Any, make_user: Any
) -> None:
    params = {"policy": "checkout", "dimension": "tenant", "route": "extraction", "model": "gpt-4o", "sort": "value"}
    body = api(make_user("viewer")).get(URL, params).json()

    chosen = [r for r in teams if r["route"] == "extraction" and r["model"] == "gpt-4o"]
    for row in body["rows"]:
        mine = [r for r in chosen if r["attributes"]["tenant"] == row["value"]]
        assert row["requests"] == len(mine)
        assert _cents(row["cost_usd"]) == _cents(sum(Decimal(str(r["cost_usd"])) for r in mine))
        ok = sum(1 for r in mine if r["outcome"] == "ok")
        assert row["pass_rate"] == pytest.approx(ok / len(mine))
    assert [r["value"] for r in body["rows"]] == ["acme", "globex"]


def test_attribution_api__unknown_dimension_or_sort__400_naming_it(teams: Any, api: Any, make_user: Any) -> None:
    client = api(make_user("viewer"))

    unknown = client.get(URL, {"policy": "checkout", "dimension": "colour"})
    bad_sort = client.get(URL, {"policy": "checkout", "dimension": "team", "sort": "drop table"})

    assert unknown.status_code == 400
    assert "dimension" in unknown.json()["errors"]
    assert bad_sort.status_code == 400
    assert "sort" in bad_sort.json()["errors"]


def test_attribution_page__table_chart_and_csv_of_the_same_url(teams: Any, client: Any, make_user: Any) -> None:
    client.force_login(make_user("viewer"))
    params = {"policy": "checkout", "dimension": "team", "sort": "requests"}

    page = client.get("/dashboards/attribution/", params)
    export = client.get("/dashboards/attribution/", {**params, "format": "csv"})

    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="attribution-rows"' in html
    assert 'id="fig-attribution"' in html
    lines = export.content.decode().strip().splitlines()
    assert lines[0] == "team,cost_usd,requests,cost_per_request_usd,escalation_rate,pass_rate"
    assert {line.split(",")[0] for line in lines[1:]} == {"search", "ads", "billing", "(none)"}
    requests = [int(line.split(",")[2]) for line in lines[1:]]
    assert requests == sorted(requests, reverse=True)


def test_report__cost_by_team__the_months_costliest_teams(teams: Any, client: Any, make_user: Any) -> None:
    client.force_login(make_user("viewer"))
    month = (NOW - timedelta(hours=1)).strftime("%Y-%m")

    data = client.get(f"/reports/checkout/{month}/report.json").json()
    html = client.get(f"/reports/checkout/{month}/").content.decode()

    by = {d["dimension"]: d for d in data["by_dimension"]}
    assert set(by) == {"team", "tenant"}
    in_month = [r for r in teams if r["timestamp"][:7] == month]
    raw = sum(Decimal(str(r["cost_usd"])) for r in in_month)
    assert _cents(by["team"]["total_cost_usd"]) == _cents(raw)
    assert 'id="by-team"' in html
    assert "Cost by tenant" in html
