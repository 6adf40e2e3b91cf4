"""Benchmark: cost by task type per day for 30 days, from the rollups vs from raw rows.

    uv run --locked --all-extras python tests/benchmarks/bench_rollup_query.py [--decisions 10000000]

Builds a scratch PostgreSQL database with the real schema, generates the decisions directly in
SQL (generate_series; two policies, five task types each, three models per task type, six
outcomes, a new policy version on day 20, 30 days), builds the rollups through the rebuild path
(`rollups.rollups_rebuild`; the daily cells follow the hourly ones by trigger), then times, for one
policy over 30 days:
- the dashboard selector `rollup_cost_by_task_type(policy, start, end, granularity="day")`
  (Django ORM, rows fetched): whole days, so it reads the daily cells;
- the same selector over the hourly cells (the range ending a microsecond before midnight);
- the same GROUP BY over the raw rows.
Prints the median of --repeat runs of each and the ratio. Target: ≤ 20 ms from rollups.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._server import ROOT, bench_env, recreate_database

DB = "signalbox_bench_rollups"
DAYS = 30

GENERATE = """
INSERT INTO metrics_decision (ts, event_id, key_id, policy_id, policy_version, route, task_type,
    model, provider, tier, attempt, escalated, request_id, reason, outcome, confidence, tokens_in,
    tokens_out, cost_usd, unpriced, latency_ms, client_app, client_instance, client_sdk_version,
    attributes)
SELECT ts, gen_random_uuid(), 1, pol::int, %(version)s, task, task, model, provider, tier,
       attempt, attempt > 1, md5(g::text), '{}', outcome, round(random()::numeric, 3)::float8,
       tin, tout, round((tin * 0.4 + tout * 1.6) * tier / 1e6, 12), false,
       round((exp(6 + random()) * tier)::numeric, 3)::float8, 'bench', 'bench-1', '0.1.0', '{}'
FROM (
    SELECT g, %(start)s::timestamptz + (g::float8 / %(n)s) * interval '1 day'
               + (sin(g::float8 / 97) * interval '20 minutes') AS ts,
           1 + g %% 2 AS pol,
           (ARRAY['extraction', 'summarization', 'classification', 'translation', 'faq'])[1 + (g / 3) %% 5] AS task,
           (ARRAY['gpt-4o-mini', 'gpt-4o', 'claude-haiku-4-5'])[1 + (g / 17) %% 3] AS model,
           (ARRAY['openai', 'openai', 'anthropic'])[1 + (g / 17) %% 3] AS provider,
           1 + ((g / 17) %% 3 = 1)::int AS tier,
           1 + (g %% 5 = 0)::int AS attempt,
           (ARRAY['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'low_confidence', 'validation_failed',
                  'error', 'timeout', 'rate_limited'])[1 + (g / 11) %% 13] AS outcome,
           (50 + (g * 7919) %% 4000) AS tin, (10 + (g * 104729) %% 900) AS tout
    FROM generate_series(0::bigint, %(n)s - 1) AS g
) AS rows
"""

RAW_QUERY = """
SELECT date_trunc('day', ts, 'UTC') AS day, task_type, sum(cost_usd), count(*),
       count(*) FILTER (WHERE attempt = 1), count(*) FILTER (WHERE cost_usd IS NULL)
FROM metrics_decision WHERE policy_id = %s AND ts >= %s AND ts < %s
GROUP BY 1, 2 ORDER BY 1, 2
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="reuse the database of a previous run")
    args = parser.parse_args()

    env = bench_env(DB)
    os.environ.update(
        {
            k: env[k]
            for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CACHE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")
        }
    )
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=DAYS), today
    if not args.keep:
        recreate_database(DB)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.db import connection

    from metrics.ingest import partitions
    from metrics.rollups import selectors as rollup_selectors
    from metrics.rollups import services as rollups

    if not args.keep:
        partitions.partitions_ensure([(start + timedelta(days=d)).date() for d in range(-1, DAYS + 1)])
        per_day = args.decisions // DAYS
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            for day in range(DAYS):
                # Version 2 of both policies goes live on day 20.
                cursor.execute(
                    GENERATE, {"start": start + timedelta(days=day), "n": per_day, "version": 1 if day < 20 else 2}
                )
                print(f"\r  generated day {day + 1}/{DAYS}", end="", flush=True)
            cursor.execute("VACUUM ANALYZE metrics_decision")
        print(f"\n{per_day * DAYS:,} decisions generated in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        cells = rollups.rollups_rebuild(since=start, until=end)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE metrics_rollup_hourly")
            cursor.execute("VACUUM ANALYZE metrics_rollup_daily")
        print(f"rollups rebuilt: {cells:,} hourly cells (and their days) in {time.perf_counter() - t0:.1f} s")

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metrics_decision")
        total = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM metrics_rollup_hourly WHERE policy_id = 1")
        policy_cells = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM metrics_rollup_daily WHERE policy_id = 1")
        policy_days = cursor.fetchone()[0]

    def from_rollups() -> int:
        return len(rollup_selectors.rollup_cost_by_task_type(1, start, end, granularity="day"))

    def from_hourly() -> int:
        return len(
            rollup_selectors.rollup_cost_by_task_type(1, start, end - timedelta(microseconds=1), granularity="day")
        )

    def from_raw() -> int:
        with connection.cursor() as cursor:
            cursor.execute(RAW_QUERY, [1, start, end])
            return len(cursor.fetchall())

    assert rollup_selectors.rollup_cost_by_task_type(1, start, end) == rollup_selectors.rollup_cost_by_task_type(
        1, start, end - timedelta(microseconds=1)
    )
    assert from_rollups() == from_hourly() == from_raw() == DAYS * 5
    rollup_ms, hourly_ms, raw_ms = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        from_rollups()
        rollup_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        from_hourly()
        hourly_ms.append((time.perf_counter() - t0) * 1000)
    for _ in range(max(3, args.repeat // 2)):
        t0 = time.perf_counter()
        from_raw()
        raw_ms.append((time.perf_counter() - t0) * 1000)
    rollup, hourly, raw = (statistics.median(rollup_ms), statistics.median(hourly_ms), statistics.median(raw_ms))
    print(
        f"{total:,} decisions over {DAYS} days; {policy_cells:,} hourly and {policy_days:,} daily cells "
        "for the policy queried"
    )
    print(f"cost by task type per day, 30 days, one policy ({DAYS * 5} rows):")
    print(f"  from rollups (selector, ORM, daily cells): {rollup:8.1f} ms   (target ≤ 20 ms)")
    print(f"  the selector over hourly cells:            {hourly:8.1f} ms")
    print(f"  GROUP BY over raw rows:                    {raw:8.1f} ms")
    print(f"  raw / rollups: {raw / rollup:,.0f}x; hourly / daily: {hourly / rollup:.1f}x")
    print(
        json.dumps(
            {
                "decisions": total,
                "rollup_ms": round(rollup, 2),
                "hourly_ms": round(hourly, 1),
                "raw_ms": round(raw, 1),
                "speedup": round(raw / rollup),
            }
        )
    )


if __name__ == "__main__":
    main()
