"""manage.py demo: set up the embedded demo and serve it on http://127.0.0.1:8000."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from metrics.models import Decision
from routing.demo import demo_routing_load, demo_sdk_key


class Command(BaseCommand):
    help = "Migrate, create the demo admin, load the catalog and demo policies, then serve."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="set up the data and exit")
        parser.add_argument(
            "--decisions", type=int, default=100_000, help="requests of demo traffic to generate on first run (30 days)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        password = secrets.token_urlsafe(12)
        admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        admin.is_staff = admin.is_superuser = admin.is_active = True
        admin.set_password(password)
        admin.save()

        report, policies = demo_routing_load()
        _, secret = demo_sdk_key(policies)
        if not Decision.objects.exists() and options["decisions"] > 0:
            self.stdout.write(
                f"Generating 30 days of demo traffic ({options['decisions']:,} requests) with the client SDK…"
            )
            call_command("demo_traffic", "--days", "30", "--decisions", str(options["decisions"]), stdout=self.stdout)
        self.stdout.write("Evaluating drift and budget alerts…")
        call_command("alerts_evaluate", stdout=self.stdout)
        host = options["addrport"] if ":" in options["addrport"] else f"127.0.0.1:{options['addrport']}"
        self.stdout.write(self.style.SUCCESS("Signalbox demo is ready."))
        self.stdout.write(
            f"  catalog: {report.created} models added, {report.unchanged + report.updated} already known\n"
            f"  policies: {', '.join(p.slug for p in policies)}\n"
            f"  dashboards: http://{host}/dashboards/\n"
            f"  admin:    http://{host}/admin/   user: admin   password: {password}\n"
            f"  API docs: http://{host}/api/docs/\n"
            f"  SDK key:  {secret}\n"
            f"  try:      curl -H 'Authorization: Bearer {secret}' http://{host}/api/v1/client/policies/{policies[0].slug}\n"
        )
        if not options["no_serve"]:
            call_command("runserver", options["addrport"], use_reloader=False)
