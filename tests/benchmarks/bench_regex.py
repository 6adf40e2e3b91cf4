"""Benchmark: the engine's `decide()` on a 100 kB text with a catastrophic-backtracking rule pattern
against the same with a plain pattern, in one process, rounds interleaved.

    uv run --locked --all-extras python tests/benchmarks/bench_regex.py [--rounds 30 --text-bytes 100000]

One-rule policies, identical except for the rule's pattern: `(a+)+$` and `^(a+)+$` (exponential
on "aaa…a!" under a backtracking engine) against `^a+$` (the same language without the nesting: the
baseline) and the literal `hello world` (found by substring search). Each request is built fresh
from the same text of "a"s ending in "!" (no match: the worst case for backtracking), so its
lower-casing is counted for each. Prints p50/p99 of each and the ratio. Targets (issue #18): the
hostile pattern decides in under 1 ms on 100 kB, at about the plain pattern's cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from signalbox_client.engine import Request, State, compile_policy, decide

MODELS = {"small": {"provider": "openai", "context_window": 128000, "supports_vision": False, "supports_tools": True}}


def document(pattern: str) -> dict:
    return {
        "schema_version": 1,
        "default_route": "general",
        "rules": [{"id": "r", "when": {"field": "text", "op": "regex", "value": pattern}, "route": "flagged"}],
        "routes": {"general": {"tiers": [{"model": "small"}]}, "flagged": {"tiers": [{"model": "small"}]}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--text-bytes", type=int, default=100_000)
    args = parser.parse_args()
    text = "a" * (args.text_bytes - 1) + "!"
    policies = {
        "hostile": compile_policy(document("(a+)+$"), MODELS),
        "anchored": compile_policy(document("^(a+)+$"), MODELS),
        "plain": compile_policy(document("^a+$"), MODELS),
        "literal": compile_policy(document("hello world"), MODELS),
    }
    state = State.from_dict(None)
    times: dict[str, list[float]] = {name: [] for name in policies}
    for r in range(args.rounds):
        for name in sorted(policies, reverse=r % 2 == 1):
            policy = policies[name]
            for _ in range(args.per_round):
                start = time.perf_counter()
                decision = decide(policy, Request.from_dict({"task_type": "chat", "text": text}), state)
                times[name].append(time.perf_counter() - start)
                assert decision.reason["route_by"] != "rule", "the pattern matched"

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6

    for name, values in times.items():
        print(f"{name:>8}: p50 {statistics.median(values) * 1e6:8.1f} µs   p99 {pct(values, 0.99):8.1f} µs")
    ratio = max(statistics.median(times[n]) for n in ("hostile", "anchored")) / statistics.median(times["plain"])
    print(
        f"ratio worst hostile / plain (p50): {ratio:.2f}   "
        f"(target: hostile p50 < 1,000 µs on {args.text_bytes:,} bytes)"
    )
    print(
        json.dumps(
            {
                "text_bytes": args.text_bytes,
                "hostile_p50_us": round(statistics.median(times["hostile"]) * 1e6, 1),
                "anchored_p50_us": round(statistics.median(times["anchored"]) * 1e6, 1),
                "plain_p50_us": round(statistics.median(times["plain"]) * 1e6, 1),
                "literal_p50_us": round(statistics.median(times["literal"]) * 1e6, 1),
                "ratio": round(ratio, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
