"""manage.py api_token_create USERNAME: make a management API token and print it, once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.services import api_token_create


class Command(BaseCommand):
    help = "Create a management API token for a user and print it (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user '{username}'.")
        token, key = api_token_create(user=user)
        self.stderr.write(f"Token {token.prefix}… for {username}; it is shown once, store it now:")
        self.stdout.write(key)
