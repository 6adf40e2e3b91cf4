"""End to end against the real control plane: spend logged by a live client comes back to it as
budget state, and it downgrades the non-critical route within one refresh interval while the
critical route keeps its tier.

Path: RoutingClient.run() -> POST /api/v1/client/decisions -> rollups_update (eager Celery, after
commit) -> budget state in the shared cache -> Signalbox-Budget on the next policy poll -> decide().
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signalbox_client import CallResult, RoutingClient
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = 0.2

DOCUMENT: dict[str, Any] = {
    "schema_version": 1,
    "default_route": "chat",
    "task_types": {"chat": "chat", "payments": "payments"},
    "routes": {
        "chat": {
            "tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}],
            "start_tier": 2,
            "budget": {"daily_usd": 10, "downgrade_at": 0.8},
        },
        "payments": {
            "critical": True,
            "tiers": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}],
            "start_tier": 2,
            "budget": {"daily_usd": 10, "downgrade_at": 0.8},
        },
    },
}


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


@pytest.fixture
def _fresh_metrics(transactional_db: Any) -> Iterator[None]:
    from django.db import connection

    yield  # the process caches are emptied around every test (tests/conftest.py)
    with connection.cursor() as cursor:  # the raw table is unmanaged: the flush skips it
        cursor.execute("TRUNCATE metrics_decision")


@pytest.fixture
def client(live_server: Any, tmp_path: Any, settings: Any, _fresh_metrics: None) -> Iterator[RoutingClient]:
    settings.ROLLUPS_DEBOUNCE_SECONDS = 0  # each upload's rollup update runs (as beat would soon after)
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


def spend(client: RoutingClient, task_type: str, usd: float) -> Any:
    return client.run(task_type, lambda attempt: CallResult("answer", cost_usd=usd))


def polls(client: RoutingClient) -> int:
    stats = client.stats()
    return stats.refresh_ok + stats.refresh_not_modified


def test_budget_loop__route_spend_past_80_percent__live_client_downgrades_within_one_interval(client):
    assert client.decide("chat").tier == 2
    assert "budget" not in client.decide("chat").reason

    for task_type in ("chat", "payments"):  # 2 x 4.50 = 9 USD of each route's 10 USD daily budget
        spend(client, task_type, 4.5)
        spend(client, task_type, 4.5)
    assert client.flush(5)
    uploaded, polls_before = time.monotonic(), polls(client)

    assert eventually(lambda: client.decide("chat").tier == 1)
    took, polls_taken = time.monotonic() - uploaded, polls(client) - polls_before

    # The poll in flight during the upload may predate the new state; the next one carries it.
    assert polls_taken <= 2, f"downgraded only after {polls_taken} polls"
    assert took < INTERVAL * 3
    chat = client.decide("chat")
    assert (chat.tier, chat.model) == (1, "gpt-4o-mini")
    assert chat.reason["budget"] == {
        "scope": "route",
        "fraction": pytest.approx(0.9),
        "downgrade_at": 0.8,
        "from_tier": 2,
        "to_tier": 1,
    }
    payments = client.decide("payments")
    assert (payments.tier, payments.model) == (2, "gpt-4o"), "a critical route is exempt"
    assert payments.reason["budget"]["exempt"] == "critical_route"
    assert client.policy_version == 1, "spend moved, the document did not"


def test_budget_loop__downgraded_decisions__logged_with_the_budget_reason(client):
    from metrics.models import Decision

    spend(client, "chat", 9.0)
    assert client.flush(5)
    assert eventually(lambda: client.decide("chat").tier == 1)

    result = spend(client, "chat", 0.01)
    assert client.flush(5)

    row = Decision.objects.get(request_id=result.request_id)
    assert (row.tier, row.model) == (1, "gpt-4o-mini")
    assert row.reason["budget"]["scope"] == "route"
    assert row.reason["budget"]["to_tier"] == 1
