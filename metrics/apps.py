from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Metrics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # Register the tasks in every process (web, commands, tests), so services can queue them by name.
        from metrics import tasks  # noqa: F401

        post_migrate.connect(_partitions_ensure, sender=self)


def _partitions_ensure(sender: AppConfig, using: str, **kwargs: Any) -> None:
    """After every migrate: the decision table's partitions of today and the days ahead (PostgreSQL).
    Here and not in a migration, which never imports project code."""
    from django.db import connections

    from metrics.ingest.partitions import partitions_ensure_ahead

    if (
        connections[using].vendor == "postgresql"
        and "metrics_decision" in connections[using].introspection.table_names()
    ):
        partitions_ensure_ahead(using=using)
