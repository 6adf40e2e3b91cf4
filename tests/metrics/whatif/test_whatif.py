"""What-if: a draft replayed over fixture rollups equals the hand computation; the endpoint's
roles, validation and range limits; the panel on the policy page in a real browser."""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from metrics.models import RollupHourly
from metrics.whatif.replay import whatif_estimate, whatif_for_report, whatif_period
from routing import services
from routing.models import CatalogModel
from tests import factories

URL = "/api/v1/metrics/whatif/"
PERIOD = {"start": "2025-03-01", "end": "2025-03-07"}

# Catalog prices (tests/factories.py), USD per attempt of 1000 tokens in and 200 out.
MINI = (1000 * 0.15 + 200 * 0.60) / 1e6  # gpt-4o-mini
GPT4O = (1000 * 2.50 + 200 * 10.00) / 1e6
O1 = (1000 * 15.00 + 200 * 60.00) / 1e6
FLASH = (1000 * 0.075 + 200 * 0.30) / 1e6  # gemini-1.5-flash

# What happened (2025-03-02): extraction 100 requests on gpt-4o-mini, 20 escalated to gpt-4o,
# 2 of those to o1; chat (route general) 50 requests on gpt-4o-mini, 10 escalated to gpt-4o.
ACTUAL_EXTRACTION = 100 * MINI + 20 * GPT4O + 2 * O1
ACTUAL_CHAT = 50 * MINI + 10 * GPT4O


def cell(policy: Any, *, hour: datetime | None = None, count: int, **dims: Any) -> RollupHourly:
    """A rollup cell whose attempts each carry 1000 tokens in, 200 out, priced like the catalog."""
    values = {
        "policy_version": 1,
        "route": "extraction",
        "task_type": "extraction",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "tier": 1,
        "outcome": "ok",
        "requests": 0,
        "escalations": 0,
    }
    values.update(dims)
    unit = {"gpt-4o-mini": MINI, "gpt-4o": GPT4O, "o1": O1}[values["model"]]
    bucket = {"gpt-4o-mini": "latency_b3", "gpt-4o": "latency_b5", "o1": "latency_b6"}[values["model"]]
    return RollupHourly(
        policy_id=policy.pk,
        hour=hour or datetime(2025, 3, 2, 10, tzinfo=UTC),
        count=count,
        cost_usd=Decimal(repr(unit * count)),
        tokens_in=1000 * count,
        tokens_out=200 * count,
        latency_sum_ms=Decimal(count * {"latency_b3": 150, "latency_b5": 700, "latency_b6": 1500}[bucket]),
        **{bucket: count},
        **values,
    )


def traffic(policy: Any, hour: datetime | None = None) -> list[RollupHourly]:
    return [
        cell(policy, hour=hour, count=80, requests=80),
        cell(policy, hour=hour, count=20, requests=20, outcome="low_confidence"),
        cell(policy, hour=hour, count=20, escalations=20, tier=2, model="gpt-4o"),
        cell(policy, hour=hour, count=2, escalations=2, tier=3, model="o1"),
        cell(policy, hour=hour, count=50, requests=50, route="general", task_type="chat"),
        cell(policy, hour=hour, count=10, escalations=10, route="general", task_type="chat", tier=2, model="gpt-4o"),
    ]


@pytest.fixture
def checkout(db: Any) -> Any:
    """Policy 'checkout' (the factories' base document, live v1) with the traffic above."""
    policy = factories.policy("checkout")
    RollupHourly.objects.bulk_create(traffic(policy))
    return policy


def period() -> tuple[datetime, datetime]:
    return whatif_period(date(2025, 3, 1), date(2025, 3, 7))


def estimate(policy: Any, doc: dict[str, Any]) -> Any:
    start, end = period()
    return whatif_estimate(policy=policy, document=doc, start=start, end=end)


def rows(result: Any) -> dict[str, Any]:
    return {row.task_type: row for row in result.rows}


def cheaper_chat() -> dict[str, Any]:
    """A draft that moves chat to its own route on gemini-1.5-flash (no cascade)."""
    doc = factories.document()
    doc["task_types"]["chat"] = "cheap"
    doc["routes"]["cheap"] = {"tiers": [{"model": "gemini-1.5-flash", "expected_latency_ms": 300}]}
    return doc


