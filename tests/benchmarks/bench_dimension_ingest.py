"""Benchmark: the ingest service and the rollup fold with dimensions against the same without the
dimension delta, in one process on a scratch database.

    uv run --locked --all-extras python tests/benchmarks/bench_dimension_ingest.py [--batches 20 --rounds 3]

The policy declares three dimensions (team: 7 values, feature: 13, tenant: 997) and one record in
ten is a canary arm, so each batch of 1,000 carries five dimensions (arm, client, and the three).
"plain" runs the same records through the ingest statement without the dimension CTE (the code
before dimensions; its fold then has no dimension work either). Since the ingest only queues each
batch's keys for the dimension fold (`metrics_dimension_pending`), the fold computes the deltas.
Rounds alternate the order. Prints decisions/s of the ingest service (the fold
off), the fold's seconds per run, and the ratio with/without. Not the HTTP path of
bench_ingest.py: a quick A/B of the one statement that changed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._server import PG, ROOT, recreate_database

DB = "signalbox_bench_dimensions"
TABLES = (
    "metrics_decision",
    "metrics_rollup_inbox",
    "metrics_rollup_hourly",
    "metrics_dimension_inbox",
    "metrics_dimension_pending",
    "metrics_dimension_hourly",
    "metrics_dimension_daily",
    "metrics_dimension_value",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    recreate_database(DB)
    os.environ["DATABASE_URL"] = f"{PG}/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True, env=os.environ)

    import django

    django.setup()
    from django.db import connection

    from metrics.ingest import services as ingest
    from metrics.rollups import services as rollup_services
    from metrics.rollups import sql
    from tests import factories
    from tests.metrics.conftest import record

    policy = factories.policy("bench", doc=factories.document(dimensions=["team", "feature", "tenant"]))
    key, _ = factories.sdk_key(policy)
    now = datetime.now(UTC)

    def batch(i: int) -> list[dict]:
        return [
            record(
                policy="bench",
                event_id=str(uuid.uuid4()),
                timestamp=(now - timedelta(minutes=(i * 1000 + j) % 1400)).isoformat(),
                reason={"route_by": "task_type", "split": {"arm": "canary" if j % 10 == 0 else "control", "bucket": j}},
                attributes={"team": f"t{j % 7}", "feature": f"f{j % 13}", "tenant": f"c{j % 997}"},
                cost_usd=0.001,
            )
            for j in range(1000)
        ]

    with_dimensions = sql.INGEST_POSTGRES
    plain = re.sub(r", dimension_pending AS \(.*?\n    \)", "", with_dimensions, flags=re.S)
    assert "dimension_pending" not in plain
    ingest.rollups_update_soon = lambda using: None  # type: ignore[assignment]  # the fold is timed apart
    rates: dict[str, list[float]] = {"dimensions": [], "plain": []}
    folds: dict[str, list[float]] = {"dimensions": [], "plain": []}
    for r in range(args.rounds):
        for variant in ("plain", "dimensions") if r % 2 == 0 else ("dimensions", "plain"):
            sql.INGEST_POSTGRES = with_dimensions if variant == "dimensions" else plain
            batches = [batch(i) for i in range(args.batches)]
            with connection.cursor() as cursor:
                for table in TABLES:
                    cursor.execute(f"TRUNCATE {table}")
            start = time.perf_counter()
            for b in batches:
                ingest.decision_batch_ingest(key_id=key.pk, policy_ids=frozenset({policy.pk}), records=b)
            rates[variant].append(args.batches * 1000 / (time.perf_counter() - start))
            start = time.perf_counter()
            rollup_services.rollups_update()
            folds[variant].append(time.perf_counter() - start)
    for variant in rates:
        print(
            f"{variant:>10}: ingest {statistics.median(rates[variant]):,.0f} decisions/s "
            f"({', '.join(f'{x:,.0f}' for x in rates[variant])}); fold {statistics.median(folds[variant]):.2f} s "
            f"per {args.batches * 1000:,} decisions"
        )
    ratio = statistics.median(rates["dimensions"]) / statistics.median(rates["plain"])
    print(f"ratio with / without dimensions: {ratio:.2f}")


if __name__ == "__main__":
    main()
