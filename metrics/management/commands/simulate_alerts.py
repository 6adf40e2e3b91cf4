"""manage.py simulate_alerts [--seeds 20] [--clean 5] [--jobs 1] [--docs LABEL]: replay simulated
months through the rollups, evaluate the alerts hour by hour and print recall per anomaly kind,
hours to detect and false alerts per 100 route-days (docs/alerts.md, "Alert quality on simulated
months"). With --jobs N, N months at once, each in its own process and policy (same tables: every
month is its own seed's, and they are scored in seed order)."""

from __future__ import annotations

import multiprocessing
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from metrics.alerts.simulation import Run, catalog_models, report_text, scenario_run
from metrics.stats.scenarios import KIND_NAMES

DOCS = Path(settings.BASE_DIR) / "docs" / "alerts.md"


class Command(BaseCommand):
    help = (
        "Simulate months of a policy's traffic with injected anomalies (and clean months), replay them "
        "through the rollups, evaluate alerts every hour and score them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seeds", type=int, default=20, help="months with anomalies (default 20)")
        parser.add_argument("--clean", type=int, default=5, help="clean months (default 5)")
        parser.add_argument("--first-seed", type=int, default=1)
        parser.add_argument("--every-hours", type=int, default=1, help="evaluate every N hours (default 1)")
        parser.add_argument(
            "--jobs", type=int, default=1, help="months simulated at once, one process each (default 1)"
        )
        parser.add_argument("--days", type=int, help="score only the first N days of each month")
        parser.add_argument(
            "--kinds", help=f"comma-separated anomaly kinds to inject instead of six in turn ({', '.join(KIND_NAMES)})"
        )
        parser.add_argument(
            "--docs",
            metavar="LABEL",
            help="write the tables into docs/alerts.md between the markers of LABEL (before, after)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        seeds, clean, first = options["seeds"], options["clean"], options["first_seed"]
        if seeds < 0 or clean < 0 or seeds + clean == 0:
            raise CommandError("--seeds and --clean: give at least one month")
        if options["every_hours"] < 1:
            raise CommandError("--every-hours: at least 1")
        if options["jobs"] < 1:
            raise CommandError("--jobs: at least 1")
        days = options["days"]
        if days is not None and not 1 <= days <= 28:
            raise CommandError("--days: between 1 and 28")
        kinds = None
        if options["kinds"]:
            kinds = [k.strip() for k in options["kinds"].split(",") if k.strip()]
            unknown = sorted(set(kinds) - set(KIND_NAMES))
            if unknown or not kinds:
                raise CommandError(
                    f"--kinds: unknown {', '.join(unknown) or '(none given)'}; one of {', '.join(KIND_NAMES)}"
                )
        every, log, detail = options["every_hours"], self.stdout.write, options["verbosity"] > 1
        extra = {"every_hours": every, "log": log, "detail": detail, "days": days, "kinds": kinds}
        months = [(s, False) for s in range(first, first + seeds)] + [(s, True) for s in range(first, first + clean)]
        runs: list[Run]
        if options["jobs"] == 1:
            runs = [scenario_run(s, clean=c, **extra) for s, c in months]
        else:
            catalog_models()  # imported once, before the workers start
            connections.close_all()  # each worker opens its own connection
            extra["log"] = None
            with ProcessPoolExecutor(options["jobs"], mp_context=multiprocessing.get_context("fork")) as pool:
                runs = list(pool.map(_month, [(s, c, extra) for s, c in months]))
        command = f"manage.py simulate_alerts --seeds {seeds} --clean {clean}"
        if first != 1:
            command += f" --first-seed {first}"
        if options["every_hours"] != 1:
            command += f" --every-hours {options['every_hours']}"
        if days is not None:
            command += f" --days {days}"
        if kinds is not None:
            command += f" --kinds {','.join(kinds)}"
        text = report_text(runs, command=command)
        self.stdout.write(text)
        if options["docs"]:
            label = options["docs"]
            begin, end = f"<!-- simulate_alerts {label} -->", f"<!-- /simulate_alerts {label} -->"
            doc = DOCS.read_text(encoding="utf-8")
            pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
            if not pattern.search(doc):
                raise CommandError(f"--docs: {DOCS} has no markers {begin} … {end}")
            DOCS.write_text(pattern.sub(lambda _: f"{begin}\n{text}{end}", doc), encoding="utf-8")
            self.stdout.write(f"wrote {DOCS} ({label})")


def _month(task: tuple[int, bool, dict[str, Any]]) -> Run:
    """One month in a worker process; its log lines printed together when it is done."""
    seed, clean, extra = task
    lines: list[str] = []
    run = scenario_run(seed, clean=clean, **{**extra, "log": lines.append})
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()
    return run
