"""Load and soak: policy fetch (200 and 304) and ingestion together under wrk, against gunicorn and a
Celery worker folding rollups.

    uv run --locked --all-extras python tests/benchmarks/load.py [--seconds 30]
    uv run --locked --all-extras python tests/benchmarks/load.py --soak 600

A freshly created benchmark database on the PostgreSQL of BENCH_PG (never a test database), a
private redis-server (shared cache and broker) on a free port, gunicorn (2 sync workers,
production settings) and `celery worker -P prefork -c 1`. Three wrk processes run at once, one per
kind of traffic, each with one thread and its own Lua script (tests/benchmarks/load/):
  fetch-200  GET /api/v1/client/policies/support-assistant, no If-None-Match: the document;
  fetch-304  the same with the current ETag: 304, no body;
  ingest     POST /api/v1/client/decisions, batches of --batch records with unique event ids.
Each script checks every answer (200 with a body / 304 / 200 with every record accepted) and
counts anything else as an error. Afterwards the rollups are brought up to date and compared with a
GROUP BY over the raw rows; the raw table must hold exactly the records of the accepted batches.

--soak N runs N seconds at a throttled rate (--delay-ms per request per connection, default 20)
and samples the resident memory (VmRSS) of every gunicorn worker and of the Celery worker processes
every --sample seconds; it reports each process's memory slope (MiB/min, least squares) over the
whole run and over its second half.
Exit status 1 when any request failed or the stored data disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._server import PG, bench_env, need_wrk, recreate_database
from tests.hardening._stack import CeleryWorker, Gunicorn, PrivateRedis, rss_mb, run, wait_for

DB = "signalbox_bench_load"
SLUG = "support-assistant"
LUA = Path(__file__).resolve().parent / "load"

SETUP = """
import django; django.setup()
from routing.demo import demo_routing_load, demo_sdk_key
report, policies = demo_routing_load()
print(demo_sdk_key(policies)[1])
"""


def slope_per_minute(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) samples, in MiB per minute."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return None
    return 60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / var


def wrk_process(url: str, script: str, args: list[str], *, seconds: int, connections: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            need_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(LUA / script),
            url,
            "--",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wrk_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate()
    match = re.search(r"^WRKJSON (.*)$", out, re.M)
    if proc.returncode or match is None:
        sys.exit(f"wrk failed ({proc.returncode}):\n{out[-3000:]}")
    return json.loads(match.group(1))


class Sampler(threading.Thread):
    """VmRSS of the web and worker processes every `interval` seconds."""

    def __init__(self, web: Gunicorn, worker: CeleryWorker, interval: float) -> None:
        super().__init__(daemon=True)
        self.web, self.worker, self.interval = web, worker, interval
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self.stop = threading.Event()
        self.started = time.monotonic()

    def processes(self) -> dict[str, int]:
        named: dict[str, int] = {}
        for pid in self.web.worker_pids():
            named[f"gunicorn worker {pid}"] = pid
        if self.worker.proc is not None:
            named[f"celery main {self.worker.proc.pid}"] = self.worker.proc.pid
        for pid in self.worker.child_pids():
            named[f"celery child {pid}"] = pid
        return named

    def run(self) -> None:
        while True:
            now = time.monotonic() - self.started
            for name, pid in self.processes().items():
                mb = rss_mb(pid)
                if mb is not None:
                    self.samples.setdefault(name, []).append((now, mb))
            if self.stop.wait(self.interval):
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="length of the load run")
    parser.add_argument("--soak", type=int, default=0, metavar="SECONDS", help="soak mode: run this long, throttled")
    parser.add_argument("--batch", type=int, default=100, help="records per ingest request")
    parser.add_argument(
        "--delay-ms", type=int, default=None, help="pause per request per connection (default 0, soak 20)"
    )
    parser.add_argument("--sample", type=float, default=10.0, help="soak: seconds between RSS samples")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    args = parser.parse_args()
    soak = args.soak > 0
    seconds = args.soak if soak else args.seconds
    delay = args.delay_ms if args.delay_ms is not None else (20 if soak else 0)
    need_wrk()

    recreate_database(DB)
    workdir = Path(tempfile.mkdtemp(prefix="signalbox-load-"))
    redis = PrivateRedis(workdir, "load")
    web = worker = None
    failed = False
    try:
        redis.start()
        env = bench_env(DB, CACHE_URL=redis.url(0), CELERY_BROKER_URL=redis.url(1), LOG_LEVEL="WARNING")
        run([sys.executable, "manage.py", "migrate", "-v0"], env)
        key = run([sys.executable, "-c", SETUP], env).strip().splitlines()[-1]
        web = Gunicorn(env, workdir / "gunicorn.log", workers=2)
        web.start()
        worker = CeleryWorker(env, workdir / "worker.log")
        worker.start()
        policy_url = f"{web.url}/api/v1/client/policies/{SLUG}"
        with urllib.request.urlopen(
            urllib.request.Request(policy_url, headers={"Authorization": f"Bearer {key}"})
        ) as response:
            etag = response.headers["ETag"]
        ts = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")

        def start_all(length: int) -> dict[str, subprocess.Popen[str]]:
            return {
                "fetch-200": wrk_process(
                    policy_url, "fetch.lua", [key, "-", str(delay)], seconds=length, connections=2
                ),
                "fetch-304": wrk_process(
                    policy_url, "fetch.lua", [key, etag, str(delay)], seconds=length, connections=4
                ),
                "ingest": wrk_process(
                    f"{web.url}/api/v1/client/decisions",
                    "ingest.lua",
                    [key, ts, str(args.batch), uuid.uuid4().hex[:8], str(delay * 5)],
                    seconds=length,
                    connections=2,
                ),
            }

        warm = {name: wrk_result(p) for name, p in start_all(3).items()}  # warm every worker
        sampler = Sampler(web, worker, args.sample)
        print(
            f"{'soak' if soak else 'load'}: {seconds} s, fetch-200 ×2 / fetch-304 ×4 / ingest ×2 connections "
            f"(batches of {args.batch}), delay {delay} ms per request (ingest {delay * 5} ms)",
            flush=True,
        )
        pids_before = web.worker_pids()
        if soak:
            sampler.start()
        results = {name: wrk_result(p) for name, p in start_all(seconds).items()}
        sampler.stop.set()
        if soak:
            sampler.join()

        # Rollups: a final fold (what beat's minute tick does), then compare with the raw rows.
        from celery import Celery

        app = Celery("signalbox-load", broker=redis.url(1))
        app.send_task("metrics.rollups_update")
        app.close()
        import psycopg

        with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
            wait_for(
                lambda: conn.execute("SELECT count(*) FROM metrics_rollup_inbox").fetchone()[0] == 0,
                300,
                "rollups did not catch up",
                interval=0.5,
            )
            rows, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM metrics_decision").fetchone()
            rolled = int(conn.execute("SELECT coalesce(sum(count), 0) FROM metrics_rollup_hourly").fetchone()[0])
        accepted_batches = sum(r["ok"] for r in (warm["ingest"], results["ingest"]))

        print(
            f"\n{'traffic':10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8} {'errors':>7}"
        )
        for name, r in results.items():
            errors = r["bad"] + r["short"] + r["socket_errors"]
            failed |= errors > 0
            print(
                f"{name:10} {r['requests']:9,} {r['requests'] / (r['duration_us'] / 1e6):8,.0f} "
                f"{r['p50_us'] / 1000:8.1f} {r['p90_us'] / 1000:8.1f} {r['p99_us'] / 1000:8.1f} "
                f"{r['max_us'] / 1000:8.1f} {errors:7}"
            )
        ingest = results["ingest"]
        decisions_per_s = ingest["ok"] * args.batch / (ingest["duration_us"] / 1e6)
        print(
            f"ingestion: {decisions_per_s:,.0f} decisions/s; stored {rows:,} rows ({distinct:,} distinct event "
            f"ids) for {accepted_batches:,} accepted batches of {args.batch}; rollups hold {rolled:,}"
        )
        # wrk stops with requests in flight (at most one per connection and run): the server stores
        # those batches but wrk never counts their answers.
        in_flight = (rows - accepted_batches * args.batch) / args.batch
        data_ok = rows == distinct == rolled and 0 <= in_flight <= 2 * 2 and in_flight == int(in_flight)
        failed |= not data_ok
        print(
            "stored data: "
            + (
                f"exact (raw = accepted + {in_flight:.0f} batches in flight at the stop, no duplicate, rollups = raw)"
                if data_ok
                else "MISMATCH"
            )
        )

        slopes: dict[str, dict[str, Any]] = {}
        if soak:
            print(f"\nmemory (VmRSS) every {args.sample:.0f} s: slope in MiB/min, least squares")
            print(f"{'process':28} {'samples':>7} {'first':>8} {'last':>8} {'max':>8} {'slope':>8} {'2nd half':>9}")
            for name, samples in sorted(sampler.samples.items()):
                half = [s for s in samples if s[0] >= samples[-1][0] / 2]
                whole, late = slope_per_minute(samples), slope_per_minute(half)
                slopes[name] = {
                    "samples": len(samples),
                    "first_mb": round(samples[0][1], 1),
                    "last_mb": round(samples[-1][1], 1),
                    "slope_mb_per_min": whole and round(whole, 3),
                    "second_half_slope": late and round(late, 3),
                }
                print(
                    f"{name:28} {len(samples):7} {samples[0][1]:8.1f} {samples[-1][1]:8.1f} "
                    f"{max(m for _, m in samples):8.1f} {whole or 0:8.3f} {late or 0:9.3f}"
                )
        restarts = len(set(pids_before) ^ set(web.worker_pids()))
        print(
            json.dumps(
                {
                    "mode": "soak" if soak else "load",
                    "seconds": seconds,
                    "delay_ms": delay,
                    "results": results,
                    "decisions_per_s": round(decisions_per_s),
                    "stored_rows": rows,
                    "rollup_count": rolled,
                    "data_exact": data_ok,
                    "gunicorn_workers_replaced": restarts,
                    "memory": slopes,
                }
            )
        )
    finally:
        for server in (worker, web, redis):
            if server is not None:
                server.stop()
        if not args.keep_db:
            import psycopg

            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        if not os.environ.get("SIGNALBOX_FAULTS_KEEP"):
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
