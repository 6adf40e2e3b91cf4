"""Benchmark: client policy fetches while viewers send hostile previews and validations.

    uv run --locked --all-extras python tests/benchmarks/bench_hostile_preview.py [--seconds 8 --rounds 3 --rate 400]

One gunicorn (2 sync workers, production settings, PostgreSQL, Redis as the shared cache) serves a
demo policy whose draft holds the most a document may hold of the worst rules: 100 `regex`
conditions `^(a+)+$` (catastrophic backtracking under a backtracking engine) on the request text.
wrk (1 thread, 8 keep-alive connections) fetches the live policy with an SDK key, alone (the
baseline) and then while `--attackers` threads, each with a viewer's token, send back to back
previews of that draft on a 5,000-character text of "a"s ending in "!" and validations of a
document at the limits, in interleaved rounds so both share the machine's noise.

The fetches are paced at `--rate` requests/s in all, as polling clients send them (`--rate 0`:
back to back, which measures how much the server can answer, not how long a client waits). The
server runs with its defaults: each viewer has a compute budget (API_RATE_LIMIT_COMPUTE; over
it, 429), and one compute slot on the installation (API_COMPUTE_CONCURRENCY; busy, 429 at once),
so one of the two workers is always free for fetches. `--no-compute-limit` turns the budget off
(as if every request came from another user); `--compute-concurrency 2` gives the compute as
many slots as there are workers.

Prints the fetch rate and p99 latency (median of the rounds) with and without the attack, the
ratio, and each hostile request's median time. Target: fetch p99 under attack ≤ 2 × alone, every
hostile request answered (200, 429, or 400 naming the field), none over 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._server import ROOT, bench_env, gunicorn, need_wrk, recreate_database

DB = "signalbox_bench_hostile"
SLUG = "support-assistant"
PATTERN = "^(a+)+$"
TEXT = "a" * 5000 + "!"

SETUP = """
import copy, os, django; django.setup()
from django.contrib.auth.models import Group, User
from routing import selectors, services
from routing.demo import demo_routing_load, demo_sdk_key
from signalbox_client.engine.validation import MAX_REGEXES
report, policies = demo_routing_load()
policy = selectors.policy_get(os.environ["BENCH_SLUG"])
document = copy.deepcopy(selectors.live_document(policy))
first, pattern = next(iter(document["routes"])), os.environ["BENCH_PATTERN"]
document["rules"] = [
    {"id": f"hostile-{i}", "when": {"field": "text", "op": "regex", "value": pattern}, "route": first}
    for i in range(MAX_REGEXES)
] + document.get("rules", [])
services.draft_save(policy=policy, document=document, user=None, rebase=True)
tokens = []
for i in range(int(os.environ["BENCH_ATTACKERS"])):
    viewer = User.objects.create_user(f"hostile-viewer-{i}", password="pw-Signalbox-1", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewer"))
    tokens.append(services.api_token_create(user=viewer, name="hostile")[1])
print(demo_sdk_key(policies)[1], MAX_REGEXES, *tokens)
"""


def wrk_latency(url: str, *, seconds: int, headers: dict[str, str], rate: int = 0) -> tuple[float, float, int]:
    """Requests/s, p99 in ms, and non-2xx/3xx responses of one wrk run: back to back on 8
    connections (`rate` 0, the most the server can answer), or paced to about `rate` requests/s in
    all (each connection waits 8/rate s between its requests, as polling clients do; wrk's latency
    excludes the wait)."""
    args = [need_wrk(), "-t1", "-c8", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if rate:
            script.write(f"function delay() return {8000 / rate:.3f} end\n")
            script.flush()
            args += ["-s", script.name]
        out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if os.environ.get("BENCH_VERBOSE"):
        print(out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, p99, int(bad.group(1)) if bad else 0


def hostile_document(regexes: int) -> dict:
    """A document at the limits: `regexes` hostile regex rules and a long keyword list."""
    return {
        "schema_version": 1,
        "default_route": "r",
        "rules": [
            {"id": f"h{i}", "when": {"field": "text", "op": "regex", "value": PATTERN}, "route": "r"}
            for i in range(regexes)
        ]
        + [
            {
                "id": "kw",
                "when": {"field": "text", "op": "contains_any", "value": [f"k{i}" for i in range(5000)]},
                "route": "r",
            }
        ],
        "routes": {"r": {"tiers": [{"model": "gpt-4o-mini"}]}},
    }


class Attack:
    """Threads sending hostile previews and validations back to back until stopped."""

    def __init__(self, url: str, tokens: list[str], regexes: int) -> None:
        self.url, self.tokens = url, tokens
        self.document = hostile_document(regexes)
        self.stop = threading.Event()
        self.times: dict[str, list[float]] = {"preview": [], "validate": []}
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()

    def _run(self, token: str) -> None:
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                kind = "preview" if n % 2 == 0 else "validate"
                n += 1
                started = time.perf_counter()
                if kind == "preview":
                    body = {"version": "draft", "request": {"task_type": "chat", "text": TEXT}}
                    response = client.post(f"/api/v1/policies/{SLUG}/preview/", json=body)
                else:
                    response = client.post("/api/v1/policy-document/validate/", json={"document": self.document})
                elapsed = time.perf_counter() - started
                with self.lock:
                    self.times[kind].append(elapsed)
                    self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1

    def __enter__(self) -> Attack:
        self.workers = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in self.tokens]
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attackers", type=int, default=2, help="viewers sending hostile requests, a thread each")
    parser.add_argument(
        "--no-compute-limit",
        action="store_true",
        help="turn API_RATE_LIMIT_COMPUTE off (as if each request came from another user)",
    )
    parser.add_argument(
        "--compute-concurrency",
        type=int,
        default=None,
        help="API_COMPUTE_CONCURRENCY of the server (default: the setting's default; 2 = as many as the workers)",
    )
    parser.add_argument(
        "--rate",
        type=int,
        default=400,
        help="policy fetches per second in all, paced as polling clients send them (0: back to back, saturating)",
    )
    args = parser.parse_args()

    recreate_database(DB)
    limits = {"API_RATE_LIMIT_COMPUTE": "off"} if args.no_compute_limit else {}
    if args.compute_concurrency is not None:
        limits["API_COMPUTE_CONCURRENCY"] = str(args.compute_concurrency)
    env = bench_env(DB, **limits)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    setup_env = {**env, "BENCH_SLUG": SLUG, "BENCH_PATTERN": PATTERN, "BENCH_ATTACKERS": str(args.attackers)}
    out = subprocess.run(
        [sys.executable, "-c", SETUP], cwd=ROOT, env=setup_env, check=True, capture_output=True, text=True
    )
    key, regexes, *tokens = out.stdout.strip().splitlines()[-1].split()
    auth = {"Authorization": f"Bearer {key}"}

    with gunicorn(env) as url:
        target = f"{url}/api/v1/client/policies/{SLUG}"
        for _ in range(8):  # every worker answers once (the first request loads the app), then wrk warms them
            httpx.get(target, headers=auth, timeout=60).raise_for_status()
        wrk_latency(target, seconds=2, headers=auth, rate=args.rate)
        alone: list[tuple[float, float]] = []
        attacked: list[tuple[float, float]] = []
        attack_times: dict[str, list[float]] = {"preview": [], "validate": []}
        statuses: dict[int, int] = {}
        for _ in range(args.rounds):
            rate, p99, bad = wrk_latency(target, seconds=args.seconds, headers=auth, rate=args.rate)
            if bad:
                sys.exit(f"policy fetch alone: {bad} error responses")
            alone.append((rate, p99))
            with Attack(url, tokens, int(regexes)) as attack:
                rate, p99, bad = wrk_latency(target, seconds=args.seconds, headers=auth, rate=args.rate)
            if bad:
                sys.exit(f"policy fetch under attack: {bad} error responses")
            attacked.append((rate, p99))
            for kind, values in attack.times.items():
                attack_times[kind] += values
            for status, count in attack.statuses.items():
                statuses[status] = statuses.get(status, 0) + count

    def med(rows: list[tuple[float, float]], i: int) -> float:
        return statistics.median(r[i] for r in rows)

    print(
        f"policy fetch under gunicorn (2 sync workers), {args.rounds} rounds x {args.seconds}s, "
        f"{'paced at ' + str(args.rate) + ' req/s' if args.rate else 'back to back'}, "
        f"{args.attackers} viewers attacking (compute limit {'off' if args.no_compute_limit else 'on'}, "
        f"compute slots {args.compute_concurrency or 'default'}), "
        f"draft with {regexes} regex rules {PATTERN!r}, text {len(TEXT):,} chars"
    )
    print(f"  alone          {med(alone, 0):8.0f} req/s   p99 {med(alone, 1):7.1f} ms")
    print(f"  under attack   {med(attacked, 0):8.0f} req/s   p99 {med(attacked, 1):7.1f} ms")
    for kind, values in attack_times.items():
        if values:
            print(
                f"  hostile {kind:9s} {len(values):5d} requests, median {statistics.median(values) * 1000:7.1f} ms, "
                f"max {max(values) * 1000:7.1f} ms"
            )
    print(f"  hostile statuses {dict(sorted(statuses.items()))}")
    slowest = max((max(v) for v in attack_times.values() if v), default=0.0)
    print(
        json.dumps(
            {
                "fetch_p99_alone_ms": round(med(alone, 1), 1),
                "fetch_p99_attacked_ms": round(med(attacked, 1), 1),
                "p99_ratio": round(med(attacked, 1) / med(alone, 1), 2),
                "rps_ratio": round(med(attacked, 0) / med(alone, 0), 2),
                "hostile_max_ms": round(slowest * 1000, 1),
                "hostile_statuses": statuses,
                "target_p99_ratio": 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
