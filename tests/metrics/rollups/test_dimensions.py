"""Dimension rollups: records posted to the decisions endpoint land per arm, client app and declared
attribute, hourly and daily; values past the day's cap fold into (other); a missing key is (none);
the rebuild command backfills a dimension added later, equal to the incremental cells."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from metrics.models import DimensionRollupDaily, DimensionRollupHourly, DimensionValue
from metrics.rollups import selectors
from metrics.rollups import services as rollups
from signalbox_client.protocol import DIMENSION_NONE, DIMENSION_OTHER, DIMENSION_VALUES_PER_DAY
from tests import factories
from tests.metrics.conftest import record

pytestmark = pytest.mark.django_db

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
DAY = HOUR.replace(hour=0)  # HOUR's UTC day: DAY + 1 h is at most an hour ago, whatever the time


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _declare(policy: Any, *keys: str) -> None:
    factories.publish(policy, factories.document(dimensions=list(keys)), comment="declare dimensions")


def _by_value(key: str, policy: Any, **filters: Any) -> dict[str, dict[str, Any]]:
    rows = selectors.dimension_totals(
        policy_id=policy.pk, dim_key=key, start=DAY, end=DAY + timedelta(days=1), filters=filters or None
    )
    return {row["dim_value"]: row for row in rows}


def test_ingest_then_fold__declared_arm_and_client__per_value_sums(scoped: Any, post: Any) -> None:
    policy, secret = scoped
    _declare(policy, "team")
    records = [
        record(
            timestamp=_at(HOUR + timedelta(minutes=i)),
            attributes={"team": "search" if i % 3 else "ads"},
            reason={"route_by": "task_type", "split": {"arm": "canary" if i % 2 else "control", "bucket": i}},
            client={"app": "checkout-web" if i < 6 else "batch", "instance": "h:1", "sdk_version": "1"},
            cost_usd=0.001 * (i + 1),
        )
        for i in range(10)
    ]
    records.append(record(timestamp=_at(HOUR), attributes={}, cost_usd=0.5))  # no team, no split

    assert post(records, secret).status_code == 200
    rollups.rollups_update()

    team = _by_value("team", policy)
    assert {v: row["requests"] for v, row in team.items()} == {"ads": 4, "search": 6, DIMENSION_NONE: 1}
    assert team["ads"]["cost_usd"] == Decimal("0.001") + Decimal("0.004") + Decimal("0.007") + Decimal("0.010")
    arm = _by_value("arm", policy)
    assert {v: row["requests"] for v, row in arm.items()} == {"canary": 5, "control": 5, DIMENSION_NONE: 1}
    client = _by_value("client", policy)
    assert {v: row["requests"] for v, row in client.items()} == {"checkout-web": 6, "batch": 4, "tests": 1}
    # Every dimension sums to the same totals as the plain rollups.
    plain = selectors.rollup_totals(policy_id=policy.pk)[0]
    for rows in (team, arm, client):
        assert sum(r["cost_usd"] for r in rows.values()) == plain["cost_usd"]
        assert sum(r["latency_b5"] for r in rows.values()) == plain["latency_b5"]
    # Hourly cells and daily cells agree.
    hourly = selectors.dimension_totals(policy_id=policy.pk, dim_key="team", start=HOUR, end=HOUR + timedelta(hours=1))
    assert {r["dim_value"]: r["cost_usd"] for r in hourly} == {v: r["cost_usd"] for v, r in team.items()}


def test_fold__combined_with_routing_fields__filters_narrow(scoped: Any, post: Any) -> None:
    policy, secret = scoped
    _declare(policy, "tenant")
    post(
        [
            record(timestamp=_at(HOUR), attributes={"tenant": "acme"}, model="gpt-4o", cost_usd=0.02),
            record(timestamp=_at(HOUR), attributes={"tenant": "acme"}, model="gpt-4o-mini", cost_usd=0.01),
            record(timestamp=_at(HOUR), attributes={"tenant": "globex"}, model="gpt-4o", cost_usd=0.04),
        ],
        secret,
    )
    rollups.rollups_update()

    tenants = _by_value("tenant", policy, model="gpt-4o")

    assert {v: r["cost_usd"] for v, r in tenants.items()} == {"acme": Decimal("0.02"), "globex": Decimal("0.04")}


def test_fold__values_past_the_daily_cap__fold_into_other(scoped: Any, post: Any, settings: Any) -> None:
    policy, secret = scoped
    _declare(policy, "tenant")
    heavy = [record(timestamp=_at(HOUR), attributes={"tenant": "big"}) for _ in range(3)]
    tail = [record(timestamp=_at(HOUR), attributes={"tenant": f"t{i:04d}"}) for i in range(DIMENSION_VALUES_PER_DAY)]
    assert post(heavy + tail, secret).status_code == 200
    rollups.rollups_update()
    # A later batch the same day: a new value finds no room; a value already kept still counts.
    post([record(timestamp=_at(HOUR), attributes={"tenant": "late"}), *heavy[:1]], secret)
    post([record(timestamp=_at(HOUR), attributes={"tenant": "big"})], secret)
    rollups.rollups_update()

    tenants = _by_value("tenant", policy)

    assert len(tenants) == DIMENSION_VALUES_PER_DAY + 1  # the cap, and (other)
    assert tenants["big"]["requests"] == 4  # heaviest first: kept, and counted again later
    assert tenants[DIMENSION_OTHER]["requests"] == 2  # the one tail value past the cap, and "late"
    assert "late" not in tenants
    assert DimensionValue.objects.filter(policy_id=policy.pk, dim_key="tenant").count() == DIMENSION_VALUES_PER_DAY
    assert sum(r["requests"] for r in tenants.values()) == 3 + DIMENSION_VALUES_PER_DAY + 2


def test_rebuild_command__dimension_declared_later__backfills_from_raw(scoped: Any, post: Any) -> None:
    policy, secret = scoped
    records = [
        record(timestamp=_at(DAY + timedelta(hours=h)), attributes={"team": t}, cost_usd=0.003)
        for h in range(2)
        for t in ("a", "b", "b")
    ]
    post([*records, record(timestamp=_at(HOUR), attributes={})], secret)
    rollups.rollups_update()
    assert _by_value("team", policy) == {}  # not declared when the records came in

    _declare(policy, "team")
    out = io.StringIO()
    call_command("dimension_rollups_rebuild", "--policy", policy.slug, "--since", _at(DAY), stdout=out)

    team = _by_value("team", policy)
    assert {v: r["requests"] for v, r in team.items()} == {"a": 2, "b": 4, DIMENSION_NONE: 1}
    assert team["b"]["cost_usd"] == Decimal("0.012")
    assert "hourly cells" in out.getvalue()
    # The arm and client cells rebuilt equal the incremental ones (no double count).
    assert _by_value("client", policy)["tests"]["requests"] == 7
    assert DimensionRollupDaily.objects.filter(policy_id=policy.pk, dim_key="team").count() >= 3
    assert DimensionRollupHourly.objects.filter(policy_id=policy.pk, dim_key="team").count() >= 3


def test_rebuild__records_still_pending_their_fold__counted_once(scoped: Any, post: Any) -> None:
    """A rebuild of the days that hold ingested, not yet folded records: their cells count each
    record once, and the fold after it adds nothing more."""
    policy, secret = scoped
    _declare(policy, "team")
    assert post([record(timestamp=_at(HOUR), attributes={"team": "a"}) for _ in range(3)], secret).status_code == 200

    call_command("dimension_rollups_rebuild", "--policy", policy.slug, "--since", _at(DAY), stdout=io.StringIO())
    rollups.rollups_update()

    assert {v: r["requests"] for v, r in _by_value("team", policy).items()} == {"a": 3}
    assert _by_value("client", policy)["tests"]["requests"] == 3


def test_rebuild_command__bad_input__clear_error_nothing_written(scoped: Any) -> None:
    from django.core.management.base import CommandError

    policy, _ = scoped
    with pytest.raises(CommandError, match="no policy 'nope'"):
        call_command("dimension_rollups_rebuild", "--policy", "nope", "--since", _at(DAY))
    with pytest.raises(CommandError, match="until"):
        call_command("dimension_rollups_rebuild", "--policy", policy.slug, "--since", _at(DAY), "--until", _at(DAY))
    assert not DimensionRollupHourly.objects.exists()
