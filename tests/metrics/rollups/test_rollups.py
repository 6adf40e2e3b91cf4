"""Hourly and daily rollups: incremental via the inbox, equal to raw SQL, rebuildable, late data included."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.ingest import services as ingest
from metrics.models import (
    BUCKET_FIELDS,
    LATENCY_BOUNDS_MS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    RollupDaily,
    RollupHourly,
)
from metrics.rollups import selectors as rollup_selectors
from metrics.rollups import services as rollups
from metrics.rules.latency import latency_quantile
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)


def _cells() -> dict[tuple, dict[str, Any]]:
    """Every rollup cell as {dimensions: {measure: value}}."""
    return {
        tuple(row[d] for d in ROLLUP_DIMENSIONS): {m: row[m] for m in ROLLUP_MEASURES}
        for row in RollupHourly.objects.values(*ROLLUP_DIMENSIONS, *ROLLUP_MEASURES)
    }


def _daily_cells() -> dict[tuple, dict[str, Any]]:
    """Every daily rollup cell as {(day_start, other dimensions): {measure: value}}."""
    return {
        (row["day_start"], *(row[d] for d in ROLLUP_DIMENSIONS[1:])): {m: row[m] for m in ROLLUP_MEASURES}
        for row in RollupDaily.objects.values("day_start", *ROLLUP_DIMENSIONS[1:], *ROLLUP_MEASURES)
    }


def _hourly_summed_per_day() -> dict[tuple, dict[str, Any]]:
    """The hourly cells added up per UTC day, in Python."""
    days: dict[tuple, dict[str, Any]] = {}
    for key, values in _cells().items():
        day = (key[0].replace(hour=0), *key[1:])
        if day not in days:
            days[day] = dict(values)
        else:
            days[day] = {m: days[day][m] + values[m] for m in ROLLUP_MEASURES}
    return days


def _assert_days_equal_hours_and_raw() -> None:
    daily = _daily_cells()
    assert daily == _hourly_summed_per_day()
    assert daily == _reference_cells("day")


def _reference_cells(unit: str = "hour") -> dict[tuple, dict[str, Any]]:
    """The same cells computed independently: a plain GROUP BY over the raw table, plus the latency
    histogram counted in Python."""
    assert unit in ("hour", "day")
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT date_trunc('{unit}', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', policy_id,
                   policy_version, route, task_type, model, provider, tier, outcome,
                   count(*), sum(CASE WHEN attempt = 1 THEN 1 ELSE 0 END),
                   sum(CASE WHEN escalated THEN 1 ELSE 0 END), coalesce(sum(cost_usd), 0),
                   sum(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END), sum(tokens_in), sum(tokens_out),
                   coalesce(sum(confidence::numeric), 0), count(confidence), sum(latency_ms::numeric),
                   array_agg(latency_ms)
            FROM metrics_decision GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9""")
        rows = cursor.fetchall()
    cells = {}
    for row in rows:
        buckets = [0] * len(BUCKET_FIELDS)
        for latency in row[-1]:
            buckets[sum(1 for bound in LATENCY_BOUNDS_MS if latency >= bound)] += 1
        values = [*row[9:-1], *buckets]
        cells[tuple(row[:9])] = dict(zip(ROLLUP_MEASURES, values, strict=True))
    return cells


def _ingest(key_id: int, policy_ids: frozenset[int], records: list[dict[str, Any]]) -> Any:
    return ingest.decision_batch_ingest(key_id=key_id, policy_ids=policy_ids, records=records)


def test_rollups__after_update__cells_hold_the_batch_sums(scope: Any) -> None:
    at = NOW.isoformat()
    _ingest(
        *scope,
        [
            record(timestamp=at, latency_ms=10, confidence=0.5, tokens_in=100, tokens_out=10),
            record(
                timestamp=at,
                latency_ms=700,
                confidence=None,
                attempt=2,
                tier=2,
                model="gpt-4o",
                reason={"from": {"tier": 1, "model": "gpt-4o-mini"}},
            ),
            record(timestamp=at, latency_ms=40_000, confidence=1.0, tokens_in=300, tokens_out=30),
        ],
    )

    assert rollups.rollups_update() == 2  # one delta per cell the batch touched

    mini = RollupHourly.objects.get(model="gpt-4o-mini")
    assert (mini.count, mini.requests, mini.escalations) == (2, 2, 0)
    assert (mini.tokens_in, mini.tokens_out) == (400, 40)
    assert mini.confidence_sum == Decimal("1.5")
    assert mini.confidence_count == 2
    assert mini.latency_sum_ms == Decimal("40010")
    assert mini.latency_buckets == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    escalated = RollupHourly.objects.get(model="gpt-4o")
    assert (escalated.count, escalated.requests, escalated.escalations) == (1, 0, 1)
    assert escalated.hour == NOW.replace(minute=0)