# ---------------------------------------------------------------------------------- the model


def test_estimate__live_document__equals_what_happened(checkout: Any) -> None:
    """The fixture's actual costs are what the catalog prices give, so the model reproduces them."""
    result = estimate(checkout, factories.document())

    by = rows(result)
    assert by["extraction"].comparison.actual.cost_usd == pytest.approx(ACTUAL_EXTRACTION)
    assert by["extraction"].comparison.draft.cost_usd == pytest.approx(ACTUAL_EXTRACTION)
    assert by["chat"].comparison.draft.cost_usd == pytest.approx(ACTUAL_CHAT)
    assert by["extraction"].comparison.draft.escalation_rate == pytest.approx(0.2 + 0.2 * 0.1)
    assert result.total.delta_cost_usd == pytest.approx(0, abs=1e-12)
    assert result.total.live_modelled_cost_usd == pytest.approx(ACTUAL_EXTRACTION + ACTUAL_CHAT)
    assert by["extraction"].share == pytest.approx(100 / 150)


def test_estimate__task_type_moved_to_a_cheaper_model__exact_cost_delta(checkout: Any) -> None:
    result = estimate(checkout, cheaper_chat())

    chat = rows(result)["chat"].comparison
    assert chat.actual.cost_usd == pytest.approx(ACTUAL_CHAT)
    assert chat.draft.cost_usd == pytest.approx(50 * FLASH)
    assert chat.delta_cost_usd == pytest.approx(50 * FLASH - ACTUAL_CHAT)
    assert chat.draft.escalation_rate == 0
    assert chat.actual.escalation_rate == pytest.approx(0.2)
    # No latency observed for gemini: the tier's 300 ms, inside the [250, 500) bucket.
    assert chat.draft.p50_ms == pytest.approx(375)
    assert rows(result)["extraction"].comparison.delta_cost_usd == pytest.approx(0, abs=1e-12)
    assert rows(result)["extraction"].comparison.to_dict()["delta_p95_ms"] == pytest.approx(0)
    assert result.total.savings_usd == pytest.approx(ACTUAL_CHAT - 50 * FLASH)
    assert any("gemini-1.5-flash" in a and "expected_latency_ms" in a for a in result.assumptions)


def test_estimate__cascade_depth_and_start_tier_changed__observed_rates_applied(checkout: Any) -> None:
    doc = factories.document()
    doc["routes"]["extraction"]["escalate"]["max_depth"] = 1  # no more tier 3
    doc["routes"]["general"]["start_tier"] = 2  # chat starts on gpt-4o, nothing above it

    by = rows(estimate(checkout, doc))

    extraction = by["extraction"].comparison
    assert extraction.draft.cost_usd == pytest.approx(100 * (MINI + 0.2 * GPT4O))
    assert extraction.draft.escalation_rate == pytest.approx(0.2)
    assert extraction.actual.escalation_rate == pytest.approx(0.22)
    assert extraction.delta_cost_usd == pytest.approx(100 * (MINI + 0.2 * GPT4O) - ACTUAL_EXTRACTION)
    chat = by["chat"].comparison
    assert chat.draft.cost_usd == pytest.approx(50 * GPT4O)
    assert chat.draft.escalation_rate == 0
    assert [s.model for s in by["chat"].paths[0].steps] == ["gpt-4o"]


def test_estimate__new_tier_without_observed_escalations__band_midpoint_flagged(checkout: Any) -> None:
    doc = factories.document()
    general = doc["routes"]["general"]
    general["tiers"].append({"model": "o1"})
    general["escalate"]["max_depth"] = 2
    general["expectations"] = {"escalation_bands": [{"min": 0.2, "max": 0.3}, {"min": 0.04, "max": 0.06}]}

    result = estimate(checkout, doc)

    chat = rows(result)["chat"]
    assert chat.comparison.draft.cost_usd == pytest.approx(50 * (MINI + 0.2 * GPT4O + 0.2 * 0.05 * O1))
    assert [s.next_rate_source for s in chat.paths[0].steps] == ["observed", "policy band", None]
    assert any("'general' tier 2→3" in a and "5.0%" in a for a in result.assumptions)


