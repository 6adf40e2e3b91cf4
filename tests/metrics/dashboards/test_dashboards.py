"""The dashboards: access, empty states, numbers against hand-computed ground truth, query counts,
and the JSON endpoints returning the same numbers as the pages."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from metrics.dashboards import selectors as sel
from metrics.models import RollupHourly
from routing import services
from routing.models import PolicyVersion
from tests import factories

PAGES = ["overview", "cost", "escalation", "quality", "latency", "budget", "worksheet", "alerts"]
RANGE = {"start": "2025-03-01", "end": "2025-03-10"}
BUDGET = {"daily_usd": 1, "monthly_usd": 3, "downgrade_at": 0.9}


def cell(policy: Any, hour: datetime, **values: Any) -> RollupHourly:
    """A rollup cell of `policy`; dimensions default to extraction / gpt-4o-mini / tier 1 / ok."""
    dims = {
        "policy_version": 1,
        "route": "extraction",
        "task_type": "extraction",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "tier": 1,
        "outcome": "ok",
    }
    dims.update({k: values.pop(k) for k in list(values) if k in dims})
    values.setdefault("cost_usd", Decimal("0"))
    values["cost_usd"] = Decimal(str(values["cost_usd"]))
    return RollupHourly(policy_id=policy.pk, hour=hour, **dims, **values)


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@pytest.fixture
def known(db: Any) -> Any:
    """Policy 'checkout' with hand-countable cells in 2025-03-01..10 (and one in the 10 days before).

    extraction (route extraction, max $0.01/request, bands 20–30% and 5–10%, p95 budget 4000 ms):
      tier 1 gpt-4o-mini: 80 ok + 20 low_confidence requests, $0.40 + $0.10, latency 80 in
        [100,250) ms and 20 in [250,500) ms; tier 2 gpt-4o: 20 escalations (18 ok $0.90,
        2 validation_failed $0.10); tier 3 o1: 2 escalations (1 ok, 1 error, $0.25 each).
    chat (route general, no expectations): 50 ok requests on gpt-4o-mini ($0.05) and 10 ok on an
      unpriced model.
    summarize (route general): 10 low_confidence tier-1 requests, 5 escalate to gpt-4o (ok, $0.05).
    Previous period: 40 ok extraction requests, $0.20, on 2025-02-20.
    """
    policy = factories.policy("checkout", doc=factories.document(budget=BUDGET))
    d1, d2 = at("2025-03-02"), at("2025-03-05")
    RollupHourly.objects.bulk_create(
        [
            cell(
                policy,
                d1,
                count=80,
                requests=80,
                cost_usd="0.40",
                tokens_in=80000,
                tokens_out=16000,
                latency_b3=80,
                latency_sum_ms=12000,
            ),
            cell(
                policy,
                d1,
                outcome="low_confidence",
                count=20,
                requests=20,
                cost_usd="0.10",
                tokens_in=20000,
                tokens_out=4000,
                latency_b4=20,
                latency_sum_ms=6000,
            ),
            cell(policy, d1, tier=2, model="gpt-4o", count=18, escalations=18, cost_usd="0.90", latency_b5=18),
            cell(
                policy,
                d1,
                tier=2,
                model="gpt-4o",
                outcome="validation_failed",
                count=2,
                escalations=2,
                cost_usd="0.10",
                latency_b5=2,
            ),
            cell(policy, d1, tier=3, model="o1", count=1, escalations=1, cost_usd="0.25", latency_b6=1),
            cell(
                policy, d1, tier=3, model="o1", outcome="error", count=1, escalations=1, cost_usd="0.25", latency_b6=1
            ),
            cell(policy, d2, route="general", task_type="chat", count=50, requests=50, cost_usd="0.05", latency_b2=50),
            cell(
                policy,
                d2,
                route="general",
                task_type="chat",
                model="mystery-1",
                provider="local",
                count=10,
                requests=10,
                unpriced=10,
                latency_b2=10,
            ),
            cell(
                policy,
                d2,
                route="general",
                task_type="summarize",
                outcome="low_confidence",
                count=10,
                requests=10,
                latency_b3=10,
            ),
            cell(
                policy,
                d2,
                route="general",
                task_type="summarize",
                tier=2,
                model="gpt-4o",
                count=5,
                escalations=5,
                cost_usd="0.05",
                latency_b5=5,
            ),
            cell(policy, at("2025-02-20"), count=40, requests=40, cost_usd="0.20", latency_b3=40),
        ]
    )
    return policy


@pytest.fixture
def staff(make_user: Any) -> Any:
    return make_user("viewer")


@pytest.fixture
def logged_in(client: Any, staff: Any) -> Any:
    client.force_login(staff)
    return client


def url(page: str, **params: str) -> str:
    from urllib.parse import urlencode

    return reverse(f"dashboards:{page}") + ("?" + urlencode(params) if params else "")


def kpi(html: str, name: str) -> str:
    match = re.search(rf'data-kpi="{name}">([^<]*)<', html)
    assert match, f"no KPI {name}"
    return match.group(1).strip()


# ------------------------------------------------------------------------------------- access


def test_dashboards__anonymous__redirected_to_login(client: Any, db: Any) -> None:
    response = client.get(url("overview"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_dashboards__staff_without_view_policy__forbidden(client: Any, make_user: Any) -> None:
    client.force_login(make_user(None))
    assert client.get(url("cost")).status_code == 403


def test_dashboards__viewer__every_page_links_admin_and_every_page(logged_in: Any, known: Any) -> None:
    html = logged_in.get(url("overview", policy="checkout", **RANGE)).content.decode()
    assert 'href="/admin/"' in html
    for page in PAGES:
        assert f'href="{reverse(f"dashboards:{page}")}?' in html


def test_admin__header__links_the_dashboards(logged_in: Any) -> None:
    html = logged_in.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("dashboards:overview")}"' in html


# -------------------------------------------------------------------------------- empty states


@pytest.mark.parametrize("page", PAGES)
def test_page__no_policy__says_to_create_one(logged_in: Any, page: str) -> None:
    response = logged_in.get(url(page))
    assert response.status_code == 200
    assert "No routing policy yet" in response.content.decode()


@pytest.mark.parametrize("page", [p for p in PAGES if p != "alerts"])
def test_page__policy_without_decisions__says_how_to_send_them(logged_in: Any, page: str) -> None:
    factories.policy("checkout")
    html = logged_in.get(url(page, policy="checkout")).content.decode()
    assert "No decisions yet for <b>checkout</b>" in html
    assert "docs/client.md" in html
    assert "manage.py demo_traffic" in html
    assert "plotly.min.js" not in html


def test_alerts__placeholder__empty_state(logged_in: Any, known: Any) -> None:
    html = logged_in.get(url("alerts", policy="checkout", **RANGE)).content.decode()
    assert "No alerts" in html


def test_filters__bad_values__fall_back_and_say_so(logged_in: Any, known: Any) -> None:
    response = logged_in.get(url("overview", policy="nope", start="yesterday", end="2025-03-10"))
    html = response.content.decode()
    assert "Unknown policy &#x27;nope&#x27;" in html
    assert "Dates must look like 2025-01-31" in html
    f = response.context["f"]
    assert (f.policy.slug, f.start, f.end) == ("checkout", date(2025, 2, 9), date(2025, 3, 10))


def test_filters__reversed_or_too_long_range__swapped_or_cut_and_said(known: Any) -> None:
    policies = sel.policy_choices()
    f, problems = sel.dashboard_filters_parse({"start": "2025-03-10", "end": "2025-03-01"}, policies)
    assert (f.start, f.end) == (date(2025, 3, 1), date(2025, 3, 10))
    assert problems == ["The start date is after the end date: swapped them."]
    f, problems = sel.dashboard_filters_parse({"start": "2020-01-01", "end": "2025-03-10"}, policies)
    assert (f.days, f.end) == (sel.MAX_DAYS, date(2025, 3, 10))
    assert problems == [f"Ranges are limited to {sel.MAX_DAYS} days: showing the last {sel.MAX_DAYS}."]


@pytest.mark.parametrize(
    "params",
    [
        {"end": "0001-01-01"},
        {"start": "0001-01-01", "end": "0001-01-05"},
        {"end": "9999-12-31"},
        {"route": "extraction\x00"},
        {"model": "m" * 201},
    ],
)
@pytest.mark.parametrize("page", PAGES)
def test_page__unusable_filter_value__ignored_and_said_not_500(
    logged_in: Any, known: Any, page: str, params: dict[str, str]
) -> None:
    response = logged_in.get(url(page, policy="checkout", **params))
    assert response.status_code == 200
    assert len(response.context["problems"]) == 1
    f = response.context["f"]
    assert (f.route, f.model) == ("", "")
    assert sel.FIRST_DATE <= f.start <= f.end <= sel.LAST_DATE


# ------------------------------------------------------------------------ numbers: ground truth


def test_overview__known_cells__headline_numbers(logged_in: Any, known: Any) -> None:
    html = logged_in.get(url("overview", policy="checkout", **RANGE)).content.decode()
    # requests 80+20+50+10+10; cost 0.40+0.10+0.90+0.10+0.25+0.25+0.05+0.05
    assert kpi(html, "requests") == "170"
    assert kpi(html, "spend") == "$2.10"
    assert kpi(html, "month-spend") == "$2.10"
    # escalations 20 + 2 + 5 = 27 over 170 requests; ok 80 + 18 + 1 + 50 + 10 + 5 = 164
    assert kpi(html, "escalation-rate") == "15.9%"
    assert kpi(html, "pass-rate") == "96.5%"
    assert kpi(html, "open-alerts") == "0"
    assert "of $3 policy budget" in html
    assert "70%" in html


def test_overview__movers__extraction_first_with_change(known: Any) -> None:
    f, _ = sel.dashboard_filters_parse({"policy": "checkout", **RANGE}, sel.policy_choices())
    data = sel.dashboard_overview(f)
    top = data["movers"][0]
    assert top["task_type"] == "extraction"
    assert top["cost_change_usd"] == pytest.approx(1.80)
    assert top["requests_change"] == 100 - 40
    assert data["previous"]["requests"] == 40
    assert data["current"]["unpriced"] == 10


def test_cost__known_cells__per_request_flags_routing_failure(logged_in: Any, known: Any) -> None:
    response = logged_in.get(url("cost", policy="checkout", **RANGE))
    html = response.content.decode()
    data = response.context["data"]
    rows = {r["task_type"]: r for r in data["per_request"]}
    assert rows["extraction"]["cost_per_request_usd"] == pytest.approx(2.00 / 100)
    assert rows["extraction"]["routing_failure"] is True  # $0.02 > max $0.01
    assert rows["chat"]["cost_per_request_usd"] == pytest.approx(0.05 / 60)
    assert rows["chat"]["routing_failure"] is False  # route general has no maximum
    assert kpi(html, "routing-failures") == "1"
    assert kpi(html, "unpriced") == "10"
    assert kpi(html, "spend") == "$2.10"
    models = {r["model"]: r for r in data["by_model"]}
    assert models["gpt-4o"]["cost_usd"] == pytest.approx(1.05)
    assert models["mystery-1"]["unpriced"] == 10
    providers = {p["provider"]: p["cost_usd"] for p in data["by_provider"]}
    assert providers == {"openai": pytest.approx(2.10), "local": 0.0}
    series = {s["task_type"]: s["cost_usd"] for s in data["over_time"]}
    assert series["extraction"][1] == pytest.approx(2.00)
    assert sum(series["extraction"]) == pytest.approx(2.00)
    assert "routing failure" in html


def test_escalation__known_cells__rates_bands_and_advisory(logged_in: Any, known: Any) -> None:
    response = logged_in.get(url("escalation", policy="checkout", **RANGE))
    data = response.context["data"]
    routes = {r["route"]: r for r in data["routes"]}
    t12, t23 = routes["extraction"]["steps"]
    assert (t12["escalated"], t12["reached"], t12["status"]) == (20, 100, "in band")
    assert t12["rate"] == pytest.approx(0.20)
    assert (t23["escalated"], t23["reached"], t23["status"]) == (2, 20, "in band")
    assert t23["band"] == {"min": 0.05, "max": 0.1, "source": "policy"}
    general = routes["general"]["steps"][0]
    assert general["rate"] == pytest.approx(5 / 70)
    assert general["status"] == "below band"
    assert general["band"]["source"] == "default"
    # The general route has two tiers: no tier 2→3 band to be "below".
    assert (routes["general"]["steps"][1]["status"], routes["general"]["steps"][1]["band"]) == ("no tier 3", None)
    assert [a["task_type"] for a in data["advisories"]] == ["summarize"]  # 5/10 = 50% > 40%
    assert [s["count"] for s in data["funnel"]] == [170, 25, 2]
    html = response.content.decode()
    assert "route this task type directly to the stronger tier" in html
    assert kpi(html, "tier-1-2") == "14.7%"  # 25 of 170


def test_quality__known_cells__pass_rate_per_task_type_and_tier(logged_in: Any, known: Any) -> None:
    response = logged_in.get(url("quality", policy="checkout", **RANGE))
    cells = {(c["task_type"], c["tier"]): c for c in response.context["data"]["cells"]}
    assert cells[("extraction", 1)]["pass_rate"] == pytest.approx(0.80)
    assert cells[("extraction", 1)]["band"] == "watch"
    assert cells[("extraction", 2)]["pass_rate"] == pytest.approx(0.90)
    assert cells[("extraction", 3)]["pass_rate"] == pytest.approx(0.50)
    assert cells[("extraction", 3)]["band"] == "poor"
    assert cells[("chat", 1)]["pass_rate"] == 1.0
    assert cells[("chat", 1)]["band"] == "good"
    assert cells[("summarize", 1)]["pass_rate"] == 0.0
    assert kpi(response.content.decode(), "pass-rate") == "96.5%"


def test_latency__known_cells__percentiles_from_buckets(logged_in: Any, known: Any) -> None:
    response = logged_in.get(url("latency", policy="checkout", **RANGE))
    rows = {(r["route"], r["model"]): r for r in response.context["data"]["rows"]}
    mini = rows[("extraction", "gpt-4o-mini")]
    # 80 in [100,250), 20 in [250,500): p50 = 100 + 150·50/80; p95 = 250 + 250·15/20; p99 = 250 + 250·19/20
    assert mini["p50"] == pytest.approx(193.75)
    assert mini["p95"] == pytest.approx(437.5)
    assert mini["p99"] == pytest.approx(487.5)
    assert mini["p95_budget_ms"] == 4000
    assert mini["over_budget"] is False
    assert mini["mean_ms"] == pytest.approx(180.0)
    assert "438 ms" in response.content.decode()


def test_budget__known_cells__spend_forecast_thresholds(logged_in: Any, known: Any) -> None:
    response = logged_in.get(url("budget", policy="checkout", **RANGE))
    data = response.context["data"]
    assert data["month"] == "2025-03"
    assert data["period_days"] == 31
    assert data["spent_usd"] == pytest.approx(2.10)
    assert data["fraction"] == pytest.approx(0.70)
    assert data["cumulative_usd"][1] == pytest.approx(2.00)
    assert data["cumulative_usd"][-1] == pytest.approx(2.10)
    assert data["forecast"]["projected_usd"] == pytest.approx(2.10)  # the month is over
    assert [t["crossed_on"] for t in data["thresholds"]] == ["2025-03-02", None, None]
    routes = {r["route"]: r for r in data["routes"]}
    assert routes["extraction"]["spent_usd"] == pytest.approx(2.00)
    assert routes["extraction"]["monthly_usd"] == 1200
    assert kpi(response.content.decode(), "spent") == "$2.10"


def test_budget__current_month__forecast_extends_rate_and_runway(db: Any) -> None:
    policy = factories.policy("checkout", doc=factories.document(budget={"monthly_usd": 100}))
    now = datetime(2025, 4, 11, 0, 0, tzinfo=UTC)  # 10 days elapsed of 30
    RollupHourly.objects.bulk_create(
        [cell(policy, at(f"2025-04-{d:02d}"), count=1, requests=1, cost_usd="2") for d in range(1, 11)]
    )
    f = sel.DashboardFilters(policy=sel.policy_choices()[0], start=date(2025, 4, 1), end=date(2025, 4, 10))
    data = sel.dashboard_budget(f, now=now)
    assert data["spent_usd"] == pytest.approx(20.0)
    assert data["forecast"]["daily_rate_usd"] == pytest.approx(2.0)
    assert data["forecast"]["projected_usd"] == pytest.approx(60.0)
    assert data["runway_days"] == pytest.approx(40.0)  # (100 − 20) / 2


def test_worksheet__known_cells__one_row_per_task_type(logged_in: Any, known: Any) -> None:
    response = logged_in.get(url("worksheet", policy="checkout", **RANGE))
    rows = {r["task_type"]: r for r in response.context["data"]["rows"]}
    ex = rows["extraction"]
    assert ex["traffic_share"] == pytest.approx(100 / 170)
    assert ex["quality_threshold"] == 0.95
    assert (ex["primary_model"], ex["fallback_model"]) == ("gpt-4o-mini", "gpt-4o")
    assert ex["validation_rule"] is True
    assert ex["avg_tokens_in"] == pytest.approx(100000 / 122)  # per attempt: 100 + 20 + 2
    assert ex["pass_rate"] == pytest.approx(99 / 100)  # 80 + 18 + 1 ok over 100 requests
    assert ex["cost_per_request_usd"] == pytest.approx(0.02)
    assert ex["last_review"] is None
    assert rows["chat"]["route"] == "general"
    assert rows["summarize"]["route"] == "general"  # not in task_types: the route its traffic took
    assert next(iter(rows)) == "extraction"  # most traffic first


def test_filters__route_and_model__narrow_every_number(logged_in: Any, known: Any) -> None:
    response = logged_in.get(url("cost", policy="checkout", route="extraction", model="gpt-4o", **RANGE))
    data = response.context["data"]
    assert data["total_cost_usd"] == pytest.approx(1.00)
    assert [r["model"] for r in data["by_model"]] == ["gpt-4o"]
    html = response.content.decode()
    assert 'name="route"' in html
    assert "<option selected>extraction</option>" in html


# ----------------------------------------------------------------------------- version markers


def test_time_charts__publish_and_rollback__marked_with_version(logged_in: Any, known: Any) -> None:
    factories.publish(known, factories.document(budget=BUDGET, default_route="extraction"))
    services.policy_rollback(policy=known, to_number=1, user=None, comment="undo")
    stamps = {1: at("2025-03-03", 9), 2: at("2025-03-04", 9), 3: at("2025-03-06", 9)}
    for number, when in stamps.items():
        PolicyVersion.objects.filter(policy=known, number=number).update(published_at=when)
    response = logged_in.get(url("cost", policy="checkout", **RANGE))
    markers = response.context["markers"]
    assert [m["label"] for m in markers] == ["v1", "v2", "v3 ↺ v1"]
    fig = next(x["figure"] for x in response.context["figures"] if x["name"] == "cost_over_time")
    labels = [a["text"] for a in fig["layout"]["annotations"]]
    assert labels == ["v1", "v2", "v3 ↺ v1"]
    assert [s["x0"][:13] for s in fig["layout"]["shapes"]] == ["2025-03-03T09", "2025-03-04T09", "2025-03-06T09"]


# --------------------------------------------------------------------------------- query counts


# Per page: session, user, the user's permissions (2: user and group), policies, then the page's
# own: version markers (time-chart pages) and its GROUP BY queries (the worksheet's second: its
# last review date).
QUERIES = {
    "overview": 5 + 1 + 4,
    "cost": 5 + 1 + 3,
    "escalation": 5 + 1 + 2,
    "quality": 5 + 1 + 2,
    "latency": 5 + 1 + 2,
    "budget": 5 + 1 + 1,
    "worksheet": 5 + 1 + 1,
    "alerts": 5 + 1,
}


@pytest.mark.parametrize("page", PAGES)
def test_page__query_count__pinned_and_independent_of_rows(
    client: Any, make_user: Any, known: Any, page: str, django_assert_num_queries: Any
) -> None:
    client.force_login(make_user("viewer"))
    with django_assert_num_queries(QUERIES[page]):
        assert client.get(url(page, policy="checkout", **RANGE)).status_code == 200
    more = [
        cell(known, at(f"2025-03-{d:02d}", h), task_type=f"t{d}", count=1, requests=1)
        for d in range(1, 10)
        for h in range(0, 24, 3)
    ]
    RollupHourly.objects.bulk_create(more)
    with django_assert_num_queries(QUERIES[page]):
        assert client.get(url(page, policy="checkout", **RANGE)).status_code == 200


# -------------------------------------------------------------------------------- JSON endpoints


API = ["overview", "cost", "escalation", "quality", "latency", "budget", "worksheet"]


@pytest.mark.parametrize("page", API)
def test_api__same_numbers_as_page(logged_in: Any, api: Any, staff: Any, known: Any, page: str) -> None:
    page_data = logged_in.get(url(page, policy="checkout", **RANGE)).context["data"]
    response = api(staff).get(reverse(f"metrics-api:{page}"), {"policy": "checkout", **RANGE})
    assert response.status_code == 200
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    if page == "budget":  # "today" moves with the clock; everything else is fixed by the range
        page_data = {k: v for k, v in page_data.items() if k not in {"today_usd", "elapsed_days"}}
        body = {k: v for k, v in response.json().items() if k not in {"today_usd", "elapsed_days"}}
    else:
        body = response.json()
    assert body == json.loads(json.dumps(page_data, cls=DjangoJSONEncoder))


def test_api__overview__numbers(api: Any, staff: Any, known: Any) -> None:
    body = api(staff).get(reverse("metrics-api:overview"), {"policy": "checkout", **RANGE}).json()
    assert body["current"]["requests"] == 170
    assert body["current"]["cost_usd"] == pytest.approx(2.10)
    assert body["current"]["pass_rate"] == pytest.approx(164 / 170)
    assert body["current"]["escalation_rate"] == pytest.approx(27 / 170)


def test_api__unknown_policy_or_bad_date__404_and_400(api: Any, staff: Any, known: Any) -> None:
    client = api(staff)
    assert client.get(reverse("metrics-api:cost"), {"policy": "nope"}).status_code == 404
    response = client.get(reverse("metrics-api:cost"), {"policy": "checkout", "start": "March"})
    assert response.status_code == 400
    assert "start" in response.json()["errors"]
    response = client.get(reverse("metrics-api:cost"), {"policy": "checkout", "end": "0001-01-01"})
    assert response.status_code == 400
    assert "end" in response.json()["errors"]
    response = client.get(reverse("metrics-api:cost"), {"policy": "checkout", "route": "a\x00"})
    assert response.status_code == 400
    assert "route" in response.json()["errors"]


def test_api__needs_view_policy(api: Any, make_user: Any, known: Any) -> None:
    assert api(None).get(reverse("metrics-api:cost")).status_code in (401, 403)
    assert api(make_user(None)).get(reverse("metrics-api:cost")).status_code == 403


def test_api__documented_in_openapi(api: Any, staff: Any) -> None:
    response = api(staff).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    schema = response.json()
    for page in API:
        ok = schema["paths"][f"/api/v1/metrics/{page}/"]["get"]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"]["$ref"].startswith("#/components/schemas/Metrics")


# ---------------------------------------------------------------------- demo-sized data (shared)


def seed_demo_rollups(policy: Any, *, days: int = 30, end: date | None = None, seed: int = 7) -> int:
    """Realistic hourly cells for the demo policy shape (used by the browser test)."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC).date()
    plan = {  # task type: (route, requests/hour, tier-1 ok share, 1→2 escalation share)
        "extraction": ("extraction", 40, 0.78, 0.24),
        "chat": ("general", 70, 0.93, 0.06),
        "summarize": ("general", 12, 0.55, 0.45),
    }
    models = {1: ("gpt-4o-mini", 0.0006, 180), 2: ("gpt-4o", 0.009, 900), 3: ("o1", 0.06, 4000)}
    rows = []
    for d in range(days):
        day = end - timedelta(days=days - 1 - d)
        for h in range(0, 24, 2):
            hour = datetime(day.year, day.month, day.day, h, tzinfo=UTC)
            for tt, (route, rate, ok1, esc) in plan.items():
                n = max(1, int(rng.gauss(rate, rate * 0.15)))
                esc_n = int(n * rng.uniform(esc * 0.8, esc * 1.2))
                t3 = int(esc_n * 0.08 + rng.random()) if route == "extraction" else 0
                fallbacks = int(n * 0.03 + rng.random())
                if fallbacks:  # provider errors on tier 1 retried on the fallback model
                    rows.append(
                        cell(
                            policy,
                            hour,
                            route=route,
                            task_type=tt,
                            outcome="error",
                            count=fallbacks,
                            requests=fallbacks,
                            latency_sum_ms=30000 * fallbacks,
                            latency_b10=fallbacks,
                        )
                    )
                    rows.append(
                        cell(
                            policy,
                            hour,
                            route=route,
                            task_type=tt,
                            model="claude-3-5-haiku-20241022",
                            provider="anthropic",
                            count=fallbacks,
                            cost_usd=Decimal(str(round(0.0035 * fallbacks, 6))),
                            tokens_in=fallbacks * 900,
                            tokens_out=fallbacks * 180,
                            latency_sum_ms=700 * fallbacks,
                            latency_b5=fallbacks,
                        )
                    )
                for tier, count, requests, escalations in ((1, n, n, 0), (2, esc_n, 0, esc_n), (3, t3, 0, t3)):
                    if count == 0:
                        continue
                    model, price, lat = models[tier]
                    ok = min(count, int(count * (ok1 if tier == 1 else 0.93 if tier == 2 else 0.97) + rng.random()))
                    for outcome, c, r in (
                        ("ok", ok, int(requests * ok / count)),
                        ("low_confidence", count - ok, requests - int(requests * ok / count)),
                    ):
                        if c <= 0:
                            continue
                        b = [0] * 11
                        for _ in range(min(c, 40)):
                            v = rng.lognormvariate(0, 0.5) * lat
                            b[
                                sum(
                                    1 for bound in (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000) if v >= bound
                                )
                            ] += 1
                        scale = c / max(1, sum(b))
                        b = [int(x * scale) for x in b]
                        b[3] += c - sum(b)
                        rows.append(
                            cell(
                                policy,
                                hour,
                                route=route,
                                task_type=tt,
                                tier=tier,
                                model=model,
                                outcome=outcome,
                                count=c,
                                requests=r,
                                escalations=c if escalations else 0,
                                cost_usd=Decimal(str(round(price * c * rng.uniform(0.9, 1.1), 6))),
                                tokens_in=c * 900,
                                tokens_out=c * 180,
                                latency_sum_ms=lat * c,
                                **{f"latency_b{i}": x for i, x in enumerate(b)},
                            )
                        )
    RollupHourly.objects.bulk_create(rows)
    return len(rows)


def test_pass_rate__ok_answer_that_still_escalated__capped_at_100_percent(db: Any) -> None:
    """A low-confidence `ok` escalates, so 10 requests can log 10 + 4 ok attempts."""
    policy = factories.policy("checkout")
    RollupHourly.objects.bulk_create(
        [
            cell(policy, at("2025-03-02"), count=10, requests=10),
            cell(policy, at("2025-03-02"), tier=2, model="gpt-4o", count=4, escalations=4),
        ]
    )
    f, _ = sel.dashboard_filters_parse({"policy": "checkout", **RANGE}, sel.policy_choices())
    assert sel.dashboard_overview(f)["current"]["pass_rate"] == 1.0
    assert sel.dashboard_worksheet(f)["rows"][0]["pass_rate"] == 1.0
