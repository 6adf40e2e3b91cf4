"""Benchmark: server time of every dashboard page and the monthly report at 10,000,000 decisions,
against the same pages at 10,000 decisions, in the same run.

    uv run --locked --all-extras python tests/benchmarks/bench_pages.py [--decisions 10000000]
        [--baseline 10000] [--requests 25] [--keep]

Two scratch PostgreSQL databases with the real schema (migrated) each get one policy whose
decisions are spread evenly from the first day of the month before the last full month until now
(82+ days: the dashboards' default 30 days and both months of the report are covered). The
decisions are generated in SQL (generate_series: five task types on three routes, first attempts,
fallbacks and escalations on six models over three tiers, six outcomes, token counts, prices and
log-normal latencies; versions 2 and 3 go live inside the report month) and aggregated straight
into the hourly rollup by the aggregate ingestion and the rebuild use (`metrics.rollups.sql.aggregate_rows_sql`),
so the cells, and the daily cells the database keeps from them, are exactly what ingesting those
decisions would produce. Raw rows are not written: no page reads them.

One gunicorn (one sync worker) serves each database; every round requests each page once from
each server, alternating, so both sizes see the same machine load. Prints, per page, p50 and p95
server time (wall time of a keep-alive request on 127.0.0.1) at both sizes and the p95 ratio.
Target: p95 ≤ 300 ms at 10,000,000 decisions.
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

from tests.benchmarks._server import ROOT, bench_env, gunicorn, recreate_database

TARGET_MS = 300.0
USERNAME = "bench-lead"
PAGES = ("overview", "cost", "escalation", "quality", "latency", "budget", "alerts", "worksheet", "report")

# One decision per generated row. r1 picks the task type, r2 the kind of attempt, r3 the outcome,
# r4/r7 the latency, r5/r6 the token counts.
DECISIONS = """
WITH g AS (
    SELECT %(start)s::timestamptz + (i::float8 / %(n)s) * interval '1 day' AS ts,
           random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
           random() AS r6, random() AS r7
    FROM generate_series(0::bigint, %(n)s - 1) AS i
), t AS (
    SELECT *, CASE WHEN r1 < 0.30 THEN 'extraction' WHEN r1 < 0.65 THEN 'chat' WHEN r1 < 0.80 THEN 'summarize'
                   WHEN r1 < 0.95 THEN 'classify' ELSE 'long_doc' END AS task
    FROM g
), s AS (
    SELECT *,
           CASE task WHEN 'extraction' THEN 'extraction' WHEN 'long_doc' THEN 'long_context' ELSE 'general' END
               AS route,
           CASE WHEN task = 'long_doc' THEN 'gem'
                WHEN task = 'extraction' THEN CASE WHEN r2 < 0.70 THEN 't1' WHEN r2 < 0.72 THEN 'f1'
                                                   WHEN r2 < 0.92 THEN 't2' WHEN r2 < 0.93 THEN 'f2' ELSE 't3' END
                ELSE CASE WHEN r2 < 0.72 THEN 't1' WHEN r2 < 0.75 THEN 'f1' ELSE 't2' END END AS step,
           (200 + floor(r5 * 3000))::int AS tin, (50 + floor(r6 * 600))::int AS tout
    FROM t
)
SELECT ts, %(policy)s AS policy_id,
       (CASE WHEN ts < %(v2)s THEN 1 WHEN ts < %(v3)s THEN 2 ELSE 3 END) AS policy_version,
       route, task AS task_type,
       (CASE step WHEN 't1' THEN 'gpt-4o-mini' WHEN 'f1' THEN 'claude-3-5-haiku-20241022' WHEN 't2' THEN 'gpt-4o'
                  WHEN 'f2' THEN 'claude-3-5-sonnet-20241022' WHEN 't3' THEN 'o1' ELSE 'gemini-1.5-flash' END)
           AS model,
       (CASE step WHEN 'f1' THEN 'anthropic' WHEN 'f2' THEN 'anthropic' WHEN 'gem' THEN 'gemini' ELSE 'openai' END)
           AS provider,
       (CASE step WHEN 't2' THEN 2 WHEN 'f2' THEN 2 WHEN 't3' THEN 3 ELSE 1 END)::smallint AS tier,
       (CASE WHEN r3 < 0.86 THEN 'ok' WHEN r3 < 0.92 THEN 'low_confidence' WHEN r3 < 0.95 THEN 'validation_failed'
             WHEN r3 < 0.97 THEN 'error' WHEN r3 < 0.99 THEN 'timeout' ELSE 'rate_limited' END) AS outcome,
       (CASE step WHEN 't1' THEN 1 WHEN 'gem' THEN 1 WHEN 'f1' THEN 2 WHEN 't2' THEN 2 ELSE 3 END)::smallint
           AS attempt,
       step IN ('t2', 't3') AS escalated,
       round((tin * (CASE step WHEN 't1' THEN 0.15 WHEN 'f1' THEN 0.80 WHEN 't2' THEN 2.50 WHEN 'f2' THEN 3.00
                                   WHEN 't3' THEN 15.00 ELSE 0.075 END)
              + tout * (CASE step WHEN 't1' THEN 0.60 WHEN 'f1' THEN 4.00 WHEN 't2' THEN 10.00 WHEN 'f2' THEN 15.00
                                   WHEN 't3' THEN 60.00 ELSE 0.30 END)) / 1e6, 12)::numeric AS cost_usd,
       tin AS tokens_in, tout AS tokens_out, round(r7::numeric, 3)::float8 AS confidence,
       round(((CASE step WHEN 't2' THEN 1100 WHEN 'f2' THEN 1300 WHEN 't3' THEN 4200 WHEN 'f1' THEN 650 ELSE 320 END)
              * exp(0.55 * sqrt(-2 * ln(1 - r4)) * cos(2 * pi() * r7)))::numeric, 3)::float8 AS latency_ms
