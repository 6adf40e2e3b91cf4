"""manage.py catalog_import FILE: load a LiteLLM-format price map into the model catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from controlplane.errors import DomainError
from routing import services


class Command(BaseCommand):
    help = (
        "Import chat models with prices from a LiteLLM-format price map (model id -> entry). "
        "Re-importing adds a price period only where a price changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--effective-from", help="ISO time new prices take effect (default: now)")
        parser.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"{path}: not a JSON price map ({exc})") from None
        effective_from = None
        if options["effective_from"]:
            effective_from = parse_datetime(options["effective_from"])
            if effective_from is None or effective_from.tzinfo is None:
                raise CommandError("--effective-from: give an ISO time with a zone, e.g. 2026-11-01T00:00:00Z")
        try:
            report = services.catalog_import(
                entries=entries, source=path.name, user=None, effective_from=effective_from, dry_run=options["dry_run"]
            )
        except DomainError as exc:
            raise CommandError(f"{path}: {exc.message}") from None
        prefix = "would import" if options["dry_run"] else "imported"
        self.stdout.write(
            f"{prefix} {path.name}: {report.created} models created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.prices_added} price periods added, "
            f"{report.skipped_total} entries skipped"
        )
        for why, count in sorted(report.skipped.items(), key=lambda item: (-item[1], item[0])):
            self.stdout.write(f"  skipped {count:>5}  {why}")