def test_rollups__extreme_latencies_and_confidences__sums_exact_and_equal_to_raw_sql(scope: Any) -> None:
    """Latency and confidence are summed as integers of their last kept decimal: exact at the ends
    of their ranges, and equal to the numeric sums of the raw rows."""
    at = NOW.isoformat()
    _ingest(
        *scope,
        [
            record(timestamp=at, latency_ms=86_400_000, confidence=0.000001),
            record(timestamp=at, latency_ms=0.001, confidence=1),
            record(timestamp=at, latency_ms=1234.5675, confidence=0.1234565),
            record(timestamp=at, latency_ms=0, confidence=0),
        ],
    )

    rollups.rollups_update()

    cell = RollupHourly.objects.get()
    assert cell.latency_sum_ms == Decimal("86400000.001") + Decimal(repr(round(1234.5675, 3)))
    assert cell.confidence_sum == Decimal("1.000001") + Decimal(repr(round(0.1234565, 6)))
    assert _cells() == _reference_cells()
    rollups.rollups_rebuild(since=NOW - timedelta(hours=1))
    assert RollupHourly.objects.get().latency_sum_ms == cell.latency_sum_ms


def test_rollups__update_rerun__counts_nothing_twice(scope: Any) -> None:
    _ingest(*scope, [record(timestamp=NOW.isoformat()) for _ in range(3)])
    rollups.rollups_update()
    before = _cells()

    assert rollups.rollups_update() == 0
    assert _cells() == before


def test_rollups__duplicates__not_counted(scope: Any) -> None:
    batch = [record(timestamp=NOW.isoformat()) for _ in range(4)]
    _ingest(*scope, batch)
    _ingest(*scope, [*batch[2:], record(timestamp=NOW.isoformat())])
    rollups.rollups_update()
    assert RollupHourly.objects.get().count == 5


def test_rollups__late_record_20_days_old__lands_in_its_hour(scope: Any) -> None:
    rollups.rollups_update()
    late = NOW - timedelta(days=20, minutes=7)
    result = _ingest(*scope, [record(timestamp=late.isoformat(), tokens_in=77)])
    rollups.rollups_update()

    assert result.accepted == 1
    cell = RollupHourly.objects.get()
    assert cell.hour == late.replace(minute=0, second=0, microsecond=0)
    assert cell.count == 1
    assert cell.tokens_in == 77


def test_rollups__late_data_into_an_existing_cell__added_to_it(scope: Any) -> None:
    at = (NOW - timedelta(days=3)).isoformat()
    _ingest(*scope, [record(timestamp=at)])
    rollups.rollups_update()
    _ingest(*scope, [record(timestamp=at), record(timestamp=at)])
    rollups.rollups_update()
    assert RollupHourly.objects.get().count == 3