FROM s
"""


def window(now: datetime) -> tuple[datetime, datetime, datetime]:
    """(first day generated, first day of the report month, first day after it)."""
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    report = (this_month - timedelta(days=1)).replace(day=1)
    return (report - timedelta(days=1)).replace(day=1), report, this_month


# -------------------------------------------------------------------------------------- setup (child)


def setup(decisions: int) -> None:
    """Runs in a child process against one database: the policy, its versions, a viewer, some
    alerts, the rollups of `decisions` decisions, and a logged-in session (its key on stdout)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from metrics.models import Alert
    from metrics.rollups import sql
    from routing import services
    from routing.models import PolicyVersion
    from tests import factories

    now = datetime.now(UTC)
    start, month, _ = window(now)
    doc = factories.document(budget={"daily_usd": 400, "monthly_usd": 9000, "downgrade_at": 0.9})
    doc["task_types"].update({"summarize": "general", "classify": "general", "long_doc": "long_context"})
    policy = factories.policy("checkout", doc=doc)
    factories.publish(policy, {**doc, "default_route": "extraction"}, comment="unknown tasks to extraction")
    services.policy_rollback(policy=policy, to_number=1, user=None, comment="extraction got expensive")
    v2, v3 = month + timedelta(days=9, hours=14), month + timedelta(days=17, hours=14)
    for number, when in ((1, start - timedelta(days=20)), (2, v2), (3, v3)):
        PolicyVersion.objects.filter(policy=policy, number=number).update(published_at=when)
    user = User.objects.create_user(USERNAME, password="bench-Signalbox-1", is_staff=True)
    user.groups.add(Group.objects.get(name="viewer"))
    Alert.objects.bulk_create(
        [
            Alert(
                policy=policy,
                route=route,
                detector=detector,
                severity="ticket",
                status="resolved",
                summary=f"{detector} on {route}",
                evidence={"window": "24h"},
                opened_at=month + timedelta(days=d),
                last_evaluated_at=month + timedelta(days=d, hours=6),
                resolved_at=month + timedelta(days=d, hours=6),
            )
            for d, (route, detector) in enumerate(
                [
                    ("extraction", "escalation_band"),
                    ("general", "pass_rate_drop"),
                    ("general", "latency_p95_regression"),
                    ("", "budget_forecast"),
                ]
                * 5
            )
        ]
    )

    days = (now - start).days + 1
    per_day = decisions // days
    statement = f"INSERT INTO metrics_rollup_hourly ({sql.DIMENSIONS}, {sql.MEASURES}) " + sql.aggregate_rows_sql(
        "postgresql", f"({DECISIONS}) AS d"
    )
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        for day in range(days):
            n = per_day + (1 if day < decisions - per_day * days else 0)
            cursor.execute(
                statement, {"start": start + timedelta(days=day), "n": n, "policy": policy.pk, "v2": v2, "v3": v3}
            )
            print(f"\r  {decisions:,}: day {day + 1}/{days}", end="", file=sys.stderr, flush=True)
        cursor.execute("VACUUM ANALYZE metrics_rollup_hourly")
        cursor.execute("VACUUM ANALYZE metrics_rollup_daily")
        cursor.execute("SELECT count(*) FROM metrics_rollup_hourly")
        hourly = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM metrics_rollup_daily")
        daily = cursor.fetchone()[0]
        cursor.execute("SELECT sum(count) FROM metrics_rollup_hourly")
        total = cursor.fetchone()[0]
    print(
        f"\n  {total:,} decisions over {days} days -> {hourly:,} hourly and {daily:,} daily cells "
        f"in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )

    session = __import__(settings.SESSION_ENGINE, fromlist=["SessionStore"]).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    # the backend that logs people in (axes' lockout backend, listed first, authenticates no one)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    print(
        json.dumps(
            {"session": session.session_key, "decisions": int(total), "hourly_cells": hourly, "daily_cells": daily}
        )
    )


