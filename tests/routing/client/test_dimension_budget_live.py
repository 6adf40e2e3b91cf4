"""End to end against the real control plane: one team's spend, logged by a live client, comes
back as that team's budget fraction, and the client downgrades that team's requests only; other
teams, and requests without the attribute, keep their models.

Path: RoutingClient.run(attributes) -> POST /api/v1/client/decisions -> rollups_update and the
dimension fold (eager Celery, after commit) -> budget state in the shared cache -> Signalbox-Budget
on the next policy poll -> decide() reading the request's attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from signalbox_client import CallResult, RoutingClient
from tests import factories
from tests.routing.client.test_budget_live import INTERVAL, _fresh_metrics, eventually

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["_fresh_metrics"]  # the fixture, used by name below

DOCUMENT: dict[str, Any] = {
    "schema_version": 1,
    "default_route": "chat",
    "task_types": {"chat": "chat", "payments": "payments"},
    "routes": {
        "chat": {"tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}], "start_tier": 2},
        "payments": {"critical": True, "tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}], "start_tier": 2},
    },
    "dimensions": ["team"],
    "dimension_budgets": [
        {"dimension": "team", "value": "search", "daily_usd": 10, "downgrade_at": 0.8},
        {"dimension": "team", "value": "ads", "daily_usd": 10, "downgrade_at": 0.8},
    ],
}


@pytest.fixture
def client(live_server: Any, tmp_path: Any, settings: Any, _fresh_metrics: None) -> Iterator[RoutingClient]:
    settings.ROLLUPS_DEBOUNCE_SECONDS = 0
    policy = factories.policy("checkout", doc=DOCUMENT)
    secret = factories.sdk_key(policy)[1]
    client = RoutingClient(
        live_server.url,
        secret,
        "checkout",
        refresh_interval=INTERVAL,
        jitter=0,
        flush_interval=60,
        cache_dir=tmp_path / "cache",
    )
    assert client.wait_until_ready(5)
    yield client
    client.close(timeout=1)


def spend(client: RoutingClient, team: str, usd: float, task_type: str = "chat") -> Any:
    return client.run(task_type, lambda attempt: CallResult("answer", cost_usd=usd), attributes={"team": team})


def tier(client: RoutingClient, team: str | None, task_type: str = "chat") -> int:
    attributes = {"team": team} if team is not None else {}
    return client.decide(task_type, attributes=attributes).tier


def test_dimension_budget_loop__one_team_past_80_percent__only_that_team_downgrades(client):
    assert (tier(client, "search"), tier(client, "ads")) == (2, 2)

    spend(client, "search", 4.5)  # 9 USD of search's 10 USD daily budget
    spend(client, "search", 4.5)
    spend(client, "ads", 1.0)  # 10% of ads's
    spend(client, "billing", 50.0)  # a team without a budget: counted, never downgraded
    assert client.flush(5)

    assert eventually(lambda: tier(client, "search") == 1)
    search = client.decide("chat", attributes={"team": "search"})
    assert (search.tier, search.model) == (1, "gpt-4o-mini")
    assert search.reason["budget"] == {
        "scope": "dimension",
        "dimension": "team",
        "value": "search",
        "fraction": pytest.approx(0.9),
        "downgrade_at": 0.8,
        "from_tier": 2,
        "to_tier": 1,
    }
    for other in ("ads", "billing", None):
        decision = client.decide("chat", attributes={"team": other} if other else {})
        assert (decision.tier, decision.model) == (2, "gpt-4o"), f"team {other} keeps its model"
        assert "budget" not in decision.reason
    payments = client.decide("payments", attributes={"team": "search"})
    assert payments.tier == 2, "a critical route is exempt"
    assert payments.reason["budget"]["exempt"] == "critical_route"


def test_dimension_budget_loop__downgraded_run__logged_under_the_team_with_the_reason(client):
    from metrics.models import Decision

    spend(client, "search", 9.0)
    assert client.flush(5)
    assert eventually(lambda: tier(client, "search") == 1)

    result = spend(client, "search", 0.01)
    assert client.flush(5)

    row = Decision.objects.get(request_id=result.request_id)
    assert (row.tier, row.model, row.attributes) == (1, "gpt-4o-mini", {"team": "search"})
    assert row.reason["budget"]["scope"] == "dimension"
    assert row.reason["budget"]["value"] == "search"
