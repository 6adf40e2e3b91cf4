"""Benchmark decide(): p50/p99 per call against a plain dict lookup baseline.

Run: python tests/benchmarks/bench_decide.py [--dimension-budgets] [--against REV]

With --against REV (a git revision, e.g. main) the engine as it was at REV is copied into a
temporary directory, imported as a separate package and measured in the same process, its rounds
interleaved with the current engine's, each on its own compiled policy and its own Request objects
built from the same data: on a busy machine both see the same load, so their ratio is the figure
to quote. Requests are reused across rounds, so work cached on a Request (its lower-cased text) is
paid once per request, in the warm-up, for both engines alike.

With --dimension-budgets the policy also budgets 20 of the 40 teams the requests carry
(`dimension_budgets`), and the state has a fraction for each, half of them past downgrade_at.
"""

from __future__ import annotations

import importlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from signalbox_client.engine import BudgetFraction, Request, State, compile_policy, decide

N_ROUTES, N_RULES, N_REQUESTS = 20, 30, 1000
ROUNDS = 30

MODELS = {
    "small-a": {"provider": "openai", "context_window": 128000, "supports_vision": True, "supports_tools": True},
    "small-b": {"provider": "anthropic", "context_window": 200000, "supports_vision": True, "supports_tools": True},
    "mid-a": {"provider": "openai", "context_window": 128000, "supports_vision": True, "supports_tools": True},
    "mid-b": {"provider": "anthropic", "context_window": 200000, "supports_vision": True, "supports_tools": True},
    "big-a": {"provider": "openai", "context_window": 200000, "supports_vision": False, "supports_tools": True},
    "big-b": {"provider": "google", "context_window": 1000000, "supports_vision": True, "supports_tools": True},
    "canary": {"provider": "openai", "context_window": 128000, "supports_vision": True, "supports_tools": True},
    "local": {"provider": "vllm", "context_window": 8192, "supports_vision": False, "supports_tools": False},
}


def build_document(rng: random.Random) -> dict:
    routes = {}
    for i in range(N_ROUTES):
        route: dict = {
            "tiers": [
                {"model": "small-a", "fallbacks": ["small-b"], "expected_latency_ms": 800},
                {"model": "mid-a", "fallbacks": ["mid-b"], "expected_latency_ms": 2000},
                {"model": "big-a", "fallbacks": ["big-b"], "expected_latency_ms": 6000},
            ],
            "escalate": {"min_confidence": 0.7, "on_validation_failure": True, "max_depth": 2},
            "latency_budget_ms": 15000,
            "budget": {"daily_usd": 100, "monthly_usd": 2000, "downgrade_at": 0.8},
        }
        if i % 2 == 0:
            route["score"] = {"source": "auto", "thresholds": [0.4, 0.75]}
        if i % 4 == 1:
            route["split"] = {
                "key": "user_id",
                "salt": f"exp-{i}",
                "arms": [{"name": "control", "weight": 80}, {"name": "canary", "weight": 20, "model": "canary"}],
            }
        if i % 7 == 3:
            route["critical"] = True
        routes[f"route_{i}"] = route
    routes["route_local"] = {"tiers": [{"model": "local", "fallbacks": ["small-a"]}, {"model": "mid-a"}]}
    rules = []
    # A realistic mix: mostly structured conditions, a few keyword rules, two regex rules.
    structured = [
        lambda k: {"field": "context_tokens", "op": "gt", "value": 150000 + k},
        lambda k: {
            "and": [
                {"field": "user_tier", "op": "eq", "value": f"tier-{k}"},
                {"field": "risk", "op": "in", "value": ["high", "critical"]},
            ]
        },
        lambda k: {"field": "attributes.team", "op": "eq", "value": f"team-{k}"},
        lambda k: {
            "and": [
                {"field": "use_case", "op": "eq", "value": f"uc-{k}"},
                {"not": {"field": "latency_class", "op": "eq", "value": "batch"}},
            ]
        },
        lambda k: {
            "or": [
                {"field": "needs_vision", "op": "eq", "value": True},
                {"field": "attributes.region", "op": "in", "value": [f"r{k}", "eu-x"]},
            ]
        },
    ]
    text_rules = {
        7: {"field": "text", "op": "regex", "value": r"(?i)contract|liability"},
        19: {"field": "text", "op": "regex", "value": r"\bINV-\d{6}\b"},
        3: {"field": "text", "op": "contains_any", "value": ["kw3", "term3"]},
        11: {"field": "text", "op": "contains_any", "value": ["kw11", "lawsuit", "gdpr"]},
        23: {"field": "text", "op": "contains_any", "value": ["kw23", "diagnosis"]},
        27: {"field": "text", "op": "contains_any", "value": ["kw27"]},
    }
    for k in range(N_RULES):
        when = text_rules.get(k) or structured[k % len(structured)](k)
        rule = {"id": f"rule-{k}", "when": when, "route": f"route_{k % N_ROUTES}"}
        if k % 5 == 0:
            rule["tier"] = 2
        rules.append(rule)
    return {
        "schema_version": 1,
        "default_route": "route_0",
        "task_types": {f"task_{i}": f"route_{i % N_ROUTES}" for i in range(40)},
        "rules": rules,
        "routes": routes,
        "budget": {"daily_usd": 1000, "monthly_usd": 20000, "downgrade_at": 0.9},
    }


