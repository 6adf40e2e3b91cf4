"""Attribution by dimension: records posted to the client endpoint, cost and quality read back by
team (or tenant, arm, client app) through the metrics API, equal to the raw records' sums."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from metrics.rollups import services as rollups
from metrics.rules.periods import month_end, month_previous
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


def _table_values(html: str) -> list[str]:
    """The first cell of each body row of the page's table (the value, or the rest row's label)."""
    body = html.split('id="attribution-rows"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<tr[^>]*>\s*<td>(.*?)</td>", body)]


def test_attribution_page__table_chart_and_csv_of_the_same_url(teams: Any, client: Any, make_user: Any) -> None:
    client.force_login(make_user("viewer"))
    params = {"policy": "checkout", "dimension": "team", "sort": "requests"}

    page = client.get("/dashboards/attribution/", params)
    export = client.get("/dashboards/attribution/", {**params, "format": "csv"})

    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="attribution-rows"' in html
    assert 'id="fig-attribution"' in html
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0][:7] == [
        "team",
        "cost_usd",
        "cost_share",
        "requests",
        "cost_per_request_usd",
        "escalation_rate",
        "pass_rate",
    ]
    assert "cost_change_pct" in rows[0]
    assert [r[0] for r in rows[1:]] == _table_values(html)
    assert {r[0] for r in rows[1:]} == {"search", "ads", "billing", "(none)"}
    requests = [int(r[3]) for r in rows[1:]]
    assert requests == sorted(requests, reverse=True)
    # The page's CSV and JSON links carry the same parameters (shareable).
    assert "dimension=team" in html.split('id="attribution-csv"', 1)[0].rsplit("href=", 1)[1]
    assert "sort=requests" in html.split('id="attribution-json"', 1)[0].rsplit("href=", 1)[1]


def test_attribution__top_n__the_rest_summed_in_one_row_everywhere(
    teams: list[dict[str, Any]], api: Any, client: Any, make_user: Any
) -> None:
    user = make_user("viewer")
    params = {"policy": "checkout", "dimension": "team", "top": "2"}

    body = api(user).get(URL, params).json()
    client.force_login(user)
    export = client.get("/dashboards/attribution/", {**params, "format": "csv"})
    html = client.get("/dashboards/attribution/", params).content.decode()

    full = {r["value"]: r for r in api(user).get(URL, {"policy": "checkout", "dimension": "team"}).json()["rows"]}
    kept, rest = body["rows"][:2], body["rows"][2]
    assert len(body["rows"]) == 3
    assert body["values"] == 4
    assert [r["value"] for r in kept] == sorted(full, key=lambda v: -full[v]["cost_usd"])[:2]
    assert rest["rest"] is True
    assert rest["value"] == "everything else (2 values)"
    others = [v for v in full if v not in {r["value"] for r in kept}]
    assert _cents(rest["cost_usd"]) == _cents(sum(Decimal(str(full[v]["cost_usd"])) for v in others))
    assert rest["requests"] == sum(full[v]["requests"] for v in others)
    assert rest["pass_rate"] == pytest.approx(sum(full[v]["ok"] for v in others) / rest["requests"])
    assert body["total"]["requests"] == len(teams)
    lines = list(csv.reader(io.StringIO(export.content.decode())))
    assert [r[0] for r in lines[1:]] == [*(r["value"] for r in kept), rest["value"]] == _table_values(html)


def test_attribution__team_and_tenant_together__from_the_raw_decisions(
    teams: list[dict[str, Any]], api: Any, make_user: Any
) -> None:
    start, end = (NOW - timedelta(days=3)).date().isoformat(), NOW.date().isoformat()
    params = {"policy": "checkout", "dimension": "tenant", "where_dimension": "team", "where_value": "search"}

    body = api(make_user("viewer")).get(URL, {**params, "start": start, "end": end, "model": "gpt-4o"}).json()

    assert body["read_from"] == "raw"
    chosen = [r for r in teams if r["attributes"].get("team") == "search" and r["model"] == "gpt-4o"]
    by_tenant = {r["value"]: r for r in body["rows"]}
    assert set(by_tenant) == {"acme", "globex"}
    for tenant, row in by_tenant.items():
        mine = [r for r in chosen if r["attributes"]["tenant"] == tenant]
        assert row["requests"] == len(mine)
        assert _cents(row["cost_usd"]) == _cents(sum(Decimal(str(r["cost_usd"])) for r in mine))
        assert row["pass_rate"] == pytest.approx(sum(r["outcome"] == "ok" for r in mine) / len(mine))


def test_attribution__team_none__keeps_the_records_without_the_key(
    teams: list[dict[str, Any]], api: Any, make_user: Any
) -> None:
    start, end = (NOW - timedelta(days=3)).date().isoformat(), NOW.date().isoformat()
    params = {"policy": "checkout", "dimension": "tenant", "where_dimension": "team", "where_value": "(none)"}

    body = api(make_user("viewer")).get(URL, {**params, "start": start, "end": end}).json()

    assert sum(r["requests"] for r in body["rows"]) == sum(1 for r in teams if "team" not in r["attributes"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (
            {"dimension": "tenant", "where_dimension": "team", "where_value": "search", "start": "2026-01-01"},
            "where_dimension",
        ),
        ({"dimension": "team", "where_dimension": "team", "where_value": "search"}, "where_dimension"),
        ({"dimension": "team", "where_dimension": "colour", "where_value": "red"}, "where_dimension"),
        ({"dimension": "team", "where_dimension": "tenant"}, "where_value"),
        ({"dimension": "team", "top": "0"}, "top"),
        ({"dimension": "team", "top": "many"}, "top"),
        ({"dimension": "team", "tier": "-1"}, "tier"),
        ({"dimension": "team", "version": "1.5"}, "version"),
        ({"dimension": "team", "provider": "x" * 201}, "provider"),
        ({"dimension": "team", "start": "yesterday"}, "start"),
    ],
)
def test_attribution__bad_parameter__400_naming_it_in_the_api_and_the_csv(
    teams: Any, api: Any, client: Any, make_user: Any, params: dict[str, str], field: str
) -> None:
    user = make_user("viewer")
    client.force_login(user)
    query = {"policy": "checkout", "end": NOW.date().isoformat(), **params}

    answer = api(user).get(URL, query)
    export = client.get("/dashboards/attribution/", {**query, "format": "csv"})
    page = client.get("/dashboards/attribution/", query)

    assert answer.status_code == 400, answer.content
    assert field in answer.json()["errors"]
    assert export.status_code == 400
    assert field in export.json()["errors"]
    assert page.status_code == 200  # the page names the problem above the table
    if field not in ("start",):
        assert f"{field.replace('_', ' ')}:" in page.content.decode()


def test_attribution__provider_tier_version_filters__narrow_the_cells(
    teams: list[dict[str, Any]], api: Any, make_user: Any
) -> None:
    client = api(make_user("viewer"))
    base = {"policy": "checkout", "dimension": "team"}

    everything = client.get(URL, {**base, "provider": "openai", "tier": "1", "version": "1"}).json()
    other_provider = client.get(URL, {**base, "provider": "anthropic"}).json()
    other_tier = client.get(URL, {**base, "tier": "2"}).json()
    other_version = client.get(URL, {**base, "version": "2"}).json()

    assert everything["total"]["requests"] == len(teams)
    assert everything["attribution_filters"] == {
        "provider": "openai",
        "tier": 1,
        "version": 1,
        "where_dimension": None,
        "where_value": None,
        "top": None,
    }
    assert other_provider["rows"] == other_tier["rows"] == other_version["rows"] == []


@pytest.fixture
def two_months(post: Any) -> dict[str, date]:
    """Team costs in the month before last and last month: search $2 → $3, ads $1 → nothing,
    billing nothing → $0.50 (one request each dollar or half)."""
    policy = factories.policy("checkout", doc=factories.document(dimensions=["team", "tenant"]))
    _, secret = factories.sdk_key(policy)
    last = month_previous(NOW.date())
    before = month_previous(last)
    spend = {before: {"search": [1.0, 1.0], "ads": [1.0]}, last: {"search": [1.5, 1.5], "billing": [0.5]}}
    records = [
        record(
            timestamp=datetime.combine(month.replace(day=2 + i), time(10), tzinfo=UTC).isoformat(),
            cost_usd=cost,
            attributes={"team": team},
        )
        for month, teams in spend.items()
        for team, costs in teams.items()
        for i, cost in enumerate(costs)
    ]
    assert post(records, secret).json()["accepted"] == len(records)
    rollups.rollups_update()
    return {"last": last, "before": before}


def test_attribution__a_whole_month__against_the_previous_month(
    two_months: dict[str, date], api: Any, client: Any, make_user: Any
) -> None:
    last = two_months["last"]
    user = make_user("viewer")
    client.force_login(user)
    params = {"policy": "checkout", "dimension": "team", "start": last.isoformat(), "end": month_end(last).isoformat()}

    body = api(user).get(URL, params).json()
    report = client.get(f"/reports/checkout/{last:%Y-%m}/report.json").json()
    html = client.get("/dashboards/attribution/", params).content.decode()

    assert body["previous_period"]["start"] == two_months["before"].isoformat()
    assert body["previous_period"]["end"] == month_end(two_months["before"]).isoformat()
    rows = {r["value"]: r for r in body["rows"]}
    assert (rows["search"]["cost_usd"], rows["search"]["previous_cost_usd"]) == (3.0, 2.0)
    assert rows["search"]["cost_change_usd"] == pytest.approx(1.0)
    assert rows["search"]["cost_change_pct"] == pytest.approx(0.5)
    assert rows["search"]["change"]["requests"]["change"] == 0
    assert (rows["ads"]["cost_usd"], rows["ads"]["previous_cost_usd"], rows["ads"]["cost_change_pct"]) == (
        0.0,
        1.0,
        -1.0,
    )
    assert (rows["billing"]["previous_cost_usd"], rows["billing"]["cost_change_pct"]) == (0.0, None)
    assert body["total"]["cost_change_usd"] == pytest.approx(0.5)
    by_team = {d["dimension"]: d for d in report["by_dimension"]}["team"]
    assert {r["value"]: r["cost_change_usd"] for r in by_team["rows"]} == {
        v: r["cost_change_usd"] for v, r in rows.items()
    }
    assert "+50%" in html
    assert "new" in html


def test_attribution__report_top_values__everything_else_summed(post: Any, client: Any, make_user: Any) -> None:
    policy = factories.policy("checkout", doc=factories.document(dimensions=["tenant"]))
    _, secret = factories.sdk_key(policy)
    last = month_previous(NOW.date())
    records = [
        record(
            timestamp=datetime.combine(last.replace(day=3), time(9, i), tzinfo=UTC).isoformat(),
            cost_usd=float(i + 1),
            attributes={"tenant": f"tenant-{i:02d}"},
        )
        for i in range(13)
    ]
    assert post(records, secret).json()["accepted"] == len(records)
    rollups.rollups_update()
    client.force_login(make_user("viewer"))

    report = client.get(f"/reports/checkout/{last:%Y-%m}/report.json").json()
    table = client.get(f"/reports/checkout/{last:%Y-%m}/dimensions.csv")

    tenants = {d["dimension"]: d for d in report["by_dimension"]}["tenant"]
    assert [r["value"] for r in tenants["rows"][:10]] == [f"tenant-{i:02d}" for i in range(12, 2, -1)]
    assert tenants["rows"][10]["rest"] is True
    assert tenants["rows"][10]["cost_usd"] == 1.0 + 2.0 + 3.0
    assert tenants["values"] == 13
    lines = list(csv.reader(io.StringIO(table.content.decode())))
    assert lines[0][:3] == ["dimension", "value", "rest"]
    assert len(lines) == 1 + 11
    assert lines[-1][0] == "tenant"


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
