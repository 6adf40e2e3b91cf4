"""The SDK reads the server's budget state from the Signalbox-Budget header of every policy answer.

Route `extraction` of the fake policy starts on tier 2 and has a budget with downgrade_at 0.8, so
a route fraction of 0.85 moves its decisions to tier 1 and 0.1 leaves them on tier 2.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest

from .fakes import DOCUMENT, FakeServer, body
from .test_async import make as make_async

BUDGET_STATE_MAX_AGE = 600.0  # documented in docs/client.md
OVER = json.dumps(
    {"as_of": "2026-11-22T09:00:00Z", "policy": None, "routes": {"extraction": {"daily": 0.85, "monthly": 0.3}}}
)
UNDER = json.dumps(
    {"as_of": "2026-11-22T09:01:00Z", "policy": None, "routes": {"extraction": {"daily": 0.1, "monthly": 0.1}}}
)


class BudgetServer(FakeServer):
    """The fake control plane, adding `budget` (when set) as the header of every policy answer."""

    def __init__(self) -> None:
        super().__init__()
        self.budget: str | None = None

    def _get(self, request: httpx.Request) -> httpx.Response:
        response = super()._get(request)
        if self.budget is not None and response.status_code in (200, 304):
            response.headers["Signalbox-Budget"] = self.budget
        return response


@pytest.fixture
def server() -> BudgetServer:
    return BudgetServer()


def downgraded(client: Any) -> bool:
    decision = client.decide("extraction")
    return decision.tier == 1 and decision.reason.get("budget", {}).get("scope") == "route"


def test_budget_header__on_the_first_200__decisions_downgraded_with_the_reason(server, make_client):
    server.budget = OVER
    client = make_client()

    assert client.refresh() == "installed"

    decision = client.decide("extraction")
    assert decision.tier == 1
    assert decision.reason["budget"] == {
        "scope": "route",
        "fraction": 0.85,
        "downgrade_at": 0.8,
        "from_tier": 2,
        "to_tier": 1,
    }
    assert client.decide("extraction", critical=True).tier == 2


def test_budget_header__on_a_304__applied_without_a_new_document(server, make_client):
    client = make_client()
    assert client.refresh() == "installed"
    assert not downgraded(client)

    server.budget = OVER
    assert client.refresh() == "not_modified"
    assert downgraded(client)

    server.budget = UNDER
    assert client.refresh() == "not_modified"
    assert not downgraded(client)
    assert client.policy_version == 1


def test_budget_header__absent__last_state_kept_until_max_age_then_dropped(server, make_client, clock):
    server.budget = OVER
    client = make_client()
    client.refresh()
    server.budget = None

    clock.now += BUDGET_STATE_MAX_AGE - 1
    assert client.refresh() == "not_modified"
    assert downgraded(client), "younger than the max age: kept"

    clock.now += 2
    assert client.refresh() == "not_modified"
    assert not downgraded(client), "older than the max age: a client never downgrades on old data"


def test_budget_header__sent_again__its_age_starts_over(server, make_client, clock):
    server.budget = OVER
    client = make_client()
    client.refresh()

    clock.now += BUDGET_STATE_MAX_AGE - 10
    client.refresh()  # the same state, confirmed
    server.budget = None
    clock.now += BUDGET_STATE_MAX_AGE - 10
    client.refresh()

    assert downgraded(client)


def test_budget_header__server_unreachable__state_dropped_after_max_age(server, make_client, clock):
    server.budget = OVER
    client = make_client()
    client.refresh()
    server.policy_faults = ["connect", 503, "timeout"]

    assert client.refresh() == "failed"
    assert downgraded(client)
    clock.now += BUDGET_STATE_MAX_AGE + 1
    assert client.refresh() == "failed"
    assert client.refresh() == "failed"

    assert not downgraded(client)
    assert client.decide("support").model == "gpt-4o-mini", "the document itself is kept"


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[0.9]",
        '"0.9"',
        '{"routes": {"extraction": {"daily": "0.9"}}}',
        '{"routes": {"extraction": {"daily": true}}}',
        '{"routes": []}',
        '{"policy": 5}',
        "{" * 100_000,
        json.dumps({"routes": {f"r{i}": {"daily": 0.5} for i in range(10_000)}}),  # over the size limit
    ],
)
def test_budget_header__malformed__never_raises_and_the_last_state_is_kept(server, make_client, value, caplog):
    server.budget = OVER
    client = make_client()
    client.refresh()
    server.budget = value

    with caplog.at_level(logging.WARNING, logger="signalbox.client"):
        assert client.refresh() == "not_modified"
        assert client.refresh() == "not_modified"

    assert downgraded(client)
    assert client.run("extraction", lambda attempt: "fine").response == "fine"
    assert len([r for r in caplog.records if "budget" in r.getMessage()]) == 1, "warned once"


def test_budget_header__unknown_fields__ignored_known_ones_used(server, make_client):
    server.budget = json.dumps(
        {
            "as_of": "2026-11-22T09:00:00Z",
            "currency": "USD",
            "policy": None,
            "routes": {"extraction": {"daily": 0.9, "hourly": 0.2}},
        }
    )
    client = make_client()

    client.refresh()

    assert downgraded(client)


def test_set_budget__takes_precedence_over_the_header_until_set_to_none(server, make_client):
    server.budget = OVER
    client = make_client()
    client.refresh()

    client.set_budget({"routes": {"extraction": {"daily": 0.1}}})
    client.refresh()
    assert not downgraded(client), "the app's own state wins over the server's"

    client.set_budget({})  # explicit: no spend known, whatever the server says
    client.refresh()
    assert not downgraded(client)

    client.set_budget(None)  # back to the server's feed, at once
    assert downgraded(client)


def test_set_budget__malformed__ignored_and_previous_state_kept(server, make_client):
    server.budget = OVER
    client = make_client()
    client.refresh()

    client.set_budget({"routes": {"extraction": {"daily": "lots"}}})

    assert downgraded(client)


def test_set_budget__before_any_document__applied_once_one_is_installed(server, make_client):
    client = make_client()

    client.set_budget({"routes": {"extraction": {"daily": 0.95}}})
    client.refresh()

    assert downgraded(client)


def test_budget_header__async_client__applied_on_200_and_304_like_the_sync_client():
    server = BudgetServer()
    server.budget = UNDER

    async def scenario() -> list[bool]:
        client = make_async(server)
        seen = [await client.refresh() == "installed"]
        seen.append(downgraded(client))
        server.budget = OVER
        seen.append(await client.refresh() == "not_modified")
        seen.append(downgraded(client))
        await client.close()
        return seen

    assert asyncio.run(scenario()) == [True, False, True, True]


# --- dimension budgets: the header's "dimensions" -------------------------------------------------

DIMENSION_DOCUMENT = {
    **DOCUMENT,
    "dimensions": ["team"],
    "dimension_budgets": [{"dimension": "team", "value": "search", "daily_usd": 10}],
}
SEARCH_OVER = json.dumps(
    {"as_of": "2026-11-22T09:00:00Z", "policy": None, "routes": {}, "dimensions": {"team": {"search": {"daily": 0.9}}}}
)


@pytest.fixture
def team_server(server: BudgetServer) -> BudgetServer:
    """The fake control plane serving a document with a budget for team search."""
    server.policy = body(document=DIMENSION_DOCUMENT)
    return server


def team_tier(client: Any, team: str) -> int:
    return client.decide("extraction", attributes={"team": team}).tier


def test_budget_header__dimension_value_over__only_that_value_downgraded(team_server, make_client):
    team_server.budget = SEARCH_OVER
    client = make_client()

    assert client.refresh() == "installed"

    assert (team_tier(client, "search"), team_tier(client, "ads")) == (1, 2)
    assert client.decide("extraction").tier == 2, "no attribute, no dimension budget"
    reason = client.decide("extraction", attributes={"team": "search"}).reason["budget"]
    assert (reason["scope"], reason["dimension"], reason["value"]) == ("dimension", "team", "search")


def test_run__attributes__the_decision_sees_them_and_the_record_carries_them(team_server, make_client):
    team_server.budget = SEARCH_OVER
    client = make_client()
    client.refresh()

    result = client.run("extraction", lambda attempt: "ok", attributes={"team": "search"})
    client.flush(1)

    assert result.attempts[0].tier == 1, "the team's budget applies to run() too"
    (record,) = [r for r in team_server.records.values() if r["request_id"] == result.request_id]
    assert record["attributes"] == {"team": "search"}
    assert record["reason"]["budget"]["value"] == "search"


@pytest.mark.parametrize(
    "dimensions",
    [[], {"team": []}, {"team": {"search": 0.9}}, {"team": {"search": {"daily": "0.9"}}}],
    ids=["list", "values-list", "fraction-not-object", "fraction-string"],
)
def test_budget_header__malformed_dimensions__ignored_with_the_last_state_kept(
    team_server, make_client, dimensions, caplog
):
    team_server.budget = SEARCH_OVER
    client = make_client()
    client.refresh()
    team_server.budget = json.dumps({"policy": None, "routes": {}, "dimensions": dimensions})

    with caplog.at_level(logging.WARNING, logger="signalbox.client"):
        assert client.refresh() == "not_modified"

    assert team_tier(client, "search") == 1
    assert any("budget" in r.getMessage() for r in caplog.records)


def test_budget_header__without_dimensions__old_shape_still_read(team_server, make_client):
    team_server.budget = OVER
    client = make_client()

    client.refresh()

    assert client.decide("extraction").tier == 1
    assert team_tier(client, "search") == 1, "the route's budget, as before"
