"""Client overhead per run(), excluding the LLM call: python tests/benchmarks/bench_client.py

The call is a no-op returning a CallResult; the server is an httpx.MockTransport accepting every
record, so uploads happen in the background thread as in production. Baselines measured in the same
run: a bare call of the same no-op, and the engine's decide() alone. Target: run() p50 <= 50 µs.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from signalbox_client import CallResult, Request, RoutingClient
from signalbox_client.engine import compile_policy, decide
from tests.routing.client.fakes import DOCUMENT, KEY, MODELS, SLUG, body

ITERATIONS = 20_000
WARMUP = 2_000
TARGET_P50_US = 50.0


def accept_all(request: httpx.Request) -> httpx.Response:
    if request.method == "GET":
        return httpx.Response(200, headers={"ETag": '"v1"'}, json=body())
    records = json.loads(request.content)["decisions"]
    results = [{"event_id": r["event_id"], "status": "accepted"} for r in records]
    return httpx.Response(200, json={"results": results, "accepted": len(results), "duplicates": 0, "rejected": 0})


def measure(fn, iterations: int = ITERATIONS) -> list[float]:
    """Per-call wall time in µs."""
    for _ in range(WARMUP):
        fn()
    samples = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for _ in range(iterations):
            start = clock()
            fn()
            samples.append((clock() - start) / 1000.0)
    finally:
        gc.enable()
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


def main() -> int:
    client = RoutingClient(
        "http://bench.test",
        KEY,
        SLUG,
        transport=httpx.MockTransport(accept_all),
        flush_interval=0.2,
        refresh_interval=30.0,
        queue_size=100_000,
    )
    assert client.wait_until_ready(5), "policy did not load"
    result = CallResult("answer", confidence=0.95, tokens_in=500, tokens_out=120)

    def noop(attempt=None):
        return result

    policy = compile_policy(DOCUMENT, MODELS)
    request = Request("support", prompt_tokens=500)

    rows = [
        ("bare no-op call", measure(noop)),
        ("engine decide()", measure(lambda: decide(policy, request, None))),
        ("client decide()", measure(lambda: client.decide("support", prompt_tokens=500))),
        ("client run(), 1 attempt", measure(lambda: client.run("support", noop, prompt_tokens=500))),
    ]
    escalating = {1: CallResult("weak", confidence=0.3), 2: result}
    rows.append(
        (
            "client run(), 2 attempts",
            measure(lambda: client.run("support", lambda a: escalating[a.attempt], prompt_tokens=500)),
        )
    )

    client.flush(timeout=30)
    stats = client.stats()
    client.close()

    print(f"{'operation':<28}{'p50 µs':>10}{'p99 µs':>10}")
    figures = {}
    for name, samples in rows:
        p50, p99 = summary(samples)
        figures[name] = (p50, p99)
        print(f"{name:<28}{p50:>10.2f}{p99:>10.2f}")
    run_p50 = figures["client run(), 1 attempt"][0]
    decide_p50 = figures["engine decide()"][0]
    print(f"\nrun() / engine decide() p50 ratio: {run_p50 / decide_p50:.1f}x")
    print(f"run() overhead over engine decide(): {run_p50 - decide_p50:.2f} µs (p50)")
    print(f"records delivered: {stats.sent} of {stats.recorded}, dropped {stats.dropped}")
    ok = run_p50 <= TARGET_P50_US
    print(f"target run() p50 <= {TARGET_P50_US:.0f} µs: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
