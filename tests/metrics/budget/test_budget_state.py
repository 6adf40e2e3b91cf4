"""Budget state: each live policy's spend fraction of its budgets, from the rollups, for the clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings

from metrics.budget import state as budget_state
from metrics.ingest import services as ingest
from metrics.rollups import services as rollups
from metrics.tasks import budget_state_refresh as budget_state_refresh_task
from routing import live
from tests import factories
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db


def _mid_month() -> datetime:
    """Noon on the latest 15th at least a day ago: inside retention, with days of the month before it."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    fifteenth = today.replace(day=15)
    if fifteenth > today - timedelta(days=1):
        fifteenth = (fifteenth.replace(day=1) - timedelta(days=1)).replace(day=15)
    return fifteenth


NOW = _mid_month()


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _spend(scope: tuple[int, frozenset[int]], *records: dict[str, Any]) -> None:
    key_id, policy_ids = scope
    result = ingest.decision_batch_ingest(key_id=key_id, policy_ids=policy_ids, records=list(records))
    assert result.accepted == len(records)
    rollups.rollups_update()


def _document(**budgets: Any) -> dict[str, Any]:
    doc = factories.document()
    if "policy" in budgets:
        doc["budget"] = budgets["policy"]
    if "extraction" in budgets:
        doc["routes"]["extraction"]["budget"] = budgets["extraction"]
    return doc


def test_budget_state__policy_and_route__daily_is_the_utc_day_monthly_the_month(scoped, scope):
    policy, _ = scoped
    factories.publish(policy, _document(policy={"daily_usd": 100, "monthly_usd": 2000}))
    _spend(
        scope,
        record(timestamp=_at(NOW - timedelta(hours=1)), cost_usd=10.0),
        record(timestamp=_at(NOW - timedelta(days=3)), cost_usd=20.0),
        record(timestamp=_at(NOW - timedelta(days=20)), cost_usd=1000.0),  # last month
        record(timestamp=_at(NOW - timedelta(hours=2)), route="general", cost_usd=5.0),
    )

    assert budget_state.budget_state_refresh(now=NOW) == 1

    state = live.budget_state_read("checkout")
    assert state == {
        "as_of": _at(NOW),
        "policy": {"daily": 15 / 100, "monthly": 35 / 2000},  # every route counts for the policy
        "routes": {"extraction": {"daily": 10 / 50, "monthly": 30 / 1200}},  # only routes with a budget
    }


def test_budget_state__one_amount_set__the_other_fraction_is_null(scoped, scope):
    policy, _ = scoped
    factories.publish(policy, _document(extraction={"monthly_usd": 400, "downgrade_at": 0.9}))
    _spend(scope, record(timestamp=_at(NOW - timedelta(hours=1)), cost_usd=100.0))

    budget_state.budget_state_refresh(now=NOW)

    assert live.budget_state_read("checkout")["routes"] == {"extraction": {"daily": None, "monthly": 0.25}}
    assert live.budget_state_read("checkout")["policy"] is None


def test_budget_state__budget_but_no_spend__fractions_are_zero(scoped):
    budget_state.budget_state_refresh(now=NOW)

    assert live.budget_state_read("checkout")["routes"] == {"extraction": {"daily": 0.0, "monthly": 0.0}}


def test_budget_state__no_budget_anywhere__no_entry_and_an_old_one_removed(scoped, scope):
    policy, _ = scoped
    budget_state.budget_state_refresh(now=NOW)
    assert live.budget_state_read("checkout") is not None
    doc = factories.document()
    del doc["routes"]["extraction"]["budget"]
    factories.publish(policy, doc)

    assert budget_state.budget_state_refresh(now=NOW) == 0

    assert live.budget_state_read("checkout") is None


def test_budget_state__nothing_published__no_entry(db):
    factories.policy("draft-only", publish=False)

    assert budget_state.budget_state_refresh(now=NOW) == 0
    assert live.budget_state_read("draft-only") is None


def test_budget_state__refresh__one_aggregate_query_per_policy(scoped, django_assert_num_queries):
    for slug in ("billing", "search"):
        factories.policy(slug)

    with django_assert_num_queries(1 + 3):  # the live documents, then one sum per policy
        assert budget_state.budget_state_refresh(now=NOW) == 3


def test_budget_state__after_rollups_task__touched_policy_refreshed_others_left(
    scoped, post, django_capture_on_commit_callbacks
):
    _, secret = scoped
    billing = factories.policy("billing")
    live.budget_state_write(slug="billing", state={"policy": None, "routes": {}}, as_of=NOW)
    billing_before = live.budget_state_read("billing")
    now = datetime.now(UTC)

    with django_capture_on_commit_callbacks(execute=True):  # the ingest queues rollups_update (eager)
        response = post([record(timestamp=_at(now), cost_usd=40.0)], secret)

    assert response.status_code == 200
    state = live.budget_state_read("checkout")
    assert state["routes"]["extraction"]["daily"] == pytest.approx(40 / 50)
    assert live.budget_state_read("billing") == billing_before, f"{billing.slug} had no new spend"


def test_budget_state__rollups_task_with_nothing_folded__writes_nothing(scoped):
    from metrics.tasks import rollups_update

    rollups_update.delay()

    assert live.budget_state_read("checkout") is None


def test_budget_state__beat_task__every_live_policy_refreshed_on_schedule(scoped):
    factories.policy("billing")

    assert budget_state_refresh_task.delay().get() == 2

    assert live.budget_state_read("checkout") is not None
    assert live.budget_state_read("billing") is not None
    schedule = settings.CELERY_BEAT_SCHEDULE["metrics-budget-state-refresh"]
    assert schedule == {"task": "metrics.budget_state_refresh", "schedule": settings.BUDGET_STATE_SECONDS}


def test_budget_state__periods__day_and_month_bounds_in_utc():
    periods = budget_state.Periods.at(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))

    assert periods.day_start == datetime(2026, 12, 31, tzinfo=UTC)
    assert periods.day_end == datetime(2027, 1, 1, tzinfo=UTC)
    assert periods.month_start == datetime(2026, 12, 1, tzinfo=UTC)
    assert periods.month_end == datetime(2027, 1, 1, tzinfo=UTC)