# --------------------------------------------------------------------------------------------- main


def env_for(db: str) -> dict[str, str]:
    return bench_env(db, DJANGO_SETTINGS_MODULE="tests.benchmarks.bench_pages_settings")


def build(db: str, decisions: int, keep: bool) -> dict[str, object]:
    env = env_for(db)
    state = ROOT / "var" / f"{db}.json"
    if keep and state.exists():
        return json.loads(state.read_text())
    recreate_database(db)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [sys.executable, __file__, "--setup", "--decisions", str(decisions)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    sys.stderr.write(out.stderr)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    state.parent.mkdir(exist_ok=True)
    state.write_text(json.dumps(info))
    return info


def paths(now: datetime) -> dict[str, str]:
    _, month, _ = window(now)
    dashboards = {
        name: ("/dashboards/" if name == "overview" else f"/dashboards/{name}/") + "?policy=checkout"
        for name in PAGES
        if name != "report"
    }
    return {**dashboards, "report": f"/reports/checkout/{month:%Y-%m}/"}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=25, help="timed requests per page and size (≥ 20)")
    parser.add_argument("--keep", action="store_true", help="reuse the databases of a previous run")
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup:
        setup(args.decisions)
        return
    import httpx

    sizes = {
        "small": ("signalbox_bench_pages_small", args.baseline),
        "large": ("signalbox_bench_pages_large", args.decisions),
    }
    infos = {size: build(db, n, args.keep) for size, (db, n) in sizes.items()}
    urls = paths(datetime.now(UTC))
    times: dict[str, dict[str, list[float]]] = {size: {page: [] for page in urls} for size in sizes}
    with (
        gunicorn(env_for(sizes["small"][0]), workers=1) as small_url,
        gunicorn(env_for(sizes["large"][0]), workers=1) as large_url,
    ):
        clients = {
            size: httpx.Client(base_url=url, timeout=60, headers={"Cookie": f"sessionid={infos[size]['session']}"})
            for size, url in (("small", small_url), ("large", large_url))
        }
        try:
            for _ in range(2):  # warm-up: imports, connections, plan caches
                for page, path in urls.items():
                    for size, client in clients.items():
                        response = client.get(path)
                        assert response.status_code == 200, (size, page, response.status_code)
            for _ in range(args.requests):
                for page, path in urls.items():
                    for size, client in clients.items():
                        t0 = time.perf_counter()
                        response = client.get(path)
                        times[size][page].append((time.perf_counter() - t0) * 1000)
                        assert response.status_code == 200, (size, page, response.status_code)
        finally:
            for client in clients.values():
                client.close()

    small_n, large_n = infos["small"]["decisions"], infos["large"]["decisions"]
    print(
        f"\nServer time per page, {args.requests} requests each, alternating sizes "
        f"({small_n:,} vs {large_n:,} decisions; {infos['small']['daily_cells']:,} vs "
        f"{infos['large']['daily_cells']:,} daily cells):"
    )
    print(
        f"{'page':<11} {'p50 small':>10} {'p95 small':>10} {'p50 large':>10} {'p95 large':>10} {'p95 ratio':>10}"
        f"  target p95 ≤ {TARGET_MS:.0f} ms at large"
    )
    result = {}
    for page in urls:
        s, la = times["small"][page], times["large"][page]
        row = {
            "p50_small_ms": statistics.median(s),
            "p95_small_ms": p95(s),
            "p50_large_ms": statistics.median(la),
            "p95_large_ms": p95(la),
        }
        row["p95_ratio"] = row["p95_large_ms"] / row["p95_small_ms"]
        result[page] = {k: round(v, 2) for k, v in row.items()}
        print(
            f"{page:<11} {row['p50_small_ms']:>9.1f}  {row['p95_small_ms']:>9.1f}  {row['p50_large_ms']:>9.1f}  "
            f"{row['p95_large_ms']:>9.1f}  {row['p95_ratio']:>9.2f}  "
            f"{'ok' if row['p95_large_ms'] <= TARGET_MS else 'MISSED'}"
        )
    print(json.dumps({"decisions": large_n, "baseline_decisions": small_n, "requests": args.requests, "pages": result}))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.benchmarks.bench_settings")
    main()
