"""Celery tasks of the metrics app: each calls one service."""

from __future__ import annotations

from celery import shared_task

from metrics import services


@shared_task(name="metrics.rollups_update", ignore_result=True)
def rollups_update() -> int:
    """Fold pending rollup deltas into the hourly rollups."""
    return services.rollups_update()


@shared_task(name="metrics.partitions_maintain", ignore_result=True)
def partitions_maintain() -> dict[str, list[str]]:
    """Create decision partitions ahead and drop those past retention."""
    report = services.partitions_maintain()
    return {"created": [d.isoformat() for d in report.created],
            "dropped": [d.isoformat() for d in report.dropped]}
