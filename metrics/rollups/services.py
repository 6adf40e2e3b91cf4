"""Every write of the rollups: the inbox of deltas folded into the hourly cells (queued at most once
per debounce interval), and a rebuild from the raw decisions."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from controlplane.errors import InvalidInput
from metrics.budget import state as budget_state
from metrics.rollups import dimensions, sql
from metrics.schema import sqlite_timestamp

logger = logging.getLogger(__name__)

ROLLUPS_UPDATE_TASK = "metrics.rollups_update"  # the Celery task of `rollups_update`
ROLLUPS_FOLD_STARTED_KEY = "signalbox:metrics:rollups-fold-started"  # Unix time; read by /metrics
_ROLLUPS_QUEUED_KEY = "signalbox:metrics:rollups-update-queued"


def rollups_update_soon(using: str) -> None:
    """Queue `rollups_update` after commit, at most once per ROLLUPS_DEBOUNCE_SECONDS per cache.

    Beat also runs it every minute, so a missed queue (broker down, debounced) only delays rollups.
    """
    try:
        if not cache.add(_ROLLUPS_QUEUED_KEY, 1, timeout=settings.ROLLUPS_DEBOUNCE_SECONDS):
            return
    except Exception:  # the shared cache is down: the decisions are stored, beat folds them
        logger.warning("shared cache unreachable; rollups wait for the beat", exc_info=True)
        return

    def queue() -> None:
        from controlplane.celery import queue_now

        try:
            # One attempt to reach the broker: with it down, retries would hold up the response
            # (about 6 s each), and beat catches up anyway.
            queue_now(ROLLUPS_UPDATE_TASK)
        except Exception:  # the beat schedule catches up; never fail an ingest that committed
            logger.warning("could not queue rollups_update", exc_info=True)

    transaction.on_commit(queue, using=using)


# -- rollups ---------------------------------------------------------------------------------------


def rollups_update(*, limit: int = 5000, max_rounds: int = 1000, using: str = DEFAULT_DB_ALIAS) -> int:
    """Fold pending inbox deltas into the hourly rollups (the daily cells follow, by trigger, in the
    same statement), then publish the budget state of the policies folded; return how many deltas
    were folded.

    Each round takes up to `limit` deltas in its own transaction: deleting them and adding them to
    their cells commit together, so a delta counts exactly once however often this runs.
    """
    started = time.time()
    total = 0
    touched: set[int] = set()
    connection = connections[using]
    for _ in range(max_rounds):
        with transaction.atomic(using=using), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(sql.ROLLUP_UPDATE_POSTGRES, [limit])
                taken, _merged, policy_ids = cursor.fetchone()
                touched.update(policy_ids or ())
            else:
                cursor.execute(
                    "SELECT max(id), count(*) FROM (SELECT id FROM metrics_rollup_inbox ORDER BY id LIMIT %s)", [limit]
                )
                last, taken = cursor.fetchone()
                if taken:
                    cursor.execute("SELECT DISTINCT policy_id FROM metrics_rollup_inbox WHERE id <= %s", [last])
                    touched.update(row[0] for row in cursor.fetchall())
                    cursor.execute(sql.ROLLUP_UPDATE_SQLITE_MERGE, [last])
                    cursor.execute("DELETE FROM metrics_rollup_inbox WHERE id <= %s", [last])
        total += taken
        if taken < limit:
            break
    # The dimension cells fold after the plain ones, in transactions of their own (one at a time).
    dimensions.dimension_rollups_update(using=using)
    try:  # what the scrape's rollup lag is measured from (controlplane/prometheus.py)
        cache.set(ROLLUPS_FOLD_STARTED_KEY, started, timeout=None)
    except Exception:
        logger.warning("shared cache unreachable; the rollup lag gauge waits for the next fold", exc_info=True)
    if touched:
        # Clients see new spend at their next poll; a failure here must not undo the fold (the
        # beat task recomputes every policy's state within BUDGET_STATE_SECONDS anyway).
        try:
            budget_state.budget_state_refresh(policy_ids=touched, using=using)
        except Exception:
            logger.exception("budget state refresh after the rollup update failed")
    return total


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def rollups_rebuild(*, since: datetime, until: datetime | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """Recompute the hourly rollups of [since, until) from raw rows, in one transaction.

    The window is widened to whole hours. Pending inbox deltas of those hours are discarded (the
    raw rows they came from are counted by the rebuild); on PostgreSQL the inbox is locked against
    new deltas meanwhile, so an ingest committing during the rebuild is counted once, not twice.
    The daily cells of the days touched follow the hourly ones by trigger (a partial day's other
    hours are kept). Returns the number of hourly cells written.
    """
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"'{name}' needs a time zone.", {name: ["needs a time zone"]})
    if until is not None and until <= since:
        raise InvalidInput("'until' must be after 'since'.", {"until": ["must be after since"]})
    start = _hour_floor(since)
    end = _hour_floor(until or datetime.now(UTC))
    if until is None or end < until:
        end += timedelta(hours=1)
    connection = connections[using]
    vendor = connection.vendor
    if vendor == "postgresql":
        params: list[Any] = [start, end]
    else:
        params = [sqlite_timestamp(start), sqlite_timestamp(end)]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("LOCK TABLE metrics_rollup_inbox IN EXCLUSIVE MODE")
        cursor.execute("DELETE FROM metrics_rollup_inbox WHERE hour >= %s AND hour < %s", params)
        cursor.execute("DELETE FROM metrics_rollup_hourly WHERE hour >= %s AND hour < %s", params)
        cursor.execute(sql.rebuild_insert_sql(vendor), params)
        return cursor.rowcount
