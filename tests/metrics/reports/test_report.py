"""The monthly review report: numbers against SQL ground truth on fixture cells (page, CSV, JSON
and API alike), policy changes and alerts of the month, recommendations with their savings, the
empty state, refusals of bad addresses, query counts, and "Mark reviewed" with roles and CSRF."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from metrics.models import Alert, ReportReview, RollupHourly
from metrics.reports import selectors as rsel
from metrics.reports import tables as report_tables
from routing import services as routing_services
from routing.models import AuditEntry, PolicyVersion
from tests import factories
from tests.metrics.dashboards.test_dashboards import at, cell

MONTH, PREVIOUS = "2025-03", "2025-02"
TODAY = date(2025, 4, 10)


def _document() -> dict[str, Any]:
    doc = factories.document()
    doc["task_types"] = {**doc["task_types"], "summarize": "drafting"}
    doc["routes"]["drafting"] = {
        "tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}],
        "escalate": {"min_confidence": 0.6, "on_validation_failure": True, "max_depth": 1},
    }
    return doc


@pytest.fixture
def month_data(db: Any, publisher: Any) -> Any:
    """Policy 'checkout' with hand-countable cells in March 2025 and February 2025.

    March:
      general/chat: tier 1 gpt-4o-mini 200 requests (196 ok, 4 low_confidence) $0.20, plus 10 ok
        requests on the unpriced mystery-1; tier 2 gpt-4o: 40 requests routed there directly
        (38 ok, 2 error) $0.40 and 4 ok escalations $0.04.
      extraction: tier 1 100 requests (60 ok, 40 low_confidence) $0.10; tier 2 40 escalations
        (36 ok, 4 validation_failed) $0.40; tier 3 o1 6 escalations (3 ok, 3 error) $0.60.
      drafting/summarize: tier 1 20 requests (10 ok, 10 low_confidence) $0.02; tier 2 10 ok
        escalations $0.10.
      Latency: every tier-1 attempt in [100, 250) ms, every higher-tier attempt in [500, 1000) ms.
    February: chat 100 requests (90 ok, 10 low_confidence) $0.10 and 5 ok fallback attempts on
      claude-3-5-haiku $0.05; extraction 50 requests (40 ok, 10 low_confidence) $0.05 and 10 ok
      escalations $0.10.
    Versions: v1 in January, v2 published by the publisher on March 5, v3 rolls back to v1 on
    March 20 (by the system).
    """
    policy = factories.policy("checkout", doc=_document())
    factories.publish(
        policy, {**_document(), "default_route": "extraction"}, comment="unknown tasks to extraction", user=publisher
    )
    routing_services.policy_rollback(policy=policy, to_number=1, user=None, comment="extraction got expensive")
    for number, when in {
        1: datetime(2025, 1, 15, 9, tzinfo=UTC),
        2: datetime(2025, 3, 5, 9, tzinfo=UTC),
        3: datetime(2025, 3, 20, 16, tzinfo=UTC),
    }.items():
        PolicyVersion.objects.filter(policy=policy, number=number).update(published_at=when)
    g, x, d = (
        {"route": "general", "task_type": "chat"},
        {"route": "extraction", "task_type": "extraction"},
        {"route": "drafting", "task_type": "summarize"},
    )
    t2, t3 = {"tier": 2, "model": "gpt-4o"}, {"tier": 3, "model": "o1"}
    m1, m2 = at("2025-03-03"), at("2025-03-21")
    RollupHourly.objects.bulk_create(
        [
            cell(policy, m1, **g, count=196, requests=196, cost_usd="0.196", latency_b3=196),
            cell(policy, m1, **g, outcome="low_confidence", count=4, requests=4, cost_usd="0.004", latency_b3=4),
            cell(
                policy, m1, **g, model="mystery-1", provider="local", count=10, requests=10, unpriced=10, latency_b3=10
            ),
            cell(policy, m1, **g, **t2, count=38, requests=38, cost_usd="0.38", latency_b5=38),
            cell(policy, m1, **g, **t2, outcome="error", count=2, requests=2, cost_usd="0.02", latency_b5=2),
            cell(policy, m2, **g, **t2, count=4, escalations=4, cost_usd="0.04", latency_b5=4),
            cell(policy, m1, **x, count=60, requests=60, cost_usd="0.06", latency_b3=60),
            cell(policy, m1, **x, outcome="low_confidence", count=40, requests=40, cost_usd="0.04", latency_b3=40),
            cell(policy, m1, **x, **t2, count=36, escalations=36, cost_usd="0.36", latency_b5=36),
            cell(
                policy,
                m1,
                **x,
                **t2,
                outcome="validation_failed",
                count=4,
                escalations=4,
                cost_usd="0.04",
                latency_b5=4,
            ),
            cell(policy, m2, **x, **t3, count=3, escalations=3, cost_usd="0.30", latency_b5=3),
            cell(policy, m2, **x, **t3, outcome="error", count=3, escalations=3, cost_usd="0.30", latency_b5=3),
            cell(policy, m2, **d, count=10, requests=10, cost_usd="0.01", latency_b3=10),
            cell(policy, m2, **d, outcome="low_confidence", count=10, requests=10, cost_usd="0.01", latency_b3=10),
            cell(policy, m2, **d, **t2, count=10, escalations=10, cost_usd="0.10", latency_b5=10),
            # February
            cell(policy, at("2025-02-10"), **g, count=90, requests=90, cost_usd="0.09", latency_b3=90),
            cell(
                policy,
                at("2025-02-10"),
                **g,
                outcome="low_confidence",
                count=10,
                requests=10,
                cost_usd="0.01",
                latency_b3=10,
            ),
            cell(
                policy,
                at("2025-02-10"),
                **g,
                model="claude-3-5-haiku-20241022",
                provider="anthropic",
                count=5,
                cost_usd="0.05",
                latency_b4=5,
            ),
            cell(policy, at("2025-02-11"), **x, count=40, requests=40, cost_usd="0.04", latency_b3=40),
            cell(
                policy,
                at("2025-02-11"),
                **x,
                outcome="low_confidence",
                count=10,
                requests=10,
                cost_usd="0.01",
                latency_b3=10,
            ),
            cell(policy, at("2025-02-11"), **x, **t2, count=10, escalations=10, cost_usd="0.10", latency_b5=10),
            # Outside both months: never counted.
            cell(policy, at("2025-04-01", 0), **g, count=1000, requests=1000, cost_usd="100"),
            cell(policy, at("2025-01-31", 23), **g, count=1000, requests=1000, cost_usd="100"),
        ]
    )
    return policy


@pytest.fixture(autouse=True)
def _today(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports are addressed relative to today: pin it to 2025-04-10 (March is the last full month)."""
    from django.utils import timezone

    fixed = datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: fixed)


