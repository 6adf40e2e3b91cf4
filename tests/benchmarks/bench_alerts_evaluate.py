"""Benchmark: one alert evaluation of a policy with 20 routes at about 1,000,000 decisions a day,
against the rollup reads it needs, timed in the same run.

    uv run --locked --all-extras python tests/benchmarks/bench_alerts_evaluate.py [--per-day 1000000]

Builds a scratch PostgreSQL database with the real schema, a policy of 20 cascade routes (one to
three tiers, the demo catalog's models and prices, a monthly budget) and 28 days of its clean
traffic as hourly rollup cells (`metrics.stats.scenarios.traffic_cells`, written through the rollup
inbox and folded by `rollups_update`, the simulator's path; the daily cells follow by trigger). Then
times, at 12:30 on day 20 of the month (so the budget reads 20 days of spend):
- `alerts_evaluate(policy=…, at=…)`: the whole evaluation (lock, the reads, every detector, the
  alert writes; the first run opens whatever fires, later runs refresh it);
- the three rollup reads alone (`metrics.alerts.reads.route_totals`, `route_series` and
  `hourly_spend`), the floor any evaluation of the same windows pays.
Prints the median of --repeat runs of each and their ratio. Target: ≤ 0.3 s per evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._server import ROOT, bench_env, recreate_database

DB = "signalbox_bench_alerts"
ROUTES = 20
MONTH = datetime(2025, 3, 1, tzinfo=UTC)
AT = MONTH + timedelta(days=19, hours=12, minutes=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=1_000_000, help="decisions a day over the policy")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()

    env = bench_env(DB)
    os.environ.update(
        {
            k: env[k]
            for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CACHE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")
        }
    )
    recreate_database(DB)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from dataclasses import replace

    from django.db import connection

    from metrics.alerts import reads, simulation
    from metrics.alerts.evaluation import alerts_evaluate
    from metrics.alerts.windows import Windows
    from metrics.schema import LATENCY_BOUNDS_MS
    from metrics.stats import scenarios
    from routing import services

    models = simulation.catalog_models()
    routes = scenarios.policy_routes(random.Random(17), models, count=ROUTES)
    # About 1.1 attempts per request (escalations, fallbacks): scale the requests to the decisions asked.
    per_hour = args.per_day / 24 / 1.1 / ROUTES
    routes = tuple(replace(r, per_hour=per_hour) for r in routes)
    start, end = MONTH - timedelta(days=scenarios.WARMUP_DAYS), AT.replace(minute=0) + timedelta(hours=1)
    t0 = time.perf_counter()
    cells = scenarios.traffic_cells(17, routes, models, start, end, LATENCY_BOUNDS_MS)
    decisions = sum(c.count for c in cells)
    days = (end - start).total_seconds() / 86400
    print(
        f"{len(cells):,} hourly cells, {decisions:,} decisions ({decisions / days:,.0f} a day) "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    scenario = scenarios.Scenario(0, True, MONTH, MONTH + timedelta(days=31), routes, models, (), 1e9, 0.0)
    doc = scenarios.policy_document(scenario)
    doc["budget"] = {"monthly_usd": round(sum(c.cost_usd for c in cells) * 1.2, 2)}
    policy = services.policy_create(slug="bench", name="Bench", user=None, document=doc)
    version = services.policy_publish(policy=policy, user=None, comment="bench")
    policy.refresh_from_db()
    t0 = time.perf_counter()
    simulation._cells_write(policy.pk, version.number or 1, cells)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE metrics_rollup_hourly")
        cursor.execute("VACUUM ANALYZE metrics_rollup_daily")
        cursor.execute("SELECT count(*) FROM metrics_rollup_hourly")
        hourly = cursor.fetchone()[0]
    print(f"rollups folded: {hourly:,} hourly cells in {time.perf_counter() - t0:.0f} s")

    w = Windows(AT)

    def reads_only() -> None:
        totals = reads.route_totals(policy.pk, w)
        reads.route_series(policy.pk, w, totals)
        reads.hourly_spend(policy.pk, w)

    alerts_evaluate(policy=policy, at=AT)  # opens whatever fires; the timed runs refresh it
    eval_ms, read_ms = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        report = alerts_evaluate(policy=policy, at=AT)
        eval_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        reads_only()
        read_ms.append((time.perf_counter() - t0) * 1000)
    assert not report.failed, report.failed
    evaluation, read = statistics.median(eval_ms), statistics.median(read_ms)
    print(f"one policy, {ROUTES} routes, {decisions / days:,.0f} decisions a day, {report.evaluations} verdicts:")
    print(f"  alerts_evaluate:             {evaluation:8.1f} ms   (target ≤ 300 ms)")
    print(f"  its rollup reads alone:      {read:8.1f} ms")
    print(f"  evaluation / reads: {evaluation / read:.2f}x")
    print(
        json.dumps(
            {"evaluate_ms": round(evaluation, 1), "reads_ms": round(read, 1), "ratio": round(evaluation / read, 2)}
        )
    )


if __name__ == "__main__":
    main()
