"""Routes of 1 to 5 tiers, with escalation bands declared, partly declared and absent, through every
surface that shows a band: the escalation page and its API, the monthly report (page, JSON, CSV),
alert evaluation and the what-if. No 500 anywhere, and the same band for a transition everywhere.

The rule, stated here independently of `metrics.rules.bands`: transition i (tier i+1 → i+2) takes
the route's declared band i; else the healthy default (20–30% for 1→2, 5–10% for 2→3); deeper
transitions without a declared band have none (shown, not judged).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.core.management import call_command

from metrics.models import Alert
from metrics.rollups import services as rollups
from tests import factories
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db

MODELS = ["gpt-4o-mini", "gpt-4o", "o1", "claude-3-5-haiku-20241022", "claude-3-5-sonnet-20241022"]
PROVIDERS = {m: factories.CATALOG[m][0] for m in MODELS}
DEFAULTS = {0: (0.2, 0.3), 1: (0.05, 0.1)}


def declared_bands(tiers: int, mode: str) -> list[dict[str, float]]:
    # Far from the traffic below (which escalates about half the time), so alerts fire where bands exist.
    every = [{"min": 0.01 * (i + 1), "max": 0.02 * (i + 1)} for i in range(tiers - 1)]
    return {"declared": every, "partly": every[:1], "absent": []}[mode]


def expected_bands(tiers: int, mode: str) -> list[dict[str, Any] | None]:
    own = declared_bands(tiers, mode)
    out: list[dict[str, Any] | None] = []
    for i in range(tiers - 1):
        if i < len(own):
            out.append({"min": own[i]["min"], "max": own[i]["max"], "source": "policy"})
        elif i in DEFAULTS:
            out.append({"min": DEFAULTS[i][0], "max": DEFAULTS[i][1], "source": "default"})
        else:
            out.append(None)
    return out


def document(tiers: int, mode: str) -> dict[str, Any]:
    route: dict[str, Any] = {"tiers": [{"model": m} for m in MODELS[:tiers]]}
    if tiers > 1:
        route["escalate"] = {"min_confidence": 0.7, "max_depth": tiers - 1}
    if bands := declared_bands(tiers, mode):
        route["expectations"] = {"escalation_bands": bands}
    return {"schema_version": 1, "default_route": "r", "task_types": {"t": "r"}, "routes": {"r": route}}


def traffic(tiers: int, moments: list[datetime], copies: int = 4) -> list[dict[str, Any]]:
    """Per moment, `copies` requests per depth 1..tiers: each attempt but the last is low_confidence
    (so every transition is reached by at least 50 requests in the alerts' 24 h window)."""
    out = []
    for ts in moments:
        for depth in [d for d in range(1, tiers + 1) for _ in range(copies)]:
            request_id = uuid.uuid4().hex
            for attempt in range(1, depth + 1):
                model = MODELS[attempt - 1]
                out.append(
                    record(
                        event_id=str(uuid.uuid4()),
                        timestamp=(ts + timedelta(seconds=attempt)).isoformat().replace("+00:00", "Z"),
                        policy="tiers",
                        route="r",
                        task_type="t",
                        model=model,
                        provider=PROVIDERS[model],
                        tier=attempt,
                        attempt=attempt,
                        request_id=request_id,
                        outcome="ok" if attempt == depth else "low_confidence",
                        confidence=0.9 if attempt == depth else 0.3,
                    )
                )
    return out


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def last_full_month(now: datetime) -> date:
    return (now.date().replace(day=1) - timedelta(days=1)).replace(day=1)


@pytest.fixture
def route_of(client: Any, now: datetime) -> Any:
    def make(tiers: int, mode: str) -> Any:
        policy = factories.policy("tiers", doc=document(tiers, mode))
        _, secret = factories.sdk_key(policy)
        month = last_full_month(now)
        moments = [datetime(month.year, month.month, 10 + d, 12, tzinfo=UTC) for d in range(3)]
        moments += [now - timedelta(hours=h) for h in range(1, 30, 2)]  # the alerts' windows
        moments += [now - timedelta(days=d, hours=3) for d in range(2, 8)]  # their baseline
        body = orjson.dumps({"decisions": traffic(tiers, moments)})
        response = client.post(
            "/api/v1/client/decisions",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        assert response.status_code == 200, response.content
        assert response.json()["rejected"] == 0, response.json()
        rollups.rollups_update()
        return policy

    return make


CASES = [
    (n, mode) for n in range(1, 6) for mode in ("declared", "partly", "absent") if not (n == 1 and mode != "absent")
]


@pytest.mark.parametrize(("tiers", "mode"), CASES)
def test_route_of_n_tiers__every_surface__answers_with_the_same_bands(
    tiers: int, mode: str, route_of: Any, client: Any, api: Any, viewer: Any, now: datetime
) -> None:
    policy = route_of(tiers, mode)
    expected = expected_bands(tiers, mode)
    month = last_full_month(now)
    span = {"policy": policy.slug, "start": month.isoformat(), "end": now.date().isoformat()}

    # The metrics API: one step per transition, each with the rule's band (None where it has none).
    response = api(viewer).get("/api/v1/metrics/escalation/", span)
    assert response.status_code == 200, response.content
    data = response.json()
    (route,) = data["routes"]
    steps = route["steps"][: tiers - 1]
    assert [s["band"] for s in steps] == expected
    for step, band in zip(steps, expected, strict=True):
        assert step["reached"] > 0
        if band is None:
            assert step["status"] == "no band"
        else:
            assert step["status"] in {"in band", "below band", "above band"}
    assert [t["from_tier"] for t in data["transitions"]] == list(range(1, max(tiers - 1, 2) + 1))

    # The page: renders, one column group per transition.
    client.force_login(viewer)
    page = client.get("/dashboards/escalation/", span)
    assert page.status_code == 200
    html = page.content.decode()
    table = html[html.index('id="escalation-routes"') :]
    table = table[: table.index("</table>")]
    for t in range(1, max(tiers - 1, 2) + 1):
        assert f"Tier {t} → {t + 1}</th>" in table
    assert table.count(">no band</span>") == expected.count(None)

    # The monthly report: page, JSON, every CSV; an over-band saving only where a band exists.
    base = f"/reports/{policy.slug}/{month:%Y-%m}/"
    assert client.get(base).status_code == 200
    report = client.get(base + "report.json")
    assert report.status_code == 200
    over_band = {r["transition"] for r in report.json()["recommendations"]["items"] if r["kind"] == "over_band"}
    with_band = {f"{i + 1}→{i + 2}" for i, band in enumerate(expected) if band is not None}
    assert over_band <= with_band
    for table in ("summary", "task_types", "routes", "movers", "changes", "alerts", "recommendations"):
        assert client.get(f"{base}{table}.csv").status_code == 200

    # Alerts: evaluation completes; escalation alerts judge exactly the transitions with a band.
    call_command("alerts_evaluate", "--policy", policy.slug, "--at", now.isoformat(), stdout=None)
    listed = api(viewer).get("/api/v1/metrics/alerts/", {"policy": policy.slug})
    assert listed.status_code == 200
    escalation = Alert.objects.filter(policy=policy, detector="escalation_band").first()
    judged = {
        f"{i + 1}→{i + 2}"
        for i, band in enumerate(expected)
        if band is not None and band["source"] == "policy"  # far-off declared bands must fire
    }
    if judged:
        assert escalation is not None
        summary = escalation.summary
        for transition in judged:
            assert f"tier {transition} escalation" in summary or transition in str(escalation.evidence)

    # What-if of the live document over the month: answers, each step's rate says where it came from.
    whatif = api(viewer).post(
        "/api/v1/metrics/whatif/",
        {
            "policy": policy.slug,
            "document": document(tiers, mode),
            "start": month.isoformat(),
            "end": month.isoformat(),
        },
        format="json",
    )
    assert whatif.status_code == 200, whatif.content


@pytest.fixture
def five_tiers(transactional_db: Any, _truncate_decisions: None, route_of: Any, make_user: Any) -> Any:
    """A 5-tier route with one declared band, and a viewer 'reviewer' (made before the browser starts)."""
    make_user("viewer", username="reviewer")
    return route_of(5, "partly")


@pytest.mark.browser
@pytest.mark.slow
def test_five_tier_route__escalation_page_in_a_browser__one_panel_per_transition(
    five_tiers: Any, browser: Any, now: datetime
) -> None:
    browser.log_in("reviewer")
    month = last_full_month(now)
    browser.page.goto(f"{browser.url}/dashboards/escalation/?policy=tiers&start={month}&end={now.date()}")
    chart = browser.page.locator("#fig-escalation_rates-chart")
    chart.locator(".main-svg").first.wait_for(state="attached", timeout=10_000)
    titles = chart.locator(".annotation-text").all_text_contents()
    assert titles == ["Tier 1 → 2", "Tier 2 → 3", "Tier 3 → 4", "Tier 4 → 5"]
    assert browser.page.locator("#escalation-routes >> text=no band").count() == 2  # 3→4 and 4→5
    browser.screenshot("escalation-five-tiers", chart)
    assert browser.errors == []