@pytest.fixture
def logged_in(client: Any, make_user: Any) -> Any:
    client.force_login(make_user("viewer"))
    return client


def report_url(name: str = "report", *args: str) -> str:
    return reverse(f"reports:{name}", args=["checkout", MONTH, *args] if name != "index" else ["checkout", *args])


# ---------------------------------------------------------------------------------- ground truth


def sql_month(policy_id: int, first: str, after: str, where: str = "TRUE") -> dict[str, Any]:
    """Month totals straight from the rollup table."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT coalesce(sum(cost_usd), 0), coalesce(sum(requests), 0), coalesce(sum(escalations), 0),
                   coalesce(sum(count) FILTER (WHERE outcome = 'ok'), 0), coalesce(sum(unpriced), 0)
            FROM metrics_rollup_hourly
            WHERE policy_id = %s AND hour >= %s AND hour < %s AND {where}""",
            [policy_id, first, after],
        )
        cost, requests, escalations, ok, unpriced = (float(v) for v in cursor.fetchone())
    return {
        "cost_usd": float(cost),
        "requests": int(requests),
        "escalation_rate": escalations / requests,
        "pass_rate": min(1.0, ok / requests),
        "cost_per_request_usd": float(cost) / requests,
        "unpriced": int(unpriced),
    }


def sql_tiers(policy_id: int, route: str) -> dict[int, dict[str, float]]:
    """March per tier of one route: requests reaching it, escalations into it, attempts, ok, cost."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT tier, sum(requests) + sum(escalations), sum(escalations), sum(count),
                   sum(count) FILTER (WHERE outcome = 'ok'), sum(cost_usd)
            FROM metrics_rollup_hourly
            WHERE policy_id = %s AND route = %s AND hour >= '2025-03-01' AND hour < '2025-04-01'
            GROUP BY tier""",
            [policy_id, route],
        )
        return {
            t: {"reached": int(reached), "into": int(into), "attempts": int(n), "ok": int(ok or 0), "cost": float(cost)}
            for t, reached, into, n, ok, cost in cursor.fetchall()
        }


