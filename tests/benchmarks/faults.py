"""Fault scenarios at full length, with figures: nothing lost, nothing doubled.

    uv run --locked --all-extras python tests/benchmarks/faults.py [--outage 60] [--only NAME ...]

The same private deployment as tests/hardening/test_faults.py (PostgreSQL, Redis cache, Redis
broker, gunicorn with 2 sync workers, a Celery worker; child processes on free ports in a temp
directory; the machine's shared servers are never touched), more traffic and longer faults:

  postgres  3 restarts of PostgreSQL (immediate, fast, immediate) 10 s apart under steady traffic
  broker    the Celery broker down for --broker-down seconds (default 60) under steady traffic
  web       the control plane (gunicorn) down for --outage seconds (default 60); clients keep routing
  worker    the Celery worker SIGKILLed mid-rollups_update twice: the pool process (the task is
            redelivered at once) and then the whole worker (restarted; the next beat tick catches up)

Traffic: --clients RoutingClient instances (own spool and cache each) × 2 threads × --rate run()
calls per second. For each scenario it prints the decisions made, stored, lost (made but not stored)
and doubled (rows minus distinct event ids), the faults survived, the client's retries and spool
use, and whether the rollups equal a GROUP BY over the raw rows. Exit status 1 on any loss, double
count or rollup mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.hardening._stack import (
    POLICY,
    Stack,
    Traffic,
    decision_record,
    missing_binaries,
    post_decisions,
    run,
    wait_for,
)


class Fleet:
    """Several RoutingClients (each with its own spool and disk cache), two traffic threads each."""

    def __init__(self, stack: Stack, workdir: Path, *, clients: int, rate: float, queue_size: int = 500) -> None:
        from signalbox_client import RoutingClient

        assert stack.web is not None
        self.clients = [
            RoutingClient(
                stack.web.url,
                stack.key,
                POLICY,
                app=f"faults-{i}",
                cache_dir=workdir / f"cache{i}",
                spool_dir=workdir / f"spool{i}",
                refresh_interval=1.0,
                flush_interval=0.25,
                batch_size=200,
                queue_size=queue_size,
                timeout=3.0,
                rng=random.Random(i),
            )
            for i in range(clients)
        ]
        for client in self.clients:
            if not client.wait_until_ready(15):
                raise RuntimeError("a client never loaded the policy")
        self.traffic = [Traffic(c, threads=2, rate=rate).start() for c in self.clients]

    def stop(self, flush_timeout: float = 120) -> bool:
        for t in self.traffic:
            t.stop()
        flushed = all(c.flush(timeout=flush_timeout) for c in self.clients)
        for c in self.clients:
            c.close()
        return flushed

    @property
    def runs(self) -> int:
        return sum(t.runs for t in self.traffic)

    @property
    def event_ids(self) -> list[str]:
        return [e for t in self.traffic for e in t.event_ids]

    @property
    def errors(self) -> list[str]:
        return [e for t in self.traffic for e in t.errors]

    def stats(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for c in self.clients:
            for name, value in c.stats().as_dict().items():
                if isinstance(value, int) and name != "policy_version":
                    totals[name] = totals.get(name, 0) + value
        return totals


def tally(stack: Stack, made: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    """Made vs stored, and the rollups once caught up."""
    stored = stack.event_ids()
    rows, distinct = stack.decision_counts()
    stack.wait_rollups_caught_up(180)
    return {
        "decisions_made": len(made),
        "stored_rows": rows,
        "lost": len(set(made) - stored),
        "doubled": rows - distinct,
        "unexpected": len(stored - set(made)),
        "rollups_exact": stack.rollup_total() == rows and stack.rollup_mismatches() == 0,
        **extra,
    }


def scenario_postgres(stack: Stack, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    assert stack.pg is not None
    assert stack.worker is not None
    stack.worker.start()
    fleet = Fleet(stack, workdir, clients=args.clients, rate=args.rate)
    downtime = []
    try:
        time.sleep(10)
        for mode in ("immediate", "fast", "immediate"):
            downtime.append(round(stack.pg.restart(mode), 2))
            time.sleep(10)
    finally:
        flushed = fleet.stop()
    stats = fleet.stats()
    return tally(
        stack,
        fleet.event_ids,
        {
            "faults_survived": len(downtime),
            "pg_unreachable_s": downtime,
            "client_errors": len(fleet.errors),
            "batches_retried": stats["retried"],
            "server_duplicates": stats["duplicates"],
            "client_dropped": stats["dropped"],
            "flushed": flushed,
        },
    )


def scenario_broker(stack: Stack, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    assert stack.worker is not None
    stack.worker.start()
    fleet = Fleet(stack, workdir, clients=args.clients, rate=args.rate)
    try:
        time.sleep(10)
        stack.broker.stop()
        rows_at_stop, folded_at_stop = stack.decision_counts()[0], stack.rollup_total()
        slowest = 0.0
        posts = 0
        deadline = time.monotonic() + args.broker_down
        while time.monotonic() < deadline:  # direct batches too: each must answer at once
            started = time.monotonic()
            response = post_decisions(stack, [decision_record() for _ in range(100)], timeout=30)
            slowest = max(slowest, time.monotonic() - started)
            if response.status_code != 200 or response.json()["accepted"] != 100:
                raise RuntimeError(f"ingest answered {response.status_code} while the broker was down")
            fleet_ids = response.json()["results"]
            fleet.traffic[0].event_ids.extend(r["event_id"] for r in fleet_ids)
            posts += 1
            time.sleep(1)
        rows_down, folded_down = stack.decision_counts()[0], stack.rollup_total()
        pending = stack.inbox_size()
        stack.broker.start()
        back = time.monotonic()
        wait_for(lambda: stack.rollup_total() >= rows_down, 300, "rollups never caught up", interval=0.5)
        catch_up = time.monotonic() - back
        time.sleep(5)
    finally:
        flushed = fleet.stop()
    stats = fleet.stats()
    return tally(
        stack,
        fleet.event_ids,
        {
            "faults_survived": 1,
            "broker_down_s": args.broker_down,
            "stored_while_down": rows_down - rows_at_stop,
            "folded_while_down": folded_down - folded_at_stop,
            "inbox_deltas_at_return": pending,
            "direct_posts_while_down": posts,
            "slowest_post_while_down_s": round(slowest, 3),
            "catch_up_s": round(catch_up, 1),
            "batches_retried": stats["retried"],
            "client_errors": len(fleet.errors),
            "flushed": flushed,
        },
    )


def scenario_web(stack: Stack, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    assert stack.web is not None
    assert stack.worker is not None
    stack.worker.start()
    fleet = Fleet(stack, workdir, clients=args.clients, rate=args.rate, queue_size=200)
    try:
        time.sleep(5)
        stack.web.stop()
        runs_before, down_at = fleet.runs, time.monotonic()
        time.sleep(args.outage)
        during = fleet.stats()
        runs_down = fleet.runs - runs_before
        stack.web.start()
        back = time.monotonic()
        wait_for(
            lambda: all(c.stats().spool_bytes == 0 and c.stats().queued < 1000 for c in fleet.clients),
            300,
            "the spool never drained",
            interval=0.5,
        )
        drain = time.monotonic() - back
        time.sleep(3)
    finally:
        flushed = fleet.stop()
    stats = fleet.stats()
    return tally(
        stack,
        fleet.event_ids,
        {
            "faults_survived": 1,
            "outage_s": round(back - down_at, 1),
            "decisions_while_down": runs_down,
            "spooled": during["spooled"],
            "peak_spool_bytes": during["spool_bytes"],
            "refresh_failures": during["refresh_failures"],
            "spool_drained_s": round(drain, 1),
            "client_errors": len(fleet.errors),
            "client_dropped": stats["dropped"],
            "flushed": flushed,
        },
    )


def _blocked(stack: Stack) -> bool:
    return bool(
        stack.sql(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%metrics_rollup_inbox%'"
        )
    )


def scenario_worker(stack: Stack, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    assert stack.worker is not None
    assert stack.pg is not None
    made: list[str] = []
    hour = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=30, second=0, microsecond=0)
    ts = hour.isoformat().replace("+00:00", "Z")

    def ingest(records: list[dict[str, Any]]) -> None:
        body = post_decisions(stack, records).json()
        assert body["accepted"] == len(records), body
        made.extend(r["event_id"] for r in records)

    def held_batch() -> list[dict[str, Any]]:
        return [decision_record(timestamp=ts, task_type="held", route="held") for _ in range(10)]

    ingest(held_batch())
    run(
        [sys.executable, "manage.py", "rollups_rebuild", "--since", (hour - timedelta(hours=1)).isoformat()],
        stack.env(),
    )
    kills = []
    for round_no, victim in enumerate(("pool process", "whole worker")):
        for start in range(0, args.deltas, 5000):
            ingest(
                [
                    decision_record(timestamp=ts, task_type=f"r{round_no}-{i:06d}")
                    for i in range(start, min(start + 5000, args.deltas))
                ]
            )
        ingest(held_batch())
        deltas = stack.inbox_size()
        stack.broker.command("FLUSHALL")
        with psycopg.connect(stack.pg.url(stack.db)) as holder:
            holder.execute("SELECT 1 FROM metrics_rollup_hourly WHERE task_type = 'held' FOR UPDATE")
            stack.worker.start()
            task_id = stack.beat_tick()
            wait_for(lambda: _blocked(stack), 120, "rollups_update never reached the held cell")
            folded_before_kill = deltas - stack.inbox_size()
            if victim == "pool process":
                for pid in stack.worker.child_pids():
                    os.kill(pid, signal.SIGKILL)
                marker = f"[{task_id}] received"
                wait_for(
                    lambda m=marker: stack.worker.log_text().count(m) >= 2, 60, "the killed task was not redelivered"
                )
                redelivered = True
            else:
                assert stack.worker.proc is not None
                pids = [stack.worker.proc.pid, *stack.worker.child_pids()]
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                stack.worker.proc.wait(10)
                stack.worker.proc = None
                stack.worker.start()  # the message stays unacked until the visibility timeout
                redelivered = False
            holder.rollback()
        started = time.monotonic()
        stack.wait_rollups_caught_up(120)  # beat's tick (every 5 s here, every 60 s in production)
        kills.append(
            {
                "killed": victim,
                "inbox_deltas": deltas,
                "folded_before_kill": folded_before_kill,
                "redelivered_at_once": redelivered,
                "caught_up_s": round(time.monotonic() - started, 1),
            }
        )
        stack.worker.stop()
    return tally(stack, made, {"faults_survived": len(kills), "kills": kills})


SCENARIOS = {"postgres": scenario_postgres, "broker": scenario_broker, "web": scenario_web, "worker": scenario_worker}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=60, help="seconds the control plane stays down")
    parser.add_argument("--broker-down", type=float, default=60, help="seconds the broker stays down")
    parser.add_argument("--clients", type=int, default=3, help="RoutingClient instances (2 threads each)")
    parser.add_argument("--rate", type=float, default=60, help="run() calls per second per thread")
    parser.add_argument("--deltas", type=int, default=20_000, help="worker: rollup deltas pending per kill")
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), help="run these scenarios only")
    args = parser.parse_args()
    why = missing_binaries()
    if why:
        sys.exit(why)

    stack = Stack()
    results: dict[str, Any] = {}
    try:
        stack.start()
        for name in args.only or SCENARIOS:
            for server in (stack.pg, stack.cache, stack.broker, stack.web):
                if server is not None and not server.running:
                    server.start()
            stack.reset()
            workdir = Path(tempfile.mkdtemp(prefix=f"signalbox-faults-{name}-"))
            started = time.monotonic()
            try:
                results[name] = SCENARIOS[name](stack, workdir, args)
            finally:
                if stack.worker is not None:
                    stack.worker.stop()
                shutil.rmtree(workdir, ignore_errors=True)
            results[name]["seconds"] = round(time.monotonic() - started, 1)
            r = results[name]
            print(
                f"{name:9} made {r['decisions_made']:>7,}  stored {r['stored_rows']:>7,}  lost {r['lost']}  "
                f"doubled {r['doubled']}  faults survived {r['faults_survived']}  "
                f"rollups {'exact' if r['rollups_exact'] else 'MISMATCH'}  ({r['seconds']} s)",
                flush=True,
            )
            print(
                "          "
                + json.dumps(
                    {
                        k: v
                        for k, v in r.items()
                        if k
                        not in ("decisions_made", "stored_rows", "lost", "doubled", "faults_survived", "rollups_exact")
                    }
                ),
                flush=True,
            )
    finally:
        stack.close()
    print(json.dumps(results))
    bad = any(
        r["lost"] or r["doubled"] or r["unexpected"] or not r["rollups_exact"] or r.get("client_errors")
        for r in results.values()
    )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