def test_estimate__split_route__arms_weighted_by_their_share(checkout: Any) -> None:
    doc = factories.document()
    doc["routes"]["general"]["split"] = {
        "key": "user_id",
        "arms": [{"name": "control", "weight": 50}, {"name": "canary", "weight": 50, "model": "gemini-1.5-flash"}],
    }

    result = estimate(checkout, doc)

    chat = rows(result)["chat"]
    assert [(p.arm, p.probability, p.steps[0].model) for p in chat.paths] == [
        ("control", 0.5, "gpt-4o-mini"),
        ("canary", 0.5, "gemini-1.5-flash"),
    ]
    assert chat.comparison.draft.cost_usd == pytest.approx(
        50 * (0.5 * (MINI + 0.2 * GPT4O) + 0.5 * (FLASH + 0.2 * GPT4O))
    )
    assert any("gemini-1.5-flash; the escalation rate observed with gpt-4o-mini" in a for a in result.assumptions)


def test_estimate__rule_on_a_feature_the_rollups_lack__stated_as_assumption(checkout: Any) -> None:
    doc = factories.document()
    doc["rules"].append(
        {
            "id": "enterprise",
            "when": {"field": "user_tier", "op": "eq", "value": "enterprise"},
            "route": "extraction",
            "tier": 3,
        }
    )

    result = estimate(checkout, doc)

    assert rows(result)["chat"].paths[0].route == "general"
    assert any("Rule 'enterprise' tests user_tier" in a for a in result.assumptions)


def test_estimate__draft_model_without_price__reported_not_free(checkout: Any) -> None:
    CatalogModel.objects.create(model_id="house-llm", provider="local", tier=1, context_window=32000)
    doc = factories.document()
    doc["task_types"]["chat"] = "house"
    doc["routes"]["house"] = {"tiers": [{"model": "house-llm"}]}

    result = estimate(checkout, doc)

    chat = rows(result)["chat"].comparison
    assert chat.draft.unpriced_attempts == 50
    assert chat.draft.cost_usd == 0
    assert not chat.draft.complete
    assert chat.delta_cost_usd is None
    assert chat.savings_usd is None
    assert result.total.delta_cost_usd is None
    assert result.unpriced_models == ("house-llm",)
    assert rows(result)["extraction"].comparison.delta_cost_usd == pytest.approx(0, abs=1e-12)


def test_estimate__no_traffic_in_period__empty_result_says_why(db: Any) -> None:
    policy = factories.policy("quiet")

    result = estimate(policy, factories.document())

    assert result.empty
    assert result.rows == ()
    assert result.total.actual.requests == 0
    assert result.total.delta_cost_usd == 0
    assert "No requests were logged for 'quiet'" in result.message
    assert result.to_dict()["task_types"] == []


def test_estimate__ten_times_the_cells__same_queries_and_same_rates(checkout: Any) -> None:
    """The population comes from one GROUP BY: more rollup rows cost no extra query."""
    doc = cheaper_chat()
    estimate(checkout, doc)  # warm the price book
    with CaptureQueriesContext(connection) as small:
        before = estimate(checkout, doc)
    RollupHourly.objects.bulk_create(
        [c for h in range(1, 10) for c in traffic(checkout, datetime(2025, 3, 3, h, tzinfo=UTC))]
    )
    with CaptureQueriesContext(connection) as large:
        after = estimate(checkout, doc)

    assert len(large.captured_queries) == len(small.captured_queries)
    assert rows(after)["chat"].comparison.delta_cost_usd == pytest.approx(
        10 * rows(before)["chat"].comparison.delta_cost_usd
    )
    assert rows(after)["extraction"].comparison.draft.escalation_rate == pytest.approx(0.22)


def test_for_report__no_draft__none(checkout: Any) -> None:
    assert whatif_for_report(checkout, date(2025, 3, 1), date(2025, 3, 31)) is None


def test_for_report__draft__month_estimate_and_summary(checkout: Any) -> None:
    services.draft_save(policy=checkout, document=cheaper_chat(), user=None)

    report = whatif_for_report(checkout, date(2025, 3, 1), date(2025, 3, 31))

    assert report is not None
    assert report["period"] == {"start": "2025-03-01", "end": "2025-03-31", "days": 31}
    assert report["total"]["savings_usd"] == pytest.approx(ACTUAL_CHAT - 50 * FLASH)
    assert report["summary"].startswith(f"The draft would have cost ${ACTUAL_EXTRACTION + 50 * FLASH:,.2f}")
    assert "saved $0.05" in report["summary"]