def test_report__fixture__summary_equals_sql_ground_truth(month_data: Any) -> None:
    report = rsel.monthly_report(month_data, date(2025, 3, 1))
    summary = {row["metric"]: row for row in report["summary"]}
    cur = sql_month(month_data.pk, "2025-03-01", "2025-04-01")
    prev = sql_month(month_data.pk, "2025-02-01", "2025-03-01")
    for key in ("cost_usd", "requests", "cost_per_request_usd", "escalation_rate", "pass_rate", "unpriced"):
        assert summary[key]["current"] == pytest.approx(cur[key]), key
        assert summary[key]["previous"] == pytest.approx(prev[key]), key
        assert summary[key]["change"] == pytest.approx(cur[key] - prev[key]), key
    # By hand: $1.86 over 370 requests against $0.30 over 150.
    assert summary["cost_usd"]["current"] == pytest.approx(1.86)
    assert summary["cost_usd"]["change_pct"] == pytest.approx(1.56 / 0.30)
    assert (summary["requests"]["current"], summary["requests"]["previous"]) == (370, 150)
    assert summary["escalation_rate"]["current"] == pytest.approx(60 / 370)
    assert summary["pass_rate"]["current"] == pytest.approx(367 / 370)
    assert summary["pass_rate"]["previous"] == pytest.approx(145 / 150)
    assert summary["unpriced"]["current"] == 10
    assert summary["unpriced"]["previous"] == 0
    # Tier 1→2: escalations into tier 2 (4 + 40 + 10) over requests reaching tier 1 (210 + 100 + 20).
    assert summary["tier_1_to_2_rate"]["current"] == pytest.approx(54 / 330)
    assert summary["tier_2_to_3_rate"]["current"] == pytest.approx(6 / (40 + 54))
    # 330 attempts in [100, 250) ms, 100 in [500, 1000): p95 at rank 408.5 → 500 + 500 · 78.5 / 100.
    assert summary["p95_ms"]["current"] == pytest.approx(892.5)
    assert report["has_data"]
    assert report["complete"]


def test_report__fixture__per_task_type_and_route_equal_sql(month_data: Any) -> None:
    report = rsel.monthly_report(month_data, date(2025, 3, 1))
    for table, column in (("task_types", "task_type"), ("routes", "route")):
        for row in report[table]:
            where = f"{column} = '{row[column]}'"
            cur = sql_month(month_data.pk, "2025-03-01", "2025-04-01", where)
            assert row["metrics"]["cost_usd"]["current"] == pytest.approx(cur["cost_usd"])
            assert row["metrics"]["requests"]["current"] == cur["requests"]
            assert row["metrics"]["escalation_rate"]["current"] == pytest.approx(cur["escalation_rate"])
    tasks = {r["task_type"]: r["metrics"] for r in report["task_types"]}
    assert [r["task_type"] for r in report["task_types"]] == ["extraction", "chat", "summarize"]  # by spend
    assert tasks["chat"]["cost_usd"]["previous"] == pytest.approx(0.15)
    assert tasks["summarize"]["cost_usd"]["previous"] == 0.0
    assert tasks["summarize"]["cost_usd"]["change_pct"] is None
    assert tasks["extraction"]["tier_1_to_2_rate"]["current"] == pytest.approx(0.40)


def test_report__fixture__top_movers_by_dollars_and_percent(month_data: Any) -> None:
    movers = rsel.monthly_report(month_data, date(2025, 3, 1))["movers"]
    assert [(m["dimension"], m["name"]) for m in movers["absolute"]] == [
        ("task_type", "extraction"),
        ("model", "gpt-4o"),
        ("model", "o1"),
        ("task_type", "chat"),
        ("model", "gpt-4o-mini"),
    ]
    assert movers["absolute"][0]["change_usd"] == pytest.approx(0.95)
    assert movers["absolute"][2]["change_pct"] is None  # o1 is new: no relative change
    assert [(m["name"], round(m["change_pct"], 4)) for m in movers["relative"]] == [
        ("gpt-4o", 8.4),
        ("extraction", round(0.95 / 0.15, 4)),
        ("chat", round(0.49 / 0.15, 4)),
        ("gpt-4o-mini", round(0.17 / 0.15, 4)),
        ("claude-3-5-haiku-20241022", -1.0),
    ]


