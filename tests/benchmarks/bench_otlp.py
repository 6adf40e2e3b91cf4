"""Benchmark: OTLP/HTTP GenAI span ingestion (POST /v1/traces, protobuf) against the client
protocol's own upload (POST /api/v1/client/decisions, JSON), in the same run on the same server.

    uv run --locked --all-extras python tests/benchmarks/bench_otlp.py [--batches 100 --rounds 3 --workers 2]

The decisions of bench_ingest.py (same generator and seed) are sent both ways: as JSON batches of
1,000 records, and as OTLP exports of 1,000 GenAI spans carrying the same model, provider, tokens,
route, task type, tier and attempt in `gen_ai.*` / `signalbox.*` attributes. Gunicorn sync
workers, production settings, Redis cache and broker (no Celery worker: rollup tasks just queue).
The raw table is emptied between runs. Prints records/s for both (median of the rounds) and the
ratio OTLP / client upload. Target (issue #16): ratio ≥ 0.5.
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
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from signalbox_client.protocol import DECISIONS_PATH, OTLP_TRACES_PATH
from tests.benchmarks._server import PG, ROOT, bench_env, gunicorn, recreate_database
from tests.benchmarks.bench_ingest import BATCH, SETUP, empty_tables, make_records

DB = "signalbox_bench_otlp"


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool) or not isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(string_value=str(value)))
    return KeyValue(key=key, value=AnyValue(int_value=value))


def otlp_body(records: list[dict[str, Any]], rng: random.Random) -> bytes:
    """One OTLP export of the records as GenAI spans."""
    export = ExportTraceServiceRequest()
    resource_spans = export.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [_kv("service.name", "checkout-api"), _kv("telemetry.sdk.language", "python")]
    )
    scope = resource_spans.scope_spans.add()
    for r in records:
        span = scope.spans.add()
        span.trace_id = rng.getrandbits(128).to_bytes(16, "big")
        span.span_id = rng.getrandbits(64).to_bytes(8, "big")
        span.name = f"chat {r['model']}"
        start = int(datetime.fromisoformat(r["timestamp"]).timestamp() * 1e9)
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start + int(r["latency_ms"] * 1e6)
        span.attributes.extend(
            [
                _kv("gen_ai.operation.name", "chat"),
                _kv("gen_ai.provider.name", r["provider"]),
                _kv("gen_ai.request.model", r["model"]),
                _kv("gen_ai.usage.input_tokens", r["tokens_in"]),
                _kv("gen_ai.usage.output_tokens", r["tokens_out"]),
                _kv("signalbox.policy", r["policy"]),
                _kv("signalbox.route", r["route"]),
                _kv("signalbox.task_type", r["task_type"]),
                _kv("signalbox.tier", r["tier"]),
                _kv("signalbox.attempt", r["attempt"]),
            ]
        )
        if r["outcome"] != "ok":
            span.status.code = 2
            span.attributes.append(_kv("error.type", r["outcome"]))
    return export.SerializeToString()


def run(base: str, key: str, path: str, content_type: str, bodies: list[bytes], clients: int) -> float:
    """POST every body from `clients` threads; return bodies x BATCH / elapsed seconds."""
    target = urlparse(base)
    queue = list(reversed(bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
        conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {key}", "Content-Type": content_type})
        response = conn.getresponse()
        return response.status, response.read()

    def worker() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            try:
                status, content = post(conn, body)
            except (http.client.HTTPException, OSError):  # sync workers close after each response
                conn.close()
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                status, content = post(conn, body)
            if status != 200:
                failures.append(f"{status} {content[:200]!r}")
            elif path == OTLP_TRACES_PATH:
                answer = ExportTraceServiceResponse()
                answer.ParseFromString(content)
                if answer.partial_success.rejected_spans:
                    failures.append(answer.partial_success.error_message)
            elif json.loads(content)["rejected"]:
                failures.append(content[:200].decode())
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
    return len(bodies) * BATCH / elapsed


def stored(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM metrics_decision").fetchone()
        return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100, help="batches (exports) of 1,000 per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4, help="load-generator threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    args = parser.parse_args()

    recreate_database(DB)
    url = f"{PG}/{DB}"
    env = bench_env(DB, CELERY_BROKER_URL="redis://127.0.0.1:6379/14")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    key = out[-2]
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

    rng = random.Random(42)
    records = make_records(args.batches * BATCH, rng)
    for r in records:  # the versions the demo publishes: the span names none, so the live one is used
        r.pop("policy_version")
    chunks = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
    json_bodies = [
        json.dumps({"decisions": [{**r, "policy_version": 1} for r in chunk]}, separators=(",", ":")).encode()
        for chunk in chunks
    ]
    otlp_bodies = [otlp_body(chunk, rng) for chunk in chunks]
    print(
        f"{len(records):,} records: JSON {statistics.mean(map(len, json_bodies)) / 1024:.0f} KiB per batch, "
        f"OTLP {statistics.mean(map(len, otlp_bodies)) / 1024:.0f} KiB per export"
    )

    client_rates: list[float] = []
    otlp_rates: list[float] = []
    with gunicorn(env, workers=args.workers) as base:
        run(base, key, DECISIONS_PATH, "application/json", json_bodies[:4], args.clients)
        run(base, key, OTLP_TRACES_PATH, "application/x-protobuf", otlp_bodies[:4], args.clients)
        empty_tables(url)
        for round_no in range(args.rounds):
            client_rates.append(run(base, key, DECISIONS_PATH, "application/json", json_bodies, args.clients))
            if stored(url) != len(records):
                sys.exit("the client upload did not store every record")
            empty_tables(url)
            otlp_rates.append(run(base, key, OTLP_TRACES_PATH, "application/x-protobuf", otlp_bodies, args.clients))
            if stored(url) != len(records):
                sys.exit("the OTLP export did not store every span")
            empty_tables(url)
            print(f"  round {round_no + 1}: client upload {client_rates[-1]:,.0f}/s   OTLP {otlp_rates[-1]:,.0f}/s")

    client, otlp = statistics.median(client_rates), statistics.median(otlp_rates)
    print(f"client upload (JSON, {args.workers} sync workers, {args.clients} clients): {client:10,.0f} records/s")
    print(f"OTLP/HTTP protobuf export, same server:                     {otlp:10,.0f} spans/s")
    print(f"ratio OTLP / client upload: {otlp / client:.2f}   (target ≥ 0.5)")
    print(json.dumps({"workers": args.workers, "client_per_s": round(client), "otlp_per_s": round(otlp)}))


if __name__ == "__main__":
    main()
