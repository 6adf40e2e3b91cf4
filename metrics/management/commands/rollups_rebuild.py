"""manage.py rollups_rebuild --since ISO [--until ISO]: recompute hourly rollups from raw rows."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.errors import DomainError
from metrics.rollups import services as rollups


def _moment(value: str) -> datetime:
    """An ISO 8601 date-time, UTC when it has no zone (argparse names the option on error)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Recompute the hourly rollups of [--since, --until) from the raw decisions (UTC if no zone)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, type=_moment)
        parser.add_argument("--until", type=_moment, default=None, help="default: now")

    def handle(self, *args: Any, since: datetime, until: datetime | None, **options: Any) -> None:
        try:
            cells = rollups.rollups_rebuild(since=since, until=until)
        except DomainError as exc:
            fields = "; ".join(f"--{name}: {', '.join(reasons)}" for name, reasons in exc.errors.items())
            raise CommandError(fields or exc.message) from exc
        self.stdout.write(
            f"rebuilt {cells} hourly cells from {since.isoformat()} to {(until or datetime.now(UTC)).isoformat()}"
        )
