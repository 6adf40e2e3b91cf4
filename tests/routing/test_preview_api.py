"""POST /api/v1/policies/<slug>/preview/: the server runs the same engine on a draft or version."""

from __future__ import annotations

import pytest

from routing import services
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/api/v1/policies/checkout/preview/"


@pytest.fixture
def checkout():
    p = factories.policy("checkout")
    draft = factories.document()
    draft["routes"]["extraction"]["tiers"][0]["model"] = "gemini-1.5-flash"
    services.draft_save(policy=p, document=draft, user=None)
    return p


def test_preview__draft_by_default__decides_with_the_draft(api, viewer, checkout):
    response = api(viewer).post(URL, {"request": {"task_type": "extraction"}}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == "draft"
    assert body["decision"]["route"] == "extraction"
    assert body["decision"]["model"] == "gemini-1.5-flash"
    assert body["decision"]["reason"]["route_by"] == "task_type"


def test_preview__live_version__decides_with_the_live_document(api, viewer, checkout):
    response = api(viewer).post(URL, {"version": "live", "request": {"task_type": "extraction"}}, format="json")

    assert response.json()["version"] == "v1"
    assert response.json()["decision"]["model"] == "gpt-4o-mini"


def test_preview__draft_saved_again__the_next_preview_decides_with_the_new_draft(api, editor, viewer, checkout):
    """Previews reuse the compiled version they ran on; a save of the draft (the same version row,
    a new revision) must reach the next preview."""
    client = api(viewer)
    first = client.post(URL, {"request": {"task_type": "extraction"}}, format="json").json()
    draft = api(editor).get("/api/v1/policies/checkout/draft/").json()
    document = draft["document"]
    document["routes"]["extraction"]["tiers"][0]["model"] = "small-8k"
    saved = api(editor).put(
        "/api/v1/policies/checkout/draft/",
        {"document": document, "expected_revision": draft["revision"]},
        format="json",
    )
    assert saved.status_code == 200, saved.json()

    second = client.post(URL, {"request": {"task_type": "extraction"}}, format="json").json()

    assert first["decision"]["model"] == "gemini-1.5-flash"
    assert second["decision"]["model"] == "small-8k"


def test_preview__rule_and_unknown_task_type__explained(api, viewer, checkout):
    long = api(viewer).post(URL, {"request": {"task_type": "chat", "context_tokens": 500_000}}, format="json")
    unknown = api(viewer).post(URL, {"request": {"task_type": "haiku-writing"}}, format="json")

    assert long.json()["decision"]["route"] == "long_context"
    assert long.json()["decision"]["reason"]["rule"] == "long-context"
    assert unknown.json()["decision"]["route"] == "general"
    assert unknown.json()["decision"]["reason"]["route_by"] == "default"


def test_preview__budget_state__downgrades_and_says_why(api, viewer, checkout):
    body = {
        "version": "live",
        "request": {"task_type": "extraction", "score": 0.9},
        "state": {"routes": {"extraction": {"daily": 0.95}}},
    }

    response = api(viewer).post(URL, body, format="json")

    assert response.status_code == 200, response.json()
    reason = response.json()["decision"]["reason"]
    assert reason["budget"]["scope"] == "route"


def test_preview__dimension_budget_state__downgrades_that_team_only(api, editor, viewer, checkout):
    draft = factories.document(
        dimensions=["team"], dimension_budgets=[{"dimension": "team", "value": "search", "monthly_usd": 500}]
    )
    draft["routes"]["general"]["start_tier"] = 2
    services.draft_save(policy=checkout, document=draft, user=None, rebase=True)
    state = {"dimensions": {"team": {"search": {"monthly": 0.85}}}}

    def preview(team):
        request = {"task_type": "chat", "attributes": {"team": team}}
        response = api(viewer).post(URL, {"request": request, "state": state}, format="json")
        assert response.status_code == 200, response.json()
        return response.json()["decision"]

    search, ads = preview("search"), preview("ads")

    assert (search["tier"], search["reason"]["budget"]["value"]) == (1, "search")
    assert (ads["tier"], "budget" in ads["reason"]) == (2, False)


def test_preview__outcomes__walk_the_cascade(api, viewer, checkout):
    body = {
        "version": "live",
        "request": {"task_type": "extraction"},
        "outcomes": [{"outcome": "rate_limited"}, {"outcome": "low_confidence", "confidence": 0.3}],
    }

    steps = api(viewer).post(URL, body, format="json").json()["steps"]

    assert [(s["kind"], s["model"]) for s in steps] == [
        ("first", "gpt-4o-mini"),
        ("fallback", "claude-3-5-haiku-20241022"),
        ("escalate", "gpt-4o"),
    ]
    assert steps[0]["outcome"] == "rate_limited"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"request": {}}, "request.task_type"),
        ({"request": {"task_type": "x", "prompt_tokens": -1}}, "request.prompt_tokens"),
        ({"request": {"task_type": "x", "bogus": 1}}, "request.bogus"),
        ({"request": {"task_type": "x"}, "state": {"routes": {"a": {"daily": "lots"}}}}, "state.routes.a.daily"),
        (
            {"request": {"task_type": "x"}, "state": {"dimensions": {"team": {"search": {"daily": -1}}}}},
            "state.dimensions.team.search.daily",
        ),
        ({"request": {"task_type": "x"}, "outcomes": [{"outcome": "exploded"}]}, "outcomes.0.outcome"),
        ({"request": {"task_type": "x"}, "version": "v9"}, "version"),
    ],
)
def test_preview__bad_input__400_or_404_naming_the_field(api, viewer, checkout, body, path):
    response = api(viewer).post(URL, body, format="json")

    assert response.status_code in (400, 404)
    assert path in response.json()["errors"], response.json()


def test_preview__anonymous__401(api, checkout):
    assert api().post(URL, {"request": {"task_type": "x"}}, format="json").status_code == 401
