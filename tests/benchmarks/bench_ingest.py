"""Benchmark: decision ingestion over HTTP (gunicorn) against the raw idempotent COPY path.

    uv run --locked --all-extras python tests/benchmarks/bench_ingest.py [--batches 200 --rounds 3]

One scratch PostgreSQL database with the real schema (daily partitions, rollup inbox). Each round:
1. raw: psycopg COPY of prepared row tuples into a temp staging table, then one
   INSERT … ON CONFLICT DO NOTHING into the partitioned table, one transaction per 1,000 rows;
2. end to end: the same records, pre-serialized as JSON batches of 1,000, POSTed to
   /api/v1/client/decisions on gunicorn (--workers sync workers, default 4 as in the README's
   production command; production settings, Redis cache and
   broker — no worker runs, rollup tasks just queue) from --clients threads.
The raw table is emptied between runs, so both insert the same rows into the same empty table.
Prints decisions/s for both (median of the rounds), the ratio, and the time rollups_update then
takes to fold what the end-to-end run queued. Targets: ≥ 40,000/s end to end, ratio ≥ 0.6.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._server import PG, ROOT, bench_env, gunicorn, recreate_database

DB = "signalbox_bench_ingest"
BATCH = 1000

SETUP = """
import django; django.setup()
from routing.demo import demo_routing_load, demo_sdk_key
report, policies = demo_routing_load()
print(demo_sdk_key(policies)[1])
print(",".join(f"{p.slug}={p.pk}" for p in policies))
"""

ROUTES = {
    "support-assistant": [
        ("faq", "faq", "gpt-4o-mini", "openai"),
        ("billing", "billing", "claude-sonnet-4-5", "anthropic"),
        ("troubleshooting", "troubleshooting", "gpt-4.1-mini", "openai"),
        ("general", "smalltalk", "gpt-4o-mini", "openai"),
    ],
    "document-pipeline": [
        ("extraction", "extraction", "gpt-4.1-mini", "openai"),
        ("summarization", "summarization", "gemini/gemini-2.5-flash", "gemini"),
        ("classification", "classification", "mistral/mistral-small-latest", "mistral"),
        ("translation", "translation", "deepseek/deepseek-chat", "deepseek"),
    ],
}
OUTCOMES = ["ok"] * 14 + ["low_confidence", "validation_failed", "error", "timeout", "rate_limited"]


def make_records(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """Decision records shaped like the SDK's (reason, client info, a few attributes)."""
    now = datetime.now(UTC)
    records = []
    for i in range(n):
        slug = "support-assistant" if i % 3 else "document-pipeline"
        route, task, model, provider = rng.choice(ROUTES[slug])
        attempt = 1 if rng.random() < 0.8 else 2
        tier = attempt
        records.append(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "timestamp": (now - timedelta(seconds=rng.uniform(0, 36 * 3600))).isoformat().replace("+00:00", "Z"),
                "policy": slug,
                "policy_version": 1,
                "route": route,
                "task_type": task,
                "model": model,
                "provider": provider,
                "tier": tier,
                "attempt": attempt,
                "request_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "reason": (
                    {"route_by": "task_type", "tier_by": "start"}
                    if attempt == 1
                    else {
                        "trigger": "low_confidence",
                        "attempt": 2,
                        "from": {"tier": 1, "model": model},
                        "depth": 1,
                        "confidence": 0.41,
                        "min_confidence": 0.7,
                    }
                ),
                "outcome": rng.choice(OUTCOMES),
                "confidence": round(rng.random(), 3),
                "tokens_in": rng.randint(50, 8000),
                "tokens_out": rng.randint(10, 1500),
                "cost_usd": None,
                "latency_ms": round(rng.lognormvariate(6.5, 0.6), 3),
                "client": {"app": "checkout-api", "instance": f"web-{i % 7}:4242", "sdk_version": "0.1.0"},
                "attributes": {"user_tier": rng.choice(["free", "pro", "enterprise"]), "locale": "en-GB"},
            }
        )
    return records


def raw_rows(records: list[dict[str, Any]], policy_ids: dict[str, int]) -> list[tuple]:
    """The staging-table tuples of `records` (what the service computes, prepared in advance)."""
    return [
        (
            datetime.fromisoformat(r["timestamp"]),
            r["event_id"],
            1,
            policy_ids[r["policy"]],
            r["policy_version"],
            r["route"],
            r["task_type"],
            r["model"],
            r["provider"],
            r["tier"],
            r["attempt"],
            r["attempt"] > 1,
            r["request_id"],
            json.dumps(r["reason"]),
            r["outcome"],
            r["confidence"],
            r["tokens_in"],
            r["tokens_out"],
            r["tokens_in"] * 1e-7,
            False,
            r["latency_ms"],
            r["client"]["app"],
            r["client"]["instance"],
            r["client"]["sdk_version"],
            json.dumps(r["attributes"]),
        )
        for r in records
    ]


