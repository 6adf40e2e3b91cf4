"""Daily partitions of the raw table: created ahead, created on demand for late data, dropped
after retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from metrics.ingest import partitions
from metrics.ingest import services as ingest
from metrics.models import Decision
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db


def _days() -> list[date]:
    partitions.forget()
    return partitions.partitions_list()


def test_maintain__creates_today_and_the_days_ahead(settings: Any) -> None:
    settings.DECISION_PARTITIONS_AHEAD_DAYS = 3
    today = date(2031, 5, 30)

    report = ingest.partitions_maintain(today=today)

    expected = [today + timedelta(days=n) for n in range(4)]
    assert report.created == expected
    assert set(expected) <= set(_days())
    assert ingest.partitions_maintain(today=today).created == []  # idempotent


def test_maintain__drops_partitions_past_retention_and_keeps_the_rest(settings: Any) -> None:
    settings.DECISION_RETENTION_DAYS = 10
    today = date(2031, 5, 30)
    old, edge, kept = today - timedelta(days=11), today - timedelta(days=10), today - timedelta(days=9)
    partitions.partitions_ensure([old, edge, kept])

    report = ingest.partitions_maintain(today=today)

    assert old in report.dropped
    assert edge not in report.dropped
    remaining = _days()
    assert old not in remaining
    assert edge in remaining
    assert kept in remaining


def test_maintain__dropping_a_partition__drops_its_rows_only(scope: Any, settings: Any) -> None:
    now = datetime.now(UTC)
    ingest.decision_batch_ingest(
        key_id=scope[0],
        policy_ids=scope[1],
        records=[
            record(timestamp=(now - timedelta(days=40)).isoformat()),
            record(timestamp=(now - timedelta(hours=1)).isoformat()),
        ],
    )
    assert Decision.objects.count() == 2
    settings.DECISION_RETENTION_DAYS = 30

    ingest.partitions_maintain()

    assert Decision.objects.count() == 1


def test_ingest__late_record_for_a_day_without_partition__partition_created(scope: Any) -> None:
    late = datetime.now(UTC) - timedelta(days=20)
    assert late.date() not in _days()

    result = ingest.decision_batch_ingest(
        key_id=scope[0], policy_ids=scope[1], records=[record(timestamp=late.isoformat())]
    )

    assert result.accepted == 1
    assert late.date() in _days()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.partition_name(late.date())}")
        assert cursor.fetchone()[0] == 1


def test_partition_bounds__a_record_at_midnight__lands_in_that_day(scope: Any) -> None:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    ingest.decision_batch_ingest(key_id=scope[0], policy_ids=scope[1], records=[record(timestamp=midnight.isoformat())])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.partition_name(midnight.date())}")
        assert cursor.fetchone()[0] == 1
