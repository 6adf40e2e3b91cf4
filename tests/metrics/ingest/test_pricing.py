"""Cost of a record: the client's, or tokens × the catalog price in force at the record's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from metrics.models import Decision, RollupHourly
from metrics.rollups import services as rollups
from routing.models import CatalogModel, ModelPrice
from tests.metrics.conftest import DROP, record

pytestmark = pytest.mark.django_db


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def test_cost__two_price_periods__each_record_priced_at_the_period_of_its_time(scoped: Any, post: Any) -> None:
    """Given gpt-4o-mini at $0.15/$0.60 until 10 days ago and $1/$2 since, records before and after
    the change are priced at their own period, not today's price."""
    _, secret = scoped
    now = datetime.now(UTC)
    change = now - timedelta(days=10)
    ModelPrice.objects.create(
        model=CatalogModel.objects.get(model_id="gpt-4o-mini"),
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("2"),
        effective_from=change,
    )
    before = record(timestamp=_iso(change - timedelta(minutes=1)), tokens_in=1000, tokens_out=500)
    at_change = record(timestamp=_iso(change), tokens_in=1000, tokens_out=500)
    after = record(timestamp=_iso(now - timedelta(hours=1)), tokens_in=1000, tokens_out=500)

    post([before, at_change, after], secret)

    cost = dict(Decision.objects.values_list("event_id", "cost_usd"))
    assert float(cost[_uuid(before)]) == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)
    assert float(cost[_uuid(at_change)]) == pytest.approx((1000 * 1 + 500 * 2) / 1e6)
    assert float(cost[_uuid(after)]) == pytest.approx((1000 * 1 + 500 * 2) / 1e6)


def _uuid(rec: dict[str, Any]) -> Any:
    import uuid

    return uuid.UUID(rec["event_id"])


def test_cost__sent_by_the_client__kept_as_sent(scoped: Any, post: Any) -> None:
    _, secret = scoped
    sent = record(cost_usd=0.0123)
    post([sent], secret)
    assert Decision.objects.get().cost_usd == Decimal("0.0123")


def test_cost__null_or_absent__computed(scoped: Any, post: Any) -> None:
    _, secret = scoped
    post([record(cost_usd=None), record(cost_usd=DROP)], secret)
    assert list(Decision.objects.values_list("cost_usd", flat=True)) == [Decimal("0.00027")] * 2


def test_cost__model_not_in_catalog__accepted_unpriced_and_counted_in_rollups(scoped: Any, post: Any) -> None:
    _, secret = scoped
    response = post([record(model="acme-llm-9000", provider="acme"), record()], secret)
    rollups.rollups_update()

    assert response.json()["accepted"] == 2
    stored = Decision.objects.get(model="acme-llm-9000")
    assert stored.unpriced is True
    assert stored.cost_usd is None
    cell = RollupHourly.objects.get(model="acme-llm-9000")
    assert cell.unpriced == 1
    assert cell.count == 1
    assert cell.cost_usd == 0
    assert RollupHourly.objects.get(model="gpt-4o-mini").unpriced == 0


def test_cost__record_before_the_first_price_period__priced_at_the_first_period(scoped: Any, post: Any) -> None:
    """A catalog import dates a price from the import; older traffic takes the first known price."""
    _, secret = scoped
    model = CatalogModel.objects.create(model_id="late-model", provider="acme")
    ModelPrice.objects.create(
        model=model, input_per_mtok=1, output_per_mtok=1, effective_from=datetime.now(UTC) - timedelta(days=1)
    )
    post(
        [
            record(
                model="late-model",
                timestamp=_iso(datetime.now(UTC) - timedelta(days=3)),
                tokens_in=1_000_000,
                tokens_out=0,
            )
        ],
        secret,
    )
    stored = Decision.objects.get()
    assert stored.unpriced is False
    assert stored.cost_usd == Decimal(1)


def test_cost__price_added_after_the_cache_loaded__used_for_the_next_batch(scoped: Any, post: Any) -> None:
    """A model the cached price book lacks makes it reload (rate-limited), not wait a minute."""
    _, secret = scoped
    post([record()], secret)  # loads the price book
    model = CatalogModel.objects.create(model_id="new-model", provider="acme")
    ModelPrice.objects.create(
        model=model, input_per_mtok=2, output_per_mtok=4, effective_from=datetime.now(UTC) - timedelta(days=1)
    )

    post([record(model="new-model", tokens_in=1_000_000, tokens_out=0)], secret)

    assert Decision.objects.get(model="new-model").cost_usd == Decimal(2)


def test_cost__unpriced_model_in_every_batch__price_book_not_reloaded_per_batch(scoped: Any, post: Any) -> None:
    """A model with no price reloads the price book at most once per few seconds, not per batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _, secret = scoped
    post([record(model="acme-unpriced")], secret)  # loads the book
    post([record(model="acme-unpriced")], secret)  # the one reload for a model it lacks

    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            assert post([record(model="acme-unpriced")], secret).json()["accepted"] == 1

    assert not [q for q in queries.captured_queries if "modelprice" in q["sql"].lower()]
    assert Decision.objects.filter(unpriced=True).count() == 5