def test_report__fixture__recommendations_and_savings_equal_sql(month_data: Any) -> None:
    rec = rsel.monthly_report(month_data, date(2025, 3, 1))["recommendations"]
    items = {(r["kind"], r["route"], r["transition"]): r for r in rec["items"]}
    assert set(items) == {
        ("tier1_sufficient", "general", "1→2"),
        ("over_band", "extraction", "1→2"),
        ("over_band", "extraction", "2→3"),
        ("over_band", "drafting", "1→2"),
        ("direct_route", "drafting", "1→2"),
    }

    # Tier 1 good enough on general: 206 ok of 210 tier-1 attempts (98.1%), 44 requests served at
    # tier 2: savings = 44 × (tier-2 − tier-1 cost per request).
    g = sql_tiers(month_data.pk, "general")
    assert g[1]["ok"] / g[1]["attempts"] == pytest.approx(206 / 210)
    expected = g[2]["reached"] * (g[2]["cost"] / g[2]["reached"] - g[1]["cost"] / g[1]["reached"])
    tier1 = items[("tier1_sufficient", "general", "1→2")]
    assert tier1["estimated_monthly_savings_usd"] == pytest.approx(expected)
    assert tier1["estimated_monthly_savings_usd"] == pytest.approx(44 * (0.01 - 0.20 / 210))
    assert tier1["affected_requests"] == 44

    # Over band: (escalations − band top × requests reaching the lower tier) × upper tier's cost per request.
    x = sql_tiers(month_data.pk, "extraction")
    one_two = (x[2]["into"] - 0.30 * x[1]["reached"]) * x[2]["cost"] / x[2]["reached"]
    two_three = (x[3]["into"] - 0.10 * x[2]["reached"]) * x[3]["cost"] / x[3]["reached"]
    assert items[("over_band", "extraction", "1→2")]["estimated_monthly_savings_usd"] == pytest.approx(one_two)
    assert items[("over_band", "extraction", "2→3")]["estimated_monthly_savings_usd"] == pytest.approx(two_three)
    assert (one_two, two_three) == (pytest.approx(0.10), pytest.approx(0.20))
    assert items[("over_band", "drafting", "1→2")]["estimated_monthly_savings_usd"] == pytest.approx(0.04)
    assert items[("over_band", "drafting", "1→2")]["threshold"] == 0.30  # the default band: the route says none

    advisory = items[("direct_route", "drafting", "1→2")]
    assert advisory["task_type"] == "summarize"
    assert advisory["estimated_monthly_savings_usd"] is None
    assert "route this task type directly to the stronger tier" in advisory["message"]
    assert rec["total_savings_usd"] == pytest.approx(44 * (0.01 - 0.20 / 210) + 0.10 + 0.20 + 0.04)
    assert rec["whatif"] is None


def test_report__changes_in_month__who_when_why_and_versions(month_data: Any, publisher: Any) -> None:
    report = rsel.monthly_report(month_data, date(2025, 3, 1))
    changes = report["changes"]
    assert [(c["version"], c["previous_version"], c["action"], c["rollback_of"]) for c in changes] == [
        (2, 1, "publish", None),
        (3, 2, "rollback", 1),
    ]
    assert changes[0]["by"] == publisher.get_username()
    assert changes[1]["by"] == "system"
    assert changes[0]["comment"] == "unknown tasks to extraction"
    assert changes[1]["comment"] == "rollback to v1: extraction got expensive"
    assert changes[0]["at"].startswith("2025-03-05T09:00")
    assert changes[0]["changed_paths"] == ["default_route"]
    assert [m["label"] for m in report["markers"]] == ["v2", "v3 ↺ v1"]
    assert rsel.monthly_report(month_data, date(2025, 2, 1))["changes"] == []


def test_report__alerts__open_in_month_listed(month_data: Any) -> None:
    def alert(opened: str, resolved: str | None, detector: str, policy: Any = month_data) -> Alert:
        return Alert.objects.create(
            policy=policy,
            route="extraction",
            detector=detector,
            severity="ticket",
            status="resolved" if resolved else "open",
            summary=f"{detector} fired",
            evidence={},
            opened_at=datetime.fromisoformat(opened).replace(tzinfo=UTC),
            last_evaluated_at=datetime.fromisoformat(opened).replace(tzinfo=UTC),
            resolved_at=datetime.fromisoformat(resolved).replace(tzinfo=UTC) if resolved else None,
        )

    alert("2025-03-12T08:00", None, "escalation_band")
    alert("2025-01-20T08:00", "2025-03-02T08:00", "pass_rate_drop")
    alert("2025-01-05T08:00", "2025-01-09T08:00", "error_spike")  # over before March
    alert("2025-04-02T08:00", None, "mix_shift")  # after March
    alert("2025-03-12T08:00", None, "burn_rate", policy=factories.policy("other"))
    alerts = rsel.monthly_report(month_data, date(2025, 3, 1))["alerts"]
    assert [(a["detector"], a["raised_in_month"]) for a in alerts] == [
        ("escalation_band", True),
        ("pass_rate_drop", False),
    ]
    assert alerts[0]["summary"] == "escalation_band fired"


