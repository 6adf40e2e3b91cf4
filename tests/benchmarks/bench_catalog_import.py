"""Benchmark: manage.py catalog_import of LiteLLM's full price map (4,553 entries), first and again.

    uv run --locked --all-extras python tests/benchmarks/bench_catalog_import.py [PATH]

PATH defaults to ../shared/data/model_prices_litellm.json beside the checkout (the tests import a
trimmed copy, tests/fixtures/model_prices_litellm.json). Builds a scratch PostgreSQL database with the
real schema, imports the file (every priced chat model created), imports it again (nothing changes),
checks the counts against the file itself and prints the time of each import.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._server import ROOT, bench_env, recreate_database

DB = "signalbox_bench_catalog"
DEFAULT = ROOT.parent / "shared" / "data" / "model_prices_litellm.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    args = parser.parse_args()
    if not args.path.exists():
        sys.exit(f"no price map at {args.path}")
    raw = json.loads(args.path.read_text())
    priced_chat = {
        k
        for k, v in raw.items()
        if k != "sample_spec"
        and isinstance(v, dict)
        and v.get("mode") == "chat"
        and v.get("input_cost_per_token") is not None
        and v.get("output_cost_per_token") is not None
    }

    env = bench_env(DB)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CACHE_URL", "SECRET_KEY")})
    recreate_database(DB)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.core.management import call_command

    from routing.models import CatalogModel, ModelPrice

    def timed_import() -> tuple[float, str]:
        out = StringIO()
        t0 = time.perf_counter()
        call_command("catalog_import", str(args.path), stdout=out)
        return time.perf_counter() - t0, out.getvalue()

    first, output = timed_import()
    assert f"{len(priced_chat)} models created" in output, output
    assert f"{len(raw) - len(priced_chat)} entries skipped" in output, output
    assert CatalogModel.objects.count() == ModelPrice.objects.count() == len(priced_chat)
    again, output = timed_import()
    assert f"0 models created, 0 updated, {len(priced_chat)} unchanged, 0 price periods added" in output, output

    print(f"{len(raw):,} entries, {len(priced_chat):,} priced chat models")
    print(f"  first import: {first * 1000:8.0f} ms")
    print(f"  same file again (nothing changes): {again * 1000:8.0f} ms")
    print(
        json.dumps(
            {
                "entries": len(raw),
                "models": len(priced_chat),
                "first_ms": round(first * 1000),
                "again_ms": round(again * 1000),
            }
        )
    )


if __name__ == "__main__":
    main()