WORDS = [
    *("please", "summarise", "the", "following", "text", "and", "list", "the", "key", "points"),
    *("why", "does", "this", "happen", "compare", "both", "options", "analyze", "the", "results"),
]


def build_requests(rng: random.Random, request_type: type = Request) -> list:
    requests = []
    for i in range(N_REQUESTS):
        words = rng.randint(5, 200)
        text = " ".join(rng.choice(WORDS) for _ in range(words))
        if rng.random() < 0.05:
            text += f" kw{rng.randrange(N_RULES)}"
        prompt = words * 2
        requests.append(
            request_type(
                task_type=f"task_{rng.randrange(50)}",
                prompt_tokens=prompt,
                context_tokens=rng.choice([prompt + 500, prompt + 500, 160000, 9000]),
                text=text,
                user_id=f"user-{rng.randrange(5000)}",
                request_id=f"req-{i}",
                user_tier=rng.choice(["free", "pro", "enterprise", "tier-1"]),
                risk=rng.choice(["low", "high", None]),
                use_case=rng.choice([None, "uc-11", "support"]),
                needs_tools=rng.random() < 0.2,
                needs_vision=rng.random() < 0.05,
                latency_class=rng.choice(["interactive", "batch", None]),
                score=rng.choice([None, None, rng.random()]),
                critical=rng.random() < 0.05,
                attributes={"team": f"team-{rng.randrange(40)}"},
            )
        )
    return requests


