"""manage.py dimension_rollups_rebuild --policy SLUG --since ISO [--until ISO]: recompute one
policy's dimension rollups (whole UTC days) from its raw rows, with its live declaration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.errors import DomainError
from metrics.management.commands.rollups_rebuild import _moment
from metrics.rollups import dimensions


class Command(BaseCommand):
    help = (
        "Recompute a policy's dimension rollups (arm, client, declared attributes) for the UTC days "
        "touching [--since, --until) from the raw decisions: after a policy declares a new dimension."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--policy", required=True, help="the policy's slug")
        parser.add_argument("--since", required=True, type=_moment)
        parser.add_argument("--until", type=_moment, default=None, help="default: now")

    def handle(self, *args: Any, policy: str, since: datetime, until: datetime | None, **options: Any) -> None:
        from routing.models import Policy

        policy_id = Policy.objects.filter(slug=policy).values_list("pk", flat=True).first()
        if policy_id is None:
            raise CommandError(f"--policy: no policy {policy!r}")
        try:
            cells = dimensions.dimension_rollups_rebuild(policy_id=policy_id, since=since, until=until)
        except DomainError as exc:
            fields = "; ".join(f"--{name}: {', '.join(reasons)}" for name, reasons in exc.errors.items())
            raise CommandError(fields or exc.message) from exc
        self.stdout.write(
            f"rebuilt {cells} hourly cells of {policy!r} from {since.isoformat()} "
            f"to {(until or datetime.now(UTC)).isoformat()} (whole UTC days)"
        )
