"""manage.py api_token_create USERNAME: make a management API token and print it, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from controlplane.errors import DomainError
from routing.models import Policy
from routing.services import api_token_create


class Command(BaseCommand):
    help = "Create a management API token for a user and print it (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for, e.g. ci-deploy.")
        parser.add_argument("--role", default=None, help="viewer, editor or publisher (default: the user's own).")
        parser.add_argument("--policy", action="append", default=[], help="Scope to this policy (repeatable).")
        parser.add_argument("--expires-days", type=float, default=None, help="Expire after this many days.")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user '{username}'.")
        policies = list(Policy.objects.filter(slug__in=options["policy"]))
        missing = sorted(set(options["policy"]) - {p.slug for p in policies})
        if missing:
            raise CommandError(f"No policy {', '.join(missing)}.")
        days = options["expires_days"]
        try:
            token, key = api_token_create(
                user=None,
                owner=user,
                name=options["name"],
                role=options["role"],
                policies=policies,
                expires_at=timezone.now() + timedelta(days=days) if days else None,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Token {token.prefix}… for {username}; it is shown once, store it now:")
        self.stdout.write(key)