def measure(fn, items, rounds: int) -> list[float]:
    """Per-call time in µs for each (round, item), timing each call with perf_counter_ns."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(rounds):
        for item in items:
            t0 = clock()
            fn(item)
            samples.append((clock() - t0) / 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def baseline_engine(rev: str, into: Path):
    """The engine package as it was at git revision ``rev``, imported from a copy under ``into``."""
    root = Path(__file__).resolve().parents[2]
    engine = "routing/client/signalbox_client/engine"
    target = into / "signalbox_engine_baseline"
    target.mkdir()
    listing = subprocess.run(
        ["git", "-C", str(root), "ls-tree", "--name-only", f"{rev}:{engine}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in listing:
        blob = subprocess.run(["git", "-C", str(root), "show", f"{rev}:{engine}/{name}"], capture_output=True)
        if blob.returncode == 0:  # a sub-folder (the conformance cases) is not needed
            (target / name).write_bytes(blob.stdout)
    sys.path.insert(0, str(into))
    return importlib.import_module("signalbox_engine_baseline")


def against(rev: str) -> None:
    """Measure the current engine and the one at ``rev`` side by side, rounds interleaved."""
    import signalbox_client.engine as current

    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_engine(rev, Path(tmp))
        setups = []
        for eng in (old, current):
            rng = random.Random(7)
            document = build_document(rng)
            policy = eng.compile_policy(document, MODELS)
            requests = build_requests(rng, eng.Request)
            state = eng.State(
                policy=eng.BudgetFraction(0.5, 0.6),
                routes={f"route_{i}": eng.BudgetFraction(0.1 * (i % 10), None) for i in range(N_ROUTES)},
            )
            fn = eng.decide

            def run(r, fn=fn, policy=policy, state=state) -> None:
                fn(policy, r, state)

            measure(run, requests, 3)  # warm-up
            setups.append((run, requests, []))
        for _ in range(ROUNDS):
            for run, requests, samples in setups:
                samples += measure(run, requests, 1)
    (_, _, o), (_, _, n) = setups
    print(f"{N_REQUESTS} requests x {ROUNDS} rounds, rounds interleaved")
    print(
        f"decide() at {rev}: p50 {pct(o, 0.5):6.2f} µs   p99 {pct(o, 0.99):6.2f} µs   "
        f"mean {statistics.fmean(o):6.2f} µs"
    )
    print(f"decide() now:  p50 {pct(n, 0.5):6.2f} µs   p99 {pct(n, 0.99):6.2f} µs   mean {statistics.fmean(n):6.2f} µs")
    print(f"p50 now / p50 at {rev}: {pct(n, 0.5) / pct(o, 0.5):.2f}")


def main() -> None:
    if "--against" in sys.argv[1:]:
        against(sys.argv[sys.argv.index("--against") + 1])
        return
    rng = random.Random(7)
    document = build_document(rng)
    with_dimensions = "--dimension-budgets" in sys.argv[1:]
    if with_dimensions:
        document["dimensions"] = ["team"]
        document["dimension_budgets"] = [
            {"dimension": "team", "value": f"team-{k}", "daily_usd": 10} for k in range(0, 40, 2)
        ]
    policy = compile_policy(document, MODELS)
    requests = build_requests(rng)
    state = State(
        policy=BudgetFraction(0.5, 0.6),
        routes={f"route_{i}": BudgetFraction(0.1 * (i % 10), None) for i in range(N_ROUTES)},
        dimensions={"team": {f"team-{k}": BudgetFraction(0.9 if k % 4 else 0.3, None) for k in range(0, 40, 2)}}
        if with_dimensions
        else {},
    )
    table = dict(document["task_types"])

    def run_decide(r: Request) -> None:
        decide(policy, r, state)

    def run_lookup(r: Request) -> None:
        table.get(r.task_type, "route_0")

    measure(run_decide, requests, 3)  # warm-up
    measure(run_lookup, requests, 3)
    d = measure(run_decide, requests, ROUNDS)
    b = measure(run_lookup, requests, ROUNDS)

    t0 = time.perf_counter_ns()
    for _ in range(5):
        for r in requests:
            decide(policy, r, state)
    batch_us = (time.perf_counter_ns() - t0) / 1000 / (5 * len(requests))

    print(
        f"policy: {len(document['routes'])} routes, {len(document['rules'])} rules, "
        f"{len(document.get('dimension_budgets', []))} dimension budgets; "
        f"{len(requests)} requests x {ROUNDS} rounds"
    )
    print(
        f"decide():        p50 {pct(d, 0.5):6.2f} µs   p99 {pct(d, 0.99):6.2f} µs   "
        f"mean {statistics.fmean(d):6.2f} µs   (loop mean without per-call timer: {batch_us:.2f} µs)"
    )
    print(f"dict lookup:     p50 {pct(b, 0.5):6.2f} µs   p99 {pct(b, 0.99):6.2f} µs")
    print(
        f"ratio p50: {pct(d, 0.5) / pct(b, 0.5):.1f}x   (target: decide() p50 <= 15 µs: "
        f"{'met' if pct(d, 0.5) <= 15 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