def run_raw(url: str, batches: list[list[tuple]]) -> float:
    import psycopg

    from metrics.rollups import sql
    from metrics.schema import POSTGRES_STAGING

    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        for rows in batches:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(POSTGRES_STAGING)
                with cur.copy(sql.STAGING_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(
                    "INSERT INTO metrics_decision SELECT ts, event_id, now(), key_id, policy_id, "
                    "policy_version, route, task_type, model, provider, tier, attempt, escalated, "
                    "request_id, reason, outcome, confidence, tokens_in, tokens_out, cost_usd, "
                    "unpriced, latency_ms, client_app, client_instance, client_sdk_version, "
                    "attributes FROM metrics_decision_staging ON CONFLICT DO NOTHING"
                )
        elapsed = time.perf_counter() - start
    return sum(len(b) for b in batches) / elapsed


def run_http(base: str, key: str, bodies: list[bytes], clients: int) -> tuple[float, int]:
    target = urlparse(base)
    queue = list(reversed(bodies))
    lock = threading.Lock()
    accepted = [0]
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            try:
                conn.request("POST", "/api/v1/client/decisions", body=body, headers=headers)
                response = conn.getresponse()
                content = response.read()
            except (http.client.HTTPException, OSError):  # sync workers close after each response
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                conn.request("POST", "/api/v1/client/decisions", body=body, headers=headers)
                response = conn.getresponse()
                content = response.read()
            if response.status != 200:
                failures.append(f"{response.status} {content[:200]!r}")
                continue
            n = orjson.loads(content)["accepted"]
            with lock:
                accepted[0] += n
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        sys.exit(f"{len(failures)} failed requests, e.g. {failures[0]}")
    return accepted[0] / elapsed, accepted[0]


def empty_tables(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE metrics_decision, metrics_rollup_inbox, metrics_rollup_hourly, metrics_rollup_daily, "
            "metrics_dimension_inbox, metrics_dimension_pending, metrics_dimension_hourly, metrics_dimension_daily, "
            "metrics_dimension_value"
        )
        conn.execute("VACUUM ANALYZE metrics_decision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batches of 1,000 per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="load-generator threads")
    parser.add_argument(
        "--workers", type=int, default=4, help="gunicorn sync workers (4: the README's production command)"
    )
    args = parser.parse_args()

    recreate_database(DB)
    url = f"{PG}/{DB}"
    env = bench_env(DB, CELERY_BROKER_URL="redis://127.0.0.1:6379/14")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = (
        subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()
    )
    key = out[-2]
    policy_ids = {slug: int(pk) for slug, pk in (item.split("=") for item in out[-1].split(","))}

    rng = random.Random(42)
    records = make_records(args.batches * BATCH, rng)
    chunks = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    bodies = [json.dumps({"decisions": chunk}, separators=(",", ":")).encode() for chunk in chunks]
    rows = [raw_rows(chunk, policy_ids) for chunk in chunks]
    print(
        f"{len(records):,} records in {len(bodies)} batches, "
        f"{statistics.mean(len(b) for b in bodies) / 1024:.0f} KiB per batch"
    )

    # Warm-up: the days the records span get their partitions; warm both paths, start empty.
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import django; django.setup(); from datetime import *; "
                "from metrics.ingest.partitions import partitions_ensure; "
                "t = datetime.now(UTC).date(); partitions_ensure([t - timedelta(days=n) for n in range(3)])"
            ),
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    run_raw(url, rows[:5])
    empty_tables(url)
    raw_rates: list[float] = []
    http_rates: list[float] = []
    fold_seconds = 0.0
    with gunicorn(env, workers=args.workers) as base:
        run_http(base, key, bodies[:4], args.clients)
        empty_tables(url)
        for round_no in range(args.rounds):
            raw_rates.append(run_raw(url, rows))
            empty_tables(url)
            rate, accepted = run_http(base, key, bodies, args.clients)
            if accepted != len(records):
                sys.exit(f"end to end accepted {accepted} of {len(records)}")
            http_rates.append(rate)
            if round_no == args.rounds - 1:
                start = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        (
                            "import django; django.setup(); "
                            "from metrics.rollups.services import rollups_update; print(rollups_update())"
                        ),
                    ],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                )
                fold_seconds = time.perf_counter() - start
            empty_tables(url)
            print(f"  round {round_no + 1}: raw {raw_rates[-1]:,.0f}/s   end to end {http_rates[-1]:,.0f}/s")

    raw, e2e = statistics.median(raw_rates), statistics.median(http_rates)
    print(f"raw COPY + staging + INSERT ON CONFLICT (1 connection): {raw:10,.0f} decisions/s")
    print(
        f"end to end over HTTP (gunicorn {args.workers} sync workers, {args.clients} clients): {e2e:10,.0f} decisions/s"
    )
    print(f"ratio end to end / raw: {e2e / raw:.2f}   (targets: ≥ 40,000/s and ≥ 0.6)")
    print(f"rollups_update folding the last round's inbox: {fold_seconds:.2f} s (process start included)")
    print(
        json.dumps(
            {
                "workers": args.workers,
                "raw_per_s": round(raw),
                "e2e_per_s": round(e2e),
                "ratio": round(e2e / raw, 2),
                "rollup_fold_s": round(fold_seconds, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
