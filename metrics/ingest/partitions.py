"""Daily partitions of the raw decisions table on PostgreSQL: create ahead, create on demand, drop.

A partition covers one UTC day, [midnight, next midnight), and is named `metrics_decision_pYYYYMMDD`.
Each process remembers the days it knows exist, so the ingest path asks the database only for a
day it has not seen yet. Creation takes a transaction-scoped advisory lock, so two processes that
meet the same new day do not race. On SQLite (the demo) there are no partitions and every
function here is a no-op.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from controlplane.memory import ProcessCache

_PARENT = "metrics_decision"
_NAME = re.compile(r"^metrics_decision_p(\d{8})$")
_LOCK_KEY = 0x5167_0001  # pg_advisory_xact_lock key for partition DDL

# The days this process knows to have a partition (about 3 months of retention plus the days ahead).
_known: ProcessCache[date, bool] = ProcessCache("known decision partitions", 1000)


def partition_name(day: date) -> str:
    return f"{_PARENT}_p{day:%Y%m%d}"


def _is_postgres(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def partitions_list(*, using: str = DEFAULT_DB_ALIAS) -> list[date]:
    """The days that have a partition, oldest first."""
    if not _is_postgres(using):
        return []
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [_PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = []
    for name in names:
        match = _NAME.match(name)
        if match:
            days.append(datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(days)


def partitions_ensure(days: Iterable[date], *, using: str = DEFAULT_DB_ALIAS) -> list[date]:
    """Create the partitions of `days` that do not exist yet; return the days created.

    Runs in its own transaction when called outside one, so the parent table's lock is held only
    for the DDL and not for a whole ingest.
    """
    wanted = {day for day in days if day not in _known}
    if not wanted or not _is_postgres(using):
        return []
    created: list[date] = []
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        existing = set(partitions_list(using=using))
        for day in sorted(wanted - existing):
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            cursor.execute(
                f'CREATE TABLE "{partition_name(day)}" PARTITION OF {_PARENT} FOR VALUES FROM (%s) TO (%s)',
                [start, start + timedelta(days=1)],
            )
            created.append(day)
        existing |= set(created)
    if created or existing:
        # Remember only after the DDL commits (or is part of the caller's transaction).
        def remember() -> None:
            for day in existing:
                _known.set(day, True)

        if connection.in_atomic_block:
            transaction.on_commit(remember, using=using)
        else:
            remember()
    return created


def partitions_ensure_ahead(*, today: date | None = None, using: str = DEFAULT_DB_ALIAS) -> list[date]:
    """Create the partitions of today and the DECISION_PARTITIONS_AHEAD_DAYS days after it."""
    today = today or datetime.now(UTC).date()
    ahead = getattr(settings, "DECISION_PARTITIONS_AHEAD_DAYS", 7)
    return partitions_ensure((today + timedelta(days=n) for n in range(ahead + 1)), using=using)


def retention_start(*, now: datetime | None = None) -> datetime:
    """The oldest instant kept: midnight UTC, DECISION_RETENTION_DAYS days before today.

    A record older than this is rejected at ingest, and a partition that ends at or before it is
    dropped, so what is accepted is exactly what is kept.
    """
    now = now or datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return midnight - timedelta(days=settings.DECISION_RETENTION_DAYS)


def partitions_drop_expired(*, today: date | None = None, using: str = DEFAULT_DB_ALIAS) -> list[date]:
    """Drop the partitions whose whole day lies before the retention start; return their days."""
    if not _is_postgres(using):
        return []
    now = datetime.combine(today, datetime.min.time(), tzinfo=UTC) if today else None
    cutoff = retention_start(now=now).date()
    dropped: list[date] = []
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        for day in partitions_list(using=using):
            if day < cutoff:
                cursor.execute(f'DROP TABLE "{partition_name(day)}"')
                dropped.append(day)
    for day in dropped:
        _known.pop(day)
    return dropped


def forget() -> None:
    """Forget the days this process knows (after a partition was dropped elsewhere)."""
    _known.clear()
