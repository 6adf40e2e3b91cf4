"""Celery tasks of the metrics app: each calls one service."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from metrics.alerts import delivery, evaluation
from metrics.budget import state as budget_state
from metrics.ingest import services as ingest
from metrics.rollups import services as rollups


@shared_task(name=rollups.ROLLUPS_UPDATE_TASK, ignore_result=True)
def rollups_update() -> int:
    """Fold pending rollup deltas into the rollups and publish the budget state they change."""
    return rollups.rollups_update()


@shared_task(name="metrics.partitions_maintain", ignore_result=True)
def partitions_maintain() -> dict[str, list[str]]:
    """Create decision partitions ahead and drop those past retention."""
    report = ingest.partitions_maintain()
    return {"created": [d.isoformat() for d in report.created], "dropped": [d.isoformat() for d in report.dropped]}


@shared_task(name="metrics.budget_state_refresh", ignore_result=True)
def budget_state_refresh() -> int:
    """Recompute and publish every live policy's budget state for the clients."""
    return budget_state.budget_state_refresh()


@shared_task(name="metrics.alerts_evaluate", ignore_result=True)
def alerts_evaluate() -> dict[str, int]:
    """Evaluate every live policy's drift and budget detectors and update their alerts; a policy
    that fails is logged by the service and skipped, the task still finishes."""
    report = evaluation.alerts_evaluate()
    return {"policies": report.policies, "opened": report.count("opened"), "resolved": report.count("resolved")}


@shared_task(bind=True, name=delivery.NOTIFICATION_DELIVER_TASK, ignore_result=True, max_retries=None)
def notification_deliver(self: Any, delivery_id: int) -> None:
    """Send one notification; retry with exponential backoff while the service asks to (it bounds
    the attempts with ALERTS_DELIVERY_MAX_ATTEMPTS)."""
    retry_in = delivery.notification_deliver(delivery_id=delivery_id)
    if retry_in is not None and self.request.is_eager:
        # In-process (no broker: the demo, the tests) nothing can wait out a countdown, and an
        # eager retry raises into the caller: try again at once, as often as the service allows.
        while retry_in is not None:
            retry_in = delivery.notification_deliver(delivery_id=delivery_id)
    elif retry_in is not None:
        raise self.retry(countdown=retry_in)
