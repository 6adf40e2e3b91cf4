"""Benchmark: the client policy fetch (200 and 304) under gunicorn against a bare Django view.

    uv run --locked --all-extras python tests/benchmarks/bench_policy_fetch.py [--seconds 8 --rounds 3]

One gunicorn (2 sync workers, production settings, PostgreSQL, Redis as the shared cache) serves
all three endpoints; wrk (1 thread, 8 keep-alive connections) drives them in interleaved rounds,
so the baseline and the policy fetch share the machine's noise. Prints req/s (median of the
rounds) and the ratio to the bare view. Target: 304 ≥ 0.8 × bare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._server import ROOT, bench_env, gunicorn, recreate_database, wrk

DB = "signalbox_bench_fetch"

SETUP = """
import django; django.setup()
from routing.demo import demo_routing_load, demo_sdk_key
from metrics.budget.state import budget_state_refresh
report, policies = demo_routing_load()
budget_state_refresh()  # the demo policies have budgets: every answer carries Signalbox-Budget
print(demo_sdk_key(policies)[1])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    recreate_database(DB)
    env = bench_env(DB)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    key = (
        subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    slug = "support-assistant"
    auth = {"Authorization": f"Bearer {key}"}

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as body_file:
        pass
    env["BENCH_BARE_BODY"] = body_file.name
    with gunicorn(env) as url:
        request = urllib.request.Request(f"{url}/api/v1/client/policies/{slug}", headers=auth)
        with urllib.request.urlopen(request) as response:
            body, etag = response.read(), response.headers["ETag"]
        Path(body_file.name).write_bytes(body)
    with gunicorn(env) as url:  # restarted so the bare view serves the same bytes
        with urllib.request.urlopen(f"{url}/bench/bare") as response:
            assert response.read() == body
        conditional = urllib.request.Request(
            f"{url}/api/v1/client/policies/{slug}", headers={**auth, "If-None-Match": etag}
        )
        try:
            urllib.request.urlopen(conditional)
            sys.exit("the conditional fetch did not answer 304")
        except urllib.error.HTTPError as answer:  # urllib raises on 304
            if answer.code != 304 or not answer.headers["Signalbox-Budget"]:
                sys.exit("the 304 carries no Signalbox-Budget header to measure")
        cases = {
            "bare Django view (same bytes)": (f"{url}/bench/bare", {}),
            "policy fetch 200": (f"{url}/api/v1/client/policies/{slug}", auth),
            "policy fetch 304": (f"{url}/api/v1/client/policies/{slug}", {**auth, "If-None-Match": etag}),
        }
        for target, headers in cases.values():  # warm every worker
            wrk(target, seconds=2, headers=headers)
        rates: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (target, headers) in cases.items():
                rate, bad = wrk(target, seconds=args.seconds, headers=headers)
                if bad:
                    sys.exit(f"{name}: {bad} error responses")
                rates[name].append(rate)
    Path(body_file.name).unlink()

    bare = statistics.median(rates["bare Django view (same bytes)"])
    print(
        f"policy fetch under gunicorn (2 sync workers), body {len(body):,} bytes, "
        f"{args.rounds} rounds x {args.seconds}s, median req/s"
    )
    for name, values in rates.items():
        median = statistics.median(values)
        print(
            f"  {name:32s} {median:8.0f} req/s   ratio to bare {median / bare:5.2f}   "
            f"(rounds: {', '.join(f'{v:.0f}' for v in values)})"
        )
    ratio = statistics.median(rates["policy fetch 304"]) / bare
    print(
        json.dumps(
            {
                "bare_rps": round(bare),
                "fetch_200_rps": round(statistics.median(rates["policy fetch 200"])),
                "fetch_304_rps": round(statistics.median(rates["policy fetch 304"])),
                "ratio_304": round(ratio, 2),
                "target_ratio_304": 0.8,
            }
        )
    )


if __name__ == "__main__":
    main()