# ---------------------------------------------------------------------------------- the endpoint


def test_api__viewer_with_document__the_estimate(api: Any, viewer: Any, checkout: Any) -> None:
    response = api(viewer).post(URL, {"policy": "checkout", "document": cheaper_chat(), **PERIOD}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["period"] == {"start": "2025-03-01", "end": "2025-03-07", "days": 7}
    assert body["requests"] == 150
    chat = next(t for t in body["task_types"] if t["task_type"] == "chat")
    assert chat["delta_cost_usd"] == pytest.approx(50 * FLASH - ACTUAL_CHAT)
    assert chat["paths"][0]["route"] == "cheap"
    assert body["total"]["actual"]["cost_usd"] == pytest.approx(ACTUAL_EXTRACTION + ACTUAL_CHAT)


def test_api__no_document__replays_the_saved_draft(api: Any, viewer: Any, checkout: Any) -> None:
    services.draft_save(policy=checkout, document=cheaper_chat(), user=None)

    body = api(viewer).post(URL, {"policy": "checkout", **PERIOD}, format="json").json()

    assert body["total"]["savings_usd"] == pytest.approx(ACTUAL_CHAT - 50 * FLASH)


def test_api__no_document_and_no_draft__400_naming_document(api: Any, viewer: Any, checkout: Any) -> None:
    response = api(viewer).post(URL, {"policy": "checkout", **PERIOD}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"document": ["required: the policy has no draft"]}


def test_api__invalid_document__400_with_the_engines_field_paths(api: Any, viewer: Any, checkout: Any) -> None:
    doc = factories.document()
    doc["routes"]["extraction"]["escalate"]["min_confidence"] = 1.4
    doc["default_route"] = "nowhere"

    response = api(viewer).post(URL, {"policy": "checkout", "document": doc, **PERIOD}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "document.routes.extraction.escalate.min_confidence": ["1.4 is greater than the maximum of 1"]
    }


def test_api__period_of_93_days__accepted(api: Any, viewer: Any, checkout: Any) -> None:
    response = api(viewer).post(
        URL,
        {"policy": "checkout", "document": factories.document(), "start": "2025-01-01", "end": "2025-04-03"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["period"]["days"] == 93


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"start": "2025-01-01", "end": "2025-04-04"}, "end", "the period is 94 days; at most 93 are allowed"),
        ({"start": "2025-03-07", "end": "2025-03-01"}, "end", "must not be before start (2025-03-07)"),
        ({"start": "2025-02-30", "end": "2025-03-01"}, "start", "Date has wrong format"),
        ({"start": "1999-12-31", "end": "2000-01-01"}, "start", "must be between 2000-01-01 and 2999-12-31"),
        ({"end": "2025-03-01"}, "start", "This field is required."),
        ({**PERIOD, "days": 7}, "days", "unknown field"),
        ({**PERIOD, "policy": "x" * 64}, "policy", "Ensure this field has no more than 63 characters."),
    ],
)
def test_api__bad_period_or_field__400_naming_it(
    api: Any, viewer: Any, checkout: Any, body: dict[str, Any], field: str, reason: str
) -> None:
    response = api(viewer).post(URL, {"policy": "checkout", "document": factories.document(), **body}, format="json")

    assert response.status_code == 400, response.json()
    assert any(reason in message for message in response.json()["errors"][field]), response.json()


@pytest.mark.parametrize("size", [1_100_000, 7_000_000])
def test_api__document_too_large__413_naming_document(api: Any, viewer: Any, checkout: Any, size: int) -> None:
    doc = factories.document()
    doc["routes"]["general"]["description"] = "x" * size

    response = api(viewer).post(URL, {"policy": "checkout", "document": doc, **PERIOD}, format="json")

    assert response.status_code == 413
    assert list(response.json()["errors"]) == ["document"]


def test_api__unknown_policy__404(api: Any, viewer: Any, checkout: Any) -> None:
    response = api(viewer).post(URL, {"policy": "nope", "document": factories.document(), **PERIOD}, format="json")

    assert response.status_code == 404
    assert response.json()["errors"] == {"policy": ["not found"]}


