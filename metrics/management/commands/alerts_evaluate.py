"""manage.py alerts_evaluate [--policy slug] [--at ISO]: evaluate the alert detectors now and print
what opened, escalated, reopened or resolved. A policy whose evaluation failed is named (its error
is in the log) and the command exits with status 1 once every other policy is evaluated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.errors import DomainError
from metrics.alerts.evaluation import alerts_evaluate
from routing.models import Policy


class Command(BaseCommand):
    help = "Evaluate drift and budget alerts of every live policy (or one) and print the changes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--policy", help="only this policy (slug)")
        parser.add_argument(
            "--at",
            help="evaluate as of this moment, ISO 8601 with a time zone (default: now), e.g. 2025-03-10T12:00:00Z",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        policy = None
        if options["policy"]:
            policy = Policy.objects.filter(slug=options["policy"]).first()
            if policy is None:
                raise CommandError(f"--policy: no policy '{options['policy']}'")
            if policy.live_version_id is None:
                raise CommandError(f"--policy: '{policy.slug}' has no live version to evaluate")
        at = None
        if options["at"]:
            try:
                at = datetime.fromisoformat(options["at"].replace("Z", "+00:00"))
            except ValueError:
                raise CommandError(f"--at: '{options['at']}' is not an ISO 8601 date and time") from None
            if at.tzinfo is None:
                raise CommandError("--at: give a time zone, e.g. 2025-03-10T12:00:00Z")
        try:
            report = alerts_evaluate(policy=policy, at=at)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        for c in report.changes:
            where = c.route or "(policy)"
            style = self.style.SUCCESS if c.action == "resolved" else self.style.WARNING
            self.stdout.write(
                style(f"{c.action:<9}") + f" #{c.alert_id} {c.policy}/{where} {c.detector} [{c.severity}]: {c.summary}"
            )
        self.stdout.write(
            f"Evaluated {report.policies} polic{'y' if report.policies == 1 else 'ies'} "
            f"({report.evaluations} detector verdicts): {report.count('opened')} opened, "
            f"{report.count('reopened')} reopened, {report.count('escalated')} escalated, "
            f"{report.count('resolved')} resolved."
        )
        for failure in report.failed:
            self.stderr.write(self.style.ERROR(f"failed    {failure.policy}: {failure.error}"))
        if report.failed:
            names = ", ".join(f.policy for f in report.failed)
            raise CommandError(
                f"Evaluation failed for {len(report.failed)} polic{'y' if len(report.failed) == 1 else 'ies'}: "
                f"{names} (tracebacks in the log; the other policies were evaluated)",
                returncode=1,
            )
