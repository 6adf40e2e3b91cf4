"""manage.py demo_traffic: N days of realistic decisions for the demo policies, made by the SDK."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from metrics.demo_traffic import demo_traffic_generate
from metrics.rollups import services as rollups
from routing.demo import DEMO_POLICIES, demo_routing_load
from routing.models import Policy, SdkKey


class Command(BaseCommand):
    help = (
        "Generate decision traffic for the demo policies with the real client SDK, ingest it "
        "through the ingest service, and update the rollups."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument(
            "--decisions", type=int, default=100_000, help="user requests to simulate (each makes one or more attempts)"
        )
        parser.add_argument(
            "--policy",
            action="append",
            dest="policies",
            metavar="SLUG",
            help="a demo policy slug (repeatable); default: every demo policy",
        )
        parser.add_argument("--seed", type=int, default=7)

    def handle(
        self, *args: Any, days: int, decisions: int, policies: list[str] | None, seed: int, **options: Any
    ) -> None:
        from django.conf import settings

        for noisy in ("httpx", "celery.app.trace"):  # one line per batch otherwise
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # Every argument is checked before anything is written.
        if not 1 <= days <= settings.DECISION_RETENTION_DAYS:
            raise CommandError(f"--days must be 1..{settings.DECISION_RETENTION_DAYS} (the retention)")
        if decisions < 1:
            raise CommandError("--decisions must be at least 1")
        unknown = set(policies or ()) - set(DEMO_POLICIES)
        if unknown:
            raise CommandError(
                f"--policy: not a demo policy: {', '.join(sorted(unknown))} (demo policies: {', '.join(DEMO_POLICIES)})"
            )
        _, demo = demo_routing_load()
        chosen = [p for p in demo if not policies or p.slug in policies]
        key = SdkKey.objects.filter(revoked_at__isnull=True, policies__in=chosen).first()
        key_id = key.pk if key else 0  # records remember their key; the demo needs none to exist
        verbose = options["verbosity"] > 1
        report = demo_traffic_generate(
            days=days,
            decisions=decisions,
            policies=list(Policy.objects.filter(pk__in=[p.pk for p in chosen])),
            key_id=key_id,
            seed=seed,
            progress=self.stdout.write if verbose else None,
        )
        folded = rollups.rollups_update()
        rate = report.records / report.seconds if report.seconds else 0.0
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.decisions:,} decisions ({report.records:,} attempts) over {days} days in "
                f"{report.seconds:.1f} s ({rate:,.0f} records/s): {report.accepted:,} stored, "
                f"{report.duplicates:,} duplicates, {report.rejected:,} rejected; "
                f"{folded:,} rollup deltas folded."
            )
        )