_SLOTS = [NOW - timedelta(days=d, hours=h) for d in (0, 1, 12) for h in (0, 5)]
_record = st.fixed_dictionaries(
    {
        "slot": st.sampled_from(_SLOTS),
        "seconds": st.integers(0, 3599),
        "route": st.sampled_from(["extraction", "general"]),
        "model": st.sampled_from(["gpt-4o-mini", "gpt-4o", "acme-unpriced"]),
        "tier": st.integers(1, 3),
        "attempt": st.integers(1, 3),
        "from_tier": st.none() | st.integers(1, 3),
        "outcome": st.sampled_from(["ok", "low_confidence", "error", "timeout"]),
        "confidence": st.none() | st.floats(0, 1),
        "tokens_in": st.integers(0, 200_000),
        "tokens_out": st.integers(0, 20_000),
        "cost_usd": st.none() | st.floats(0, 5, allow_nan=False),
        "latency_ms": st.sampled_from([0.0, 24.999, 25.0, 30_000.0]) | st.floats(0, 120_000),
        "repeat": st.booleans(),
    }
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_record, min_size=1, max_size=30), min_size=1, max_size=4))
def test_rollups__random_records__every_cell_equals_raw_sql_group_by(
    scope: Any, batches: list[list[dict[str, Any]]]
) -> None:
    """Property: ingest random batches (with retried records), update rollups; every rollup cell
    equals an independent GROUP BY over the raw rows, and rebuilding gives the same cells."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM metrics_decision")
        cursor.execute("DELETE FROM metrics_rollup_hourly")
        cursor.execute("DELETE FROM metrics_rollup_inbox")
    assert not RollupDaily.objects.exists()  # the hourly cells' deletion emptied their days
    sent: list[dict[str, Any]] = []
    for batch in batches:
        records = []
        for r in batch:
            if r["repeat"] and sent:
                records.append(sent[len(sent) // 2])
                continue
            rec = record(
                timestamp=(r["slot"].replace(minute=0, second=0) + timedelta(seconds=r["seconds"])).isoformat(),
                route=r["route"],
                task_type=r["route"],
                model=r["model"],
                tier=r["tier"],
                attempt=r["attempt"],
                outcome=r["outcome"],
                confidence=r["confidence"],
                tokens_in=r["tokens_in"],
                tokens_out=r["tokens_out"],
                cost_usd=r["cost_usd"],
                latency_ms=r["latency_ms"],
                reason={"from": {"tier": r["from_tier"]}} if r["from_tier"] else {},
            )
            records.append(rec)
            sent.append(rec)
        _ingest(*scope, records)
        rollups.rollups_update(limit=3)  # several rounds, interleaved with ingestion

    incremental = _cells()
    assert incremental == _reference_cells()
    assert sum(c["count"] for c in incremental.values()) == len({r["event_id"] for r in sent})
    _assert_days_equal_hours_and_raw()

    rollups.rollups_rebuild(since=NOW - timedelta(days=13), until=NOW + timedelta(hours=2))
    assert _cells() == incremental
    _assert_days_equal_hours_and_raw()
    # A rebuild of part of a day (its hourly cells deleted and inserted again) leaves the day right.
    rollups.rollups_rebuild(since=NOW - timedelta(hours=3), until=NOW + timedelta(hours=1))
    assert _cells() == incremental
    _assert_days_equal_hours_and_raw()


def test_rebuild__equals_incremental__and_pending_deltas_are_not_counted_twice(scope: Any) -> None:
    at = [NOW - timedelta(hours=h) for h in range(6)]
    for moment in at:
        _ingest(*scope, [record(timestamp=moment.isoformat(), latency_ms=h * 900.0, confidence=None) for h in range(5)])
    rollups.rollups_update()
    incremental = _cells()
    _ingest(*scope, [record(timestamp=at[2].isoformat())])  # a delta still pending in the inbox

    call_command(
        "rollups_rebuild",
        "--since",
        (NOW - timedelta(hours=8)).isoformat(),
        "--until",
        (NOW + timedelta(hours=1)).isoformat(),
        stdout=io.StringIO(),
    )
    rollups.rollups_update()

    rebuilt = _cells()
    assert rebuilt == _reference_cells()
    _assert_days_equal_hours_and_raw()
    changed = [k for k in rebuilt if rebuilt[k] != incremental.get(k)]
    assert len(changed) == 1
    assert rebuilt[changed[0]]["count"] == incremental[changed[0]]["count"] + 1


def test_rebuild__window_only__cells_outside_untouched(scope: Any) -> None:
    _ingest(*scope, [record(timestamp=(NOW - timedelta(days=2)).isoformat()), record(timestamp=NOW.isoformat())])
    rollups.rollups_update()
    RollupHourly.objects.update(count=999)  # both cells wrong

    rollups.rollups_rebuild(since=NOW - timedelta(hours=1))

    old, recent = RollupHourly.objects.order_by("hour").values_list("count", flat=True)
    assert (old, recent) == (999, 1)  # the window's cell recomputed, the older one left alone
    assert _daily_cells() == _hourly_summed_per_day()  # the days follow, wrong cell included


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "garbage"], "argument --since: not an ISO 8601 date-time"),
        (["--since", "2026-01-02T00:00Z", "--until", "yesterday"], "argument --until: not an ISO 8601"),
        (["--since", "2026-01-02T00:00Z", "--until", "2026-01-01T00:00Z"], "--until: must be after since"),
    ],
)
def test_rebuild_command__bad_window__error_names_the_option_and_nothing_changes(
    scope: Any, args: list[str], message: str
) -> None:
    from django.core.management.base import CommandError

    _ingest(*scope, [record(timestamp=NOW.isoformat())])
    rollups.rollups_update()
    before = _cells()

    with pytest.raises(CommandError, match=message):
        call_command("rollups_rebuild", *args, stdout=io.StringIO())

    assert _cells() == before


def test_cost_by_task_type__per_day__sums_cost_and_counts_unpriced(scope: Any) -> None:
    day1 = (NOW - timedelta(days=1)).replace(hour=10)
    _ingest(
        *scope,
        [
            record(timestamp=day1.isoformat(), task_type="extraction", cost_usd=1.25),
            record(timestamp=day1.replace(hour=11).isoformat(), task_type="extraction", cost_usd=0.75),
            record(timestamp=day1.isoformat(), task_type="chat", model="acme-unpriced"),
            record(timestamp=NOW.isoformat(), task_type="extraction", cost_usd=2),
        ],
    )
    rollups.rollups_update()
    policy_id = next(iter(scope[1]))

    rows = rollup_selectors.rollup_cost_by_task_type(policy_id, NOW - timedelta(days=3), NOW + timedelta(days=1))

    day = day1.replace(hour=0, minute=0)
    assert [(r["period"], r["task_type"], r["cost_usd"], r["decisions"], r["unpriced"]) for r in rows][:2] == [
        (day, "chat", Decimal(0), 1, 1),
        (day, "extraction", Decimal(2), 2, 0),
    ]
    assert rows[-1]["cost_usd"] == Decimal(2)


@pytest.mark.parametrize(
    ("buckets", "q", "expected"),
    [
        ([0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0], 0.5, 375.0),  # all in [250, 500): halfway
        ([10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0.99, 24.75),
        ([0] * 10 + [4], 0.5, 30000.0),  # open top bucket: its lower bound
        ([0] * 11, 0.5, None),
    ],
)
def test_latency_percentile__interpolates_inside_the_bucket(
    buckets: list[int], q: float, expected: float | None
) -> None:
    assert latency_quantile(buckets, q) == expected


def test_rollup_totals__p95_from_buckets(scope: Any) -> None:
    _ingest(
        *scope,
        [
            record(timestamp=NOW.isoformat(), latency_ms=float(ms), event_id=str(uuid.uuid4()))
            for ms in [100] * 90 + [4000] * 10
        ],
    )
    rollups.rollups_update()
    row = rollup_selectors.rollup_totals()[0]
    percentiles = rollup_selectors.rollup_latency_percentiles(row)
    assert 100 <= percentiles["p50"] < 250
    assert 2500 <= percentiles["p95"] < 5000


def test_cost_by_task_type__whole_days__read_from_daily_cells_with_the_hourly_numbers(scope: Any) -> None:
    from django.test.utils import CaptureQueriesContext

    day1 = (NOW - timedelta(days=2)).replace(hour=23)
    _ingest(
        *scope,
        [
            record(timestamp=day1.isoformat(), task_type="extraction", cost_usd=1.25),
            record(timestamp=day1.replace(hour=0).isoformat(), task_type="extraction", cost_usd=0.5),
            record(timestamp=(day1 + timedelta(hours=2)).isoformat(), task_type="chat", model="acme-unpriced"),
            record(timestamp=NOW.isoformat(), task_type="extraction"),
        ],
    )
    rollups.rollups_update()
    policy_id = next(iter(scope[1]))
    start = (NOW - timedelta(days=5)).replace(hour=0, minute=0)
    end = (NOW + timedelta(days=1)).replace(hour=0, minute=0)

    with CaptureQueriesContext(connection) as queries:
        per_day = rollup_selectors.rollup_cost_by_task_type(policy_id, start, end)
    by_hours = rollup_selectors.rollup_cost_by_task_type(policy_id, start, end - timedelta(minutes=1))

    assert "metrics_rollup_daily" in queries[0]["sql"]
    assert len(queries) == 1
    assert per_day == by_hours
    assert [(r["period"], r["task_type"], r["decisions"], r["unpriced"]) for r in per_day][:2] == [
        (day1.replace(hour=0, minute=0), "extraction", 2, 0),
        ((day1 + timedelta(days=1)).replace(hour=0, minute=0), "chat", 1, 1),
    ]
    assert per_day[0]["cost_usd"] == Decimal("1.75")


def test_span_cells__daily_inside_hourly_at_the_edges__sum_to_the_hourly_cells(scope: Any) -> None:
    """`rollup_span_cells` covers [start, end) with whole days from the daily cells and the rest
    from the hourly ones, so summing its parts gives the hourly cells' sums, edges included."""
    from django.db.models import Sum

    base = (NOW - timedelta(days=6)).replace(hour=5, minute=0, second=0, microsecond=0)
    _ingest(
        *scope,
        [record(timestamp=(base + timedelta(hours=h)).isoformat(), cost_usd=0.25 + h / 100) for h in range(0, 120, 7)],
    )
    rollups.rollups_update()
    policy_id = next(iter(scope[1]))
    start, end = base + timedelta(hours=3), base + timedelta(hours=100)  # mid-day to mid-day
    parts = rollup_selectors.rollup_span_cells(policy_id=policy_id, start=start, end=end, hourly_from=end)
    assert len(parts) == 2
    assert parts[0].model is RollupDaily
    summed = [p.aggregate(n=Sum("count"), cost=Sum("cost_usd")) for p in parts]
    hourly = rollup_selectors.rollup_cells(policy_id=policy_id, start=start, end=end).aggregate(
        n=Sum("count"), cost=Sum("cost_usd")
    )
    assert sum(s["n"] or 0 for s in summed) == hourly["n"] > 0
    assert sum((s["cost"] or Decimal(0)) for s in summed) == hourly["cost"]
    # Hours from `hourly_from` on stay hourly: no daily cell reaches past it.
    late = rollup_selectors.rollup_span_cells(policy_id=policy_id, start=start, end=end, hourly_from=start)
    assert len(late) == 1
