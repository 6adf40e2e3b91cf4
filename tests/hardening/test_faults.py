"""Faults, nothing lost, nothing doubled: each scenario breaks one piece of a private deployment
(tests/hardening/_stack.py: PostgreSQL, Redis cache, Redis broker, gunicorn, a Celery worker, all
child processes on free ports) while the real RoutingClient keeps routing and uploading, then
checks the database holds every decision exactly once and the rollups equal a GROUP BY over the raw
rows. The full-length versions with figures: tests/benchmarks/faults.py.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from signalbox_client import RoutingClient
from tests.hardening._stack import (
    POLICY,
    Stack,
    decision_record,
    post_decisions,
    run,
    traffic,
    wait_for,
)

# One private stack for the module (a module-scoped fixture); under xdist, --dist loadfile
# (pyproject.toml) runs every scenario on the worker that started it.
pytestmark = pytest.mark.slow

# How long the control plane stays down in the outage test (the benchmark holds it for a minute).
OUTAGE_SECONDS = float(os.environ.get("SIGNALBOX_FAULT_OUTAGE_SECONDS", "8"))
RATE = 60.0  # run() calls per second per traffic thread


def make_client(stack: Stack, tmp_path: Path, **overrides: Any) -> RoutingClient:
    assert stack.web is not None
    options: dict[str, Any] = {
        "cache_dir": tmp_path / "cache",
        "spool_dir": tmp_path / "spool",
        "refresh_interval": 0.5,
        "flush_interval": 0.2,
        "batch_size": 100,
        "queue_size": 300,
        "timeout": 3.0,
        "rng": random.Random(7),
        "app": "faults",
    }
    options.update(overrides)
    return RoutingClient(stack.web.url, stack.key, POLICY, **options)


def assert_stored_exactly_once(stack: Stack, event_ids: list[str]) -> None:
    rows, distinct = stack.decision_counts()
    assert len(set(event_ids)) == len(event_ids)
    assert (rows, distinct) == (len(event_ids), len(event_ids))
    assert stack.event_ids() == set(event_ids)


def assert_rollups_exact(stack: Stack, timeout: float = 40) -> None:
    stack.wait_rollups_caught_up(timeout)
    assert stack.rollup_total() == stack.decision_counts()[0]
    assert stack.rollup_mismatches() == 0


def test_postgres_restart__during_steady_ingestion__every_decision_stored_once(stack: Stack, tmp_path: Path) -> None:
    """Given two client threads uploading steadily, when PostgreSQL crashes and restarts
    (immediate shutdown: every open connection of gunicorn and the worker dies), the client retries
    and the database ends with exactly the decisions made, each once, and exact rollups."""
    assert stack.pg is not None
    assert stack.worker is not None
    stack.worker.start()
    client = make_client(stack, tmp_path)
    try:
        assert client.wait_until_ready(10)
        with traffic(client, threads=2, rate=RATE) as t:
            wait_for(lambda: stack.decision_counts()[0] >= 150, 30, "ingestion did not start")
            stack.pg.restart("immediate")
            time.sleep(4)
        assert client.flush(timeout=45)
        stats = client.stats()
    finally:
        client.close()

    assert t.errors == []
    assert stats.retried >= 1, "the restart was never felt by the client"
    assert (stats.dropped, stats.rejected) == (0, 0)
    assert stats.sent + stats.duplicates == stats.recorded == len(t.event_ids)
    assert_stored_exactly_once(stack, t.event_ids)
    assert_rollups_exact(stack)


def test_broker_down__ingestion_still_stores__rollups_catch_up_when_it_returns(stack: Stack, tmp_path: Path) -> None:
    """Given a worker folding rollups, when the broker stops, every upload still answers 200 and is
    stored while the rollup inbox grows; when the broker returns, later ingests queue the fold again
    and the worker reconnects and catches up, ending exact."""
    assert stack.worker is not None
    stack.worker.start()
    client = make_client(stack, tmp_path)
    try:
        assert client.wait_until_ready(10)
        with traffic(client, threads=2, rate=RATE) as t:
            wait_for(lambda: stack.rollup_total() >= 100, 40, "rollups did not start")
            stack.broker.stop()
            rows_at_stop = stack.decision_counts()[0]
            started = time.monotonic()
            direct = post_decisions(stack, [decision_record() for _ in range(50)], timeout=10)
            direct_seconds = time.monotonic() - started
            time.sleep(3)
            rows_down, folded_down = stack.decision_counts()[0], stack.rollup_total()
            stack.broker.start()
            wait_for(
                lambda: stack.rollup_total() >= rows_down,
                45,
                "the worker did not catch up after the broker returned",
                interval=0.5,
            )
        assert client.flush(timeout=30)
        stats = client.stats()
    finally:
        client.close()

    assert direct.status_code == 200
    assert direct.json()["accepted"] == 50
    assert direct_seconds < 5, "an ingest waited on the down broker"
    assert rows_down > rows_at_stop + 100, "ingestion stopped storing while the broker was down"
    assert folded_down < rows_down, "rollups kept up although the broker was down"
    assert t.errors == []
    assert stats.retried == 0, "an upload failed while only the broker was down"
    assert (stats.dropped, stats.rejected) == (0, 0)
    assert_stored_exactly_once(stack, t.event_ids + [r["event_id"] for r in direct.json()["results"]])
    assert_rollups_exact(stack)


def test_control_plane_down__client_routes_from_cache__spool_delivered_once_after_restart(
    stack: Stack, tmp_path: Path
) -> None:
    """Given a client routing steadily, when gunicorn stops for OUTAGE_SECONDS, run() keeps deciding
    (no exception), records spill to the disk spool, a client started during the outage routes from
    the disk cache, and once the server is back every decision is stored exactly once."""
    assert stack.web is not None
    client = make_client(stack, tmp_path, queue_size=100)
    try:
        assert client.wait_until_ready(10)
        with traffic(client, threads=2, rate=RATE) as t:
            wait_for(lambda: stack.decision_counts()[0] >= 100, 30, "ingestion did not start")
            stack.web.stop()
            down_at, runs_at_stop = time.monotonic(), t.runs

            fresh = RoutingClient(
                stack.web.url, stack.key, POLICY, cache_dir=tmp_path / "cache", refresh_interval=0.5, timeout=1.0
            )
            try:
                assert fresh.wait_until_ready(2)
                fresh_model = fresh.decide("billing").model
            finally:
                fresh.close(timeout=0)

            time.sleep(max(OUTAGE_SECONDS - (time.monotonic() - down_at), 0))
            runs_down, during = t.runs - runs_at_stop, client.stats()
            stack.web.start()
            time.sleep(2)
        assert client.flush(timeout=60)
        stats = client.stats()
    finally:
        client.close()

    assert t.errors == []
    assert fresh_model
    assert runs_down >= OUTAGE_SECONDS * RATE, "routing slowed down while the server was away"
    assert during.spooled > 0
    assert during.refresh_failures > 0
    assert (stats.dropped, stats.rejected) == (0, 0)
    assert stats.sent + stats.duplicates == stats.recorded == len(t.event_ids)
    assert not list((tmp_path / "spool").rglob("seg-*")), "spooled records left behind"
    assert_stored_exactly_once(stack, t.event_ids)


def _blocked_rollup_backend(stack: Stack) -> int | None:
    rows = stack.sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query ILIKE '%metrics_rollup_inbox%'"
    )
    return rows[0][0] if rows else None


def test_worker_killed_mid_rollup__task_reruns__rollups_exact_nothing_doubled(stack: Stack) -> None:
    """Given 10,001 pending rollup deltas (three rounds of rollups_update), when the worker's
    process is SIGKILLed in the third round (held there by a row lock), the task is redelivered
    (acks_late, reject_on_worker_lost), the killed round's transaction rolls back, and the rollups
    end equal to the raw rows: the two committed rounds are not counted again."""
    assert stack.worker is not None
    hour = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=30, second=0, microsecond=0)
    ts = hour.isoformat().replace("+00:00", "Z")
    held = {"timestamp": ts, "task_type": "held", "route": "held"}
    assert post_decisions(stack, [decision_record(**held) for _ in range(10)]).json()["accepted"] == 10
    run(
        [sys.executable, "manage.py", "rollups_rebuild", "--since", (hour - timedelta(hours=1)).isoformat()],
        stack.env(),
    )
    assert stack.rollup_total() == 10
    assert stack.inbox_size() == 0
    for start in (0, 5000):
        batch = [decision_record(timestamp=ts, task_type=f"t{i:05d}") for i in range(start, start + 5000)]
        assert post_decisions(stack, batch).json()["accepted"] == 5000
    assert post_decisions(stack, [decision_record(**held) for _ in range(10)]).json()["accepted"] == 10
    assert stack.inbox_size() == 10_001
    stack.broker.command("FLUSHALL")  # only the task queued below runs

    with psycopg.connect(stack.pg.url(stack.db)) as holder:  # type: ignore[union-attr]
        holder.execute("SELECT 1 FROM metrics_rollup_hourly WHERE task_type = 'held' FOR UPDATE")
        stack.worker.start()
        task_id = stack.beat_tick()
        wait_for(lambda: _blocked_rollup_backend(stack), 60, "rollups_update never reached the held cell")
        assert stack.rollup_total() == 10 + 10_000  # two rounds committed, the third in flight
        [child] = stack.worker.child_pids()
        os.kill(child, signal.SIGKILL)
        wait_for(
            lambda: stack.worker.log_text().count(f"rollups_update[{task_id}] received") == 2,
            60,
            "the killed task was not redelivered",
        )
        holder.rollback()  # releases the row: the killed round's backend finds its client gone

    log = stack.worker.log_text()
    assert "WorkerLostError" in log or "SIGKILL" in log
    assert_rollups_exact(stack)
    assert stack.rollup_total() == 10_020