# ---------------------------------------------------------------------- page, CSV, JSON, API agree


def cells_of(html: str, metric: str) -> tuple[str, str, str]:
    row = re.search(rf'<tr data-metric="{metric}">(.*?)</tr>', html, re.S)
    assert row, metric
    values = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    return tuple(v.strip() for v in values)  # type: ignore[return-value]


def test_report_page__fixture__shows_the_numbers(logged_in: Any, month_data: Any) -> None:
    response = logged_in.get(report_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert cells_of(html, "cost_usd") == ("$1.86", "$0.30", "+$1.56 (+520%)")
    assert cells_of(html, "requests") == ("370", "150", "+220 (+147%)")
    assert cells_of(html, "escalation_rate") == ("16.2%", "6.7%", "+9.5 pp")
    assert cells_of(html, "pass_rate") == ("99.2%", "96.7%", "+2.5 pp")
    assert cells_of(html, "p95_ms")[0] == "892 ms"
    assert cells_of(html, "unpriced") == ("10", "0", "+10 (new)")
    assert re.search(r"data-total-savings>\$0\.74<", html)
    for table in (
        "summary",
        "task_types",
        "routes",
        "movers-absolute",
        "movers-relative",
        "changes",
        "recommendations",
    ):
        assert f'id="{table}"' in html, table
    for name in report_tables.TABLES:
        if name != "dimensions":  # linked from the "Cost by" sections, which need a declared dimension
            assert f'href="{report_url("csv", name)}"' in html
    assert f'href="{report_url("json")}"' in html
    assert "rollback to v1" in html
    assert "v2 → <b>v3</b>" in html
    assert 'id="whatif-estimate"' in html
    figures = {f["name"]: f["figure"] for f in response.context["figures"]}
    assert set(figures) == {"daily_spend", "spend_change", "escalation_daily", "pass_rate_daily"}
    marks = [a["text"] for a in figures["daily_spend"]["layout"]["annotations"]]
    assert marks == ["v2", "v3 ↺ v1"]
    assert "plotly.min.js" in html
    assert "signalbox/report.css" in html


def test_report_json__same_numbers_as_page_and_api(logged_in: Any, api: Any, make_user: Any, month_data: Any) -> None:
    page = logged_in.get(report_url()).context["report"]
    body = logged_in.get(report_url("json")).json()
    assert body == page
    response = api(make_user("viewer")).get(reverse("metrics-api:report", args=["checkout", MONTH]))
    assert response.status_code == 200
    assert response.json() == page


# "dimensions" needs a declared dimension: tests/metrics/dashboards/test_attribution.py reads it.
@pytest.mark.parametrize("table", [t for t in report_tables.TABLES if t != "dimensions"])
def test_report_csv__every_table__same_numbers_as_json(logged_in: Any, month_data: Any, table: str) -> None:
    Alert.objects.create(
        policy=month_data,
        route="",
        detector="budget_thresholds",
        severity="page",
        status="open",
        summary="=SUM(A1) spent 80% of the budget",
        evidence={},
        opened_at=at("2025-03-09"),
        last_evaluated_at=at("2025-03-09"),
    )
    response = logged_in.get(report_url("csv", table))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="signalbox-checkout-{MONTH}-{table}.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header, expected = report_tables.report_table(logged_in.get(report_url("json")).json(), table)
    assert rows[0] == header
    assert len(rows) - 1 == len(expected) > 0
    for got, want in zip(rows[1:], expected, strict=True):
        for text, value in zip(got, want, strict=True):
            if value is None:
                assert text == ""
            elif isinstance(value, bool):
                assert text == str(value)
            elif isinstance(value, int | float):
                assert float(text) == value  # full precision: the CSV parses back to the JSON's number
            elif value.startswith("="):
                assert text == "'" + value  # never run as a spreadsheet formula
            else:
                assert text == value


def test_report_csv__summary__equals_sql(logged_in: Any, month_data: Any) -> None:
    rows = {
        r["metric"]: r
        for r in csv.DictReader(io.StringIO(logged_in.get(report_url("csv", "summary")).content.decode()))
    }
    cur = sql_month(month_data.pk, "2025-03-01", "2025-04-01")
    prev = sql_month(month_data.pk, "2025-02-01", "2025-03-01")
    assert float(rows["cost_usd"]["current"]) == pytest.approx(cur["cost_usd"])
    assert float(rows["cost_usd"]["change"]) == pytest.approx(cur["cost_usd"] - prev["cost_usd"])
    assert float(rows["pass_rate"]["change"]) == pytest.approx(cur["pass_rate"] - prev["pass_rate"])


def test_report_api__documented_in_openapi(api: Any, make_user: Any) -> None:
    schema = api(make_user("viewer")).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/metrics/reports/{policy}/{month}/"]["get"]
    assert operation["operationId"] == "metrics_report"
    assert {p["name"] for p in operation["parameters"]} >= {"policy", "month"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert {"summary", "task_types", "routes", "movers", "changes", "alerts", "recommendations"} <= set(fields)


# ------------------------------------------------------------------------------- empty and refusals


def test_report__month_without_decisions__empty_state_says_what_to_do(logged_in: Any, month_data: Any) -> None:
    RollupHourly.objects.filter(hour__gte=at("2025-03-01", 0)).delete()
    response = logged_in.get(report_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "No decisions recorded for checkout in March 2025" in html
    assert "manage.py demo_traffic" in html
    assert "docs/client.md" in html
    assert f'href="{reverse("reports:report", args=["checkout", "2025-02"])}">February 2025</a>' in html
    assert "plotly.min.js" not in html
    assert "rollback to v1" in html  # the month's policy changes still show


def test_report__policy_without_any_decision__empty_state(logged_in: Any) -> None:
    factories.policy("checkout")
    html = logged_in.get(report_url()).content.decode()
    assert "No decisions recorded for checkout in March 2025" in html
    assert "No decision has been recorded for this policy yet." in html


@pytest.mark.parametrize(
    ("month", "status", "message"),
    [
        ("2025-13", 400, "the month number runs from 01 to 12"),
        ("march", 400, "is not a month: use YYYY-MM"),
        ("2025-3", 400, "is not a month: use YYYY-MM"),
        ("1999-12", 400, "Reports start in January 2000"),
        ("0000-01", 400, "Reports start in January 2000"),  # year 0 does not exist: was a 500
        ("٢٠٢٥-٠٣", 400, "is not a month: use YYYY-MM"),  # digits, but not ASCII ones
        ("2025-05", 404, "May 2025 has not started yet"),
    ],
)
def test_report__bad_month__clear_4xx_everywhere(
    logged_in: Any, api: Any, make_user: Any, month_data: Any, month: str, status: str, message: str
) -> None:
    page = logged_in.get(reverse("reports:report", args=["checkout", month]))
    assert page.status_code == status
    assert message in page.content.decode()
    for name in ("json", "csv"):
        args = ["checkout", month] + (["summary"] if name == "csv" else [])
        response = logged_in.get(reverse(f"reports:{name}", args=args))
        assert response.status_code == status
        assert message in response.json()["message"]
        assert "month" in response.json()["errors"]
    response = api(make_user("viewer")).get(reverse("metrics-api:report", args=["checkout", month]))
    assert response.status_code == status
    assert message in response.json()["message"]
    assert "month" in response.json()["errors"]
    assert logged_in.get(report_url("index") + f"?month={month}").status_code == status


def test_report__month_with_trailing_newline__400_not_that_months_report(
    logged_in: Any, api: Any, make_user: Any, month_data: Any
) -> None:
    assert logged_in.get(reverse("reports:report", args=["checkout", MONTH + "\n"])).status_code == 400
    response = api(make_user("viewer")).get(reverse("metrics-api:report", args=["checkout", MONTH + "\n"]))
    assert response.status_code == 400
    assert response.json()["errors"] == {"month": ["expected YYYY-MM"]}


def test_report__unknown_policy_or_table__404_naming_it(
    logged_in: Any, api: Any, make_user: Any, month_data: Any
) -> None:
    response = logged_in.get(reverse("reports:report", args=["nope", MONTH]))
    assert response.status_code == 404
    assert "No policy &#x27;nope&#x27;." in response.content.decode()
    assert "reports/nope/" not in response.content.decode()  # no link back to a report that can't exist
    assert logged_in.get(reverse("reports:index", args=["nope"])).status_code == 404
    response = logged_in.get(reverse("reports:csv", args=["checkout", MONTH, "secrets"]))
    assert response.status_code == 404
    assert "the tables are summary, task_types" in response.json()["message"]
    assert api(make_user("viewer")).get(reverse("metrics-api:report", args=["nope", MONTH])).status_code == 404


def test_report_index__redirects_to_last_full_month_or_the_picked_one(logged_in: Any, month_data: Any) -> None:
    response = logged_in.get(report_url("index"))
    assert response.status_code == 302
    assert response["Location"] == report_url()
    response = logged_in.get(report_url("index") + "?month=2025-01")
    assert response["Location"] == reverse("reports:report", args=["checkout", "2025-01"])
    assert logged_in.get(reverse("reports:root"))["Location"] == report_url("index")


def test_dashboards__every_page__links_the_monthly_report(logged_in: Any, month_data: Any) -> None:
    html = logged_in.get(reverse("dashboards:cost") + "?policy=checkout").content.decode()
    assert f'action="{report_url("index")}"' in html
    assert 'type="month" name="month"' in html


def test_report__access__anonymous_to_login_no_role_forbidden(client: Any, make_user: Any, month_data: Any) -> None:
    assert "/admin/login/" in client.get(report_url())["Location"]
    client.force_login(make_user(None))
    assert client.get(report_url()).status_code == 403
    assert client.get(report_url("json")).status_code == 403


# ----------------------------------------------------------------------------------- query counts


# session, user, the user's permissions (user and group), the policy, then the report's own.
REPORT_QUERY_COUNT = 5 + rsel.REPORT_QUERIES


def test_report__query_count__pinned_and_independent_of_rows(
    client: Any, make_user: Any, month_data: Any, django_assert_num_queries: Any
) -> None:
    client.force_login(make_user("viewer"))
    with django_assert_num_queries(REPORT_QUERY_COUNT):
        assert client.get(report_url()).status_code == 200
    RollupHourly.objects.bulk_create(
        [
            cell(
                month_data,
                at(f"2025-03-{d:02d}", h),
                route=f"r{d % 4}",
                task_type=f"t{d}",
                model=f"m{h % 5}",
                tier=1 + h % 3,
                count=3,
                requests=2,
                escalations=1,
                cost_usd=Decimal("0.5"),
            )
            for d in range(1, 29)
            for h in range(0, 24, 2)
        ]
    )
    Alert.objects.bulk_create(
        [
            Alert(
                policy=month_data,
                route=f"r{i}",
                detector="mix_shift",
                severity="info",
                status="resolved",
                summary="s",
                evidence={},
                opened_at=at("2025-03-04"),
                last_evaluated_at=at("2025-03-05"),
                resolved_at=at("2025-03-05"),
            )
            for i in range(5)
        ]
    )
    with django_assert_num_queries(REPORT_QUERY_COUNT):
        assert client.get(report_url()).status_code == 200
    with django_assert_num_queries(REPORT_QUERY_COUNT):
        assert client.get(report_url("json")).status_code == 200


def test_report__policy_with_draft__recommendations_carry_the_drafts_whatif(
    logged_in: Any, api: Any, make_user: Any, month_data: Any, publisher: Any
) -> None:
    """Given a draft that puts gpt-4o-mini on both of general's tiers, the report's what-if is the
    what-if API's estimate of that draft over the same month, and the page states it."""
    draft = _document()
    draft["routes"]["general"]["tiers"] = [{"model": "gpt-4o-mini"}, {"model": "gpt-4o-mini"}]
    routing_services.draft_save(policy=month_data, document=draft, user=publisher)

    whatif = rsel.monthly_report(month_data, date(2025, 3, 1))["recommendations"]["whatif"]
    answer = api(make_user("viewer")).post(
        "/api/v1/metrics/whatif/", {"policy": "checkout", "start": "2025-03-01", "end": "2025-03-31"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    assert whatif["draft_revision"] == 1
    assert whatif["total"] == answer.json()["total"]
    # The fixture's 10 requests on the unpriced mystery-1 keep the saving unknown rather than $0.
    assert whatif["total"]["actual"]["unpriced_attempts"] == 10
    assert whatif["total"]["savings_usd"] is None
    assert "the saving is not known" in whatif["summary"]
    page = logged_in.get(report_url()).content.decode()
    assert "What-if of the draft (revision 1)" in page
    assert whatif["summary"] in page


def test_report__policy_without_draft__whatif_says_how_to_get_one(logged_in: Any, month_data: Any) -> None:
    assert rsel.monthly_report(month_data, date(2025, 3, 1))["recommendations"]["whatif"] is None
    assert "this policy has no draft" in logged_in.get(report_url()).content.decode()


# ------------------------------------------------------------------------------------ Mark reviewed


def csrf_client(user: Any) -> tuple[Client, str, str]:
    """A client that enforces CSRF, logged in; its report page and the CSRF token the page carries."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    html = client.get(report_url()).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "every page carries a token (the log-out form)"
    return client, html, match.group(1)


def test_mark_reviewed__editor_with_csrf__recorded_audited_and_shown(
    editor: Any, month_data: Any, logged_in: Any
) -> None:
    client, html, token = csrf_client(editor)
    assert "Mark reviewed</button>" in html
    response = client.post(report_url("review"), {"note": "tier-1 fix agreed", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == report_url() + "#review"
    review = ReportReview.objects.get()
    assert (review.policy, review.month, review.reviewed_by, review.note) == (
        month_data,
        date(2025, 3, 1),
        editor,
        "tier-1 fix agreed",
    )
    assert review.reviewed_at == datetime(2025, 4, 10, 12, tzinfo=UTC)
    entry = AuditEntry.objects.get(action="report.review")
    assert (entry.actor, entry.target, entry.comment) == (editor, "checkout:report:2025-03", "tier-1 fix agreed")
    html = client.get(report_url()).content.decode()
    assert f"by <b>{editor.get_username()}</b> on" in html
    assert "2025-04-10" in html
    # The viewer sees the date, not the button; the worksheet's "last review" column shows it.
    viewer_html = logged_in.get(report_url()).content.decode()
    assert "data-review-date>2025-04-10<" in viewer_html
    assert "Mark reviewed</button>" not in viewer_html
    rows = logged_in.get(reverse("dashboards:worksheet") + "?policy=checkout&start=2025-03-01&end=2025-03-31").context[
        "data"
    ]["rows"]
    assert {r["last_review"] for r in rows} == {"2025-04-10"}
    assert logged_in.get(report_url("json")).json()["reviews"] == [
        {"reviewed_by": editor.get_username(), "reviewed_at": "2025-04-10T12:00:00+00:00", "note": "tier-1 fix agreed"}
    ]


def test_mark_reviewed__without_csrf_token__refused_nothing_recorded(editor: Any, month_data: Any) -> None:
    client, _, _ = csrf_client(editor)
    assert client.post(report_url("review"), {"note": "x"}).status_code == 403
    assert not ReportReview.objects.exists()


def test_mark_reviewed__viewer__no_button_and_post_forbidden(viewer: Any, month_data: Any) -> None:
    client, html, token = csrf_client(viewer)
    assert "Mark reviewed</button>" not in html
    assert "Not reviewed yet" in html
    response = client.post(report_url("review"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 403
    assert "permission to mark reports reviewed" in response.content.decode()
    assert not ReportReview.objects.exists()
    assert not AuditEntry.objects.filter(action="report.review").exists()


def test_mark_reviewed__publisher_twice__both_kept_newest_shown(publisher: Any, month_data: Any) -> None:
    client, _, token = csrf_client(publisher)
    client.post(report_url("review"), {"note": "first", "csrfmiddlewaretoken": token})
    client.post(report_url("review"), {"note": "second", "csrfmiddlewaretoken": token})
    assert list(ReportReview.objects.order_by("id").values_list("note", flat=True)) == ["first", "second"]
    html = client.get(report_url()).content.decode()
    assert "“second”" in html
    assert "2 reviews" in html


@pytest.mark.parametrize(
    ("note", "reason"), [("x" * 2001, "The note is too long."), ("a\x00b", "The note holds a NUL character.")]
)
def test_mark_reviewed__bad_note__400_said_nothing_recorded(
    editor: Any, month_data: Any, note: str, reason: str
) -> None:
    client, _, token = csrf_client(editor)
    response = client.post(report_url("review"), {"note": note, "csrfmiddlewaretoken": token})
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not ReportReview.objects.exists()


def test_mark_reviewed__get__not_allowed(logged_in: Any, month_data: Any) -> None:
    assert logged_in.get(report_url("review")).status_code == 405