@pytest.mark.parametrize(("role", "status"), [(None, 403), ("viewer", 200), ("editor", 200), ("publisher", 200)])
def test_api__roles__viewer_and_up_may_run_it(
    api: Any, make_user: Any, checkout: Any, role: str | None, status: int
) -> None:
    response = api(make_user(role)).post(
        URL, {"policy": "checkout", "document": factories.document(), **PERIOD}, format="json"
    )

    assert response.status_code == status


def test_api__anonymous__401(api: Any, checkout: Any) -> None:
    assert api().post(URL, {"policy": "checkout", **PERIOD}, format="json").status_code == 401


def test_api__admin_session__needs_the_csrf_token(checkout: Any, viewer: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    page = client.get(f"/admin/routing/policy/{checkout.pk}/change/")
    token = page.context["csrf_token"]
    body = {"policy": "checkout", "document": factories.document(), **PERIOD}

    refused = client.post(URL, body, content_type="application/json")
    accepted = client.post(URL, body, content_type="application/json", HTTP_X_CSRFTOKEN=str(token))

    assert refused.status_code == 403
    assert accepted.status_code == 200, accepted.json()


def test_api__openapi__documents_the_operation(api: Any, viewer: Any) -> None:
    schema = api(viewer).get("/api/schema/?format=json").json()

    operation = schema["paths"][URL]["post"]
    assert operation["operationId"] == "metrics_whatif"
    output = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"total", "task_types", "assumptions", "unpriced_models"} <= set(
        schema["components"]["schemas"][output]["properties"]
    )


# ---------------------------------------------------------------------------------- the admin panel


def test_policy_page__shows_the_panel_next_to_the_draft(client: Any, viewer: Any, checkout: Any) -> None:
    client.force_login(viewer)
    html = client.get(f"/admin/routing/policy/{checkout.pk}/change/").content.decode()

    assert 'id="whatif"' in html
    assert f'data-url="{URL}"' in html
    assert 'data-policy="checkout"' in html
    assert html.index('id="draft"') < html.index('id="whatif"') < html.index('id="thresholds"')
    assert "signalbox/whatif.js" in html


@pytest.fixture
def today_traffic(transactional_db: Any, make_user: Any) -> Any:
    """Policy 'checkout' with the traffic above logged today, and the viewer 'vic'."""
    policy = factories.policy("checkout")
    today = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    RollupHourly.objects.bulk_create(traffic(policy, today.replace(hour=0)))
    make_user("viewer", username="vic")
    return policy


@pytest.mark.browser
def test_policy_page__browser__panel_estimates_the_editor_document(today_traffic: Any, browser: Any) -> None:
    policy = today_traffic
    page = browser.page
    browser.log_in("vic", then=f"/admin/routing/policy/{policy.pk}/change/")
    page.wait_for_selector("#sb-jsoneditor .jsoneditor .ace_content", state="visible")

    # The unsaved editor text is what gets estimated: move chat to gemini in the editor only.
    draft = copy.deepcopy(cheaper_chat())
    page.evaluate("(doc) => window.sbPolicyEditor.set(doc)", draft)
    page.select_option("#whatif-days", "7")
    page.click("#whatif-run")
    page.wait_for_selector("#whatif-table")
    chat = page.locator("#whatif-table tr[data-task-type=chat]").inner_text()
    assert "cheap: t1 gemini-1.5-flash" in chat
    saving = (ACTUAL_CHAT - 50 * FLASH) / ACTUAL_CHAT
    assert re.search(rf"−\$0\.05\d+ \(−{saving * 100:.1f}%\)", chat), chat
    assert "20.0% → 0.0%" in chat
    assert "Assumptions" in page.locator("#whatif-result").inner_text()
    browser.screenshot("whatif-panel", page.locator("#whatif"))

    # Bad input comes back as the engine's field path, next to the panel.
    draft["routes"]["extraction"]["escalate"]["min_confidence"] = 1.4
    page.evaluate("(doc) => window.sbPolicyEditor.set(doc)", draft)
    page.click("#whatif-run")
    page.wait_for_selector("#whatif-result .sb-errors")
    assert "document.routes.extraction.escalate.min_confidence: 1.4 is greater than the maximum of 1" in (
        page.locator("#whatif-result .sb-errors").inner_text()
    )
    assert [e for e in browser.errors if "400 (Bad Request)" not in e] == []
