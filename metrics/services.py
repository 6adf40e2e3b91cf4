"""Every write of the metrics app: decision ingestion, rollups, partition maintenance."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from controlplane.errors import InvalidInput, NotAllowed
from metrics import budget_state, partitions, pricing, sql
from metrics.models import ReportReview
from metrics.records import Checked, CopyRow, checked_row, copy_row, record_check
from metrics.schema import (
    DECISION_COLUMNS,
    LATENCY_BOUNDS_MS,
    POSTGRES_STAGING,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
)
from routing.models import AuditEntry
from routing.roles import PERM_EDIT_POLICY

logger = logging.getLogger(__name__)

MAX_BATCH_RECORDS = 5_000
MAX_BATCH_BYTES = 5_000_000
_ROLLUPS_QUEUED_KEY = "signalbox:metrics:rollups-update-queued"
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(slots=True)
class IngestResult:
    """Per-record results in request order, and their totals."""

    results: list[dict[str, Any]]
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0

    def as_body(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


# -- the SDK key's scope: slug -> policy id, per set of policy ids --------------------------------

_scope_lock = threading.Lock()
_scopes: dict[frozenset[int], tuple[dict[str, int], float]] = {}
_SCOPE_SECONDS = 60.0


def _scope(policy_ids: frozenset[int]) -> dict[str, int]:
    """Slug -> id of the policies a key may write (policy slugs never change; ids are cached)."""
    cached = _scopes.get(policy_ids)
    now = time.monotonic()
    if cached is not None and now - cached[1] < _SCOPE_SECONDS:
        return cached[0]
    from routing.models import Policy

    mapping = dict(Policy.objects.filter(pk__in=policy_ids).values_list("slug", "pk")) if policy_ids else {}
    with _scope_lock:
        if len(_scopes) > 1000:
            _scopes.clear()
        _scopes[policy_ids] = (mapping, now)
    return mapping


def scope_forget() -> None:
    with _scope_lock:
        _scopes.clear()


# -- ingestion -------------------------------------------------------------------------------------


def decision_batch_ingest(
    *,
    key_id: int,
    policy_ids: frozenset[int],
    records: Sequence[Any],
    now: datetime | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> IngestResult:
    """Validate, price and store a batch of decision records; return per-record results.

    A record is accepted (stored now), a duplicate (its event id is already stored, or appears
    earlier in this batch) or rejected (field errors; nothing stored). Returns after the accepted
    rows and their rollup delta are committed; one bad record never affects the others.
    """
    if len(records) > MAX_BATCH_RECORDS:
        raise InvalidInput(
            f"At most {MAX_BATCH_RECORDS} records per batch.", {"decisions": [f"at most {MAX_BATCH_RECORDS} records"]}
        )
    now = now or datetime.now(UTC)
    not_before = partitions.retention_start(now=now).timestamp()
    not_after = now.timestamp() + 86_400
    policies = _scope(policy_ids)

    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    out = IngestResult(results)
    vendor = connections[using].vendor
    postgres = vendor == "postgresql"
    # PostgreSQL: (index, COPY row) per valid record; SQLite: (index, Checked).
    valid: list[tuple[int, Any]] = []
    for index, rec in enumerate(records):
        # The SDK's records (all fields, all valid) go straight to their COPY row; any other record
        # is checked field by field, its errors named.
        row = copy_row(rec, policies, not_before, not_after) if postgres else None
        if row is None:
            checked = record_check(rec, policies=policies, not_before=not_before, not_after=not_after)
            if type(checked) is dict:
                event_id = rec.get("event_id") if type(rec) is dict else None
                results.append(
                    {"event_id": event_id if type(event_id) is str else None, "status": "rejected", "errors": checked}
                )
                out.rejected += 1
                continue
            assert isinstance(checked, Checked)
            row = checked_row(checked) if postgres else checked
        event_id = row[0]
        if event_id in seen:
            results.append({"event_id": event_id, "status": "duplicate"})
            out.duplicates += 1
            continue
        seen.add(event_id)
        results.append({"event_id": event_id, "status": "accepted"})  # until told otherwise
        valid.append((index, row))

    if valid:
        if postgres:
            models = {row[1] for _, row in valid}
            days = {int(row[2] // 86_400) for _, row in valid}  # UTC days since the epoch
        else:
            models = {c.model for _, c in valid}
            days = {int(c.epoch // 86_400) for _, c in valid}
        book = pricing.prices(models)
        partitions.partitions_ensure((_EPOCH_DAY + timedelta(days=d) for d in days), using=using)
        nested = connections[using].in_atomic_block
        with transaction.atomic(using=using):
            if postgres:
                skipped = _store_postgres(key_id, valid, book, using, nested=nested)
            else:
                skipped = _store_sqlite(key_id, valid, book, using)
            if len(skipped) < len(valid):
                _rollups_update_soon(using)
        out.accepted = len(valid) - len(skipped)
        if skipped:
            for index, item in valid:
                if item[0] in skipped:
                    results[index]["status"] = "duplicate"
                    out.duplicates += 1
    return out


# The psycopg connections whose session has the staging table (a new connection has none).
_staging_sessions: weakref.WeakSet[Any] = weakref.WeakSet()


def _store_postgres(
    key_id: int, valid: list[tuple[int, CopyRow]], book: pricing.PriceBook, using: str, *, nested: bool
) -> set[str]:
    """COPY into the connection's staging table, then one INSERT … ON CONFLICT DO NOTHING that also
    writes the rollup delta of the rows it inserted; return the event ids it skipped (already stored).

    The staging table empties itself at commit; inside a caller's transaction (`nested`) an
    earlier ingest's rows may still be there, so they are deleted first. It lives as long as the
    database session: once its creation is committed, later ingests on that connection skip the
    statement (a round trip and ≈ 0.2 ms of the server's time per batch).
    """
    cost_of = book.cost
    key = f"{key_id}\t"
    unpriced = f"{key}\\N\tt\t"
    lines = []
    append = lines.append
    for _, (_, model, epoch, tokens_in, tokens_out, cost, text) in valid:
        if cost is None:
            cost = cost_of(model, epoch, tokens_in, tokens_out)
            if cost is None:
                append(f"{unpriced}{text}\n")
                continue
        append(f"{key}{cost!r}\tf\t{text}\n")
    data = "".join(lines).encode()
    connection = connections[using]
    with connection.cursor() as cursor:
        session = connection.connection
        if nested or session not in _staging_sessions:
            cursor.execute(POSTGRES_STAGING)
            if not nested:  # this transaction is the outermost: its commit keeps the table
                transaction.on_commit(lambda: _staging_sessions.add(session), using=using)
        if nested:
            cursor.execute("DELETE FROM metrics_decision_staging")
        with cursor.cursor.copy(sql.INGEST_COPY) as copy:
            copy.write(data)
        cursor.execute(sql.INGEST_POSTGRES)
        return {row[0] for row in cursor.fetchall()}


def _sqlite_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _store_sqlite(key_id: int, valid: list[tuple[int, Checked]], book: pricing.PriceBook, using: str) -> set[str]:
    """The demo's path: INSERT OR IGNORE row by row (SQLite has one writer), deltas summed in Python;
    return the event ids skipped (already stored)."""
    from bisect import bisect_right

    skipped: set[str] = set()
    deltas: dict[tuple, list[Any]] = {}
    connection = connections[using]
    connection.ensure_connection()
    raw = connection.connection.cursor()
    insert = (
        f"INSERT OR IGNORE INTO metrics_decision ({', '.join(DECISION_COLUMNS)}) "  # noqa: S608 - constant identifiers
        f"VALUES ({','.join('?' * len(DECISION_COLUMNS))})"
    )
    for _, c in valid:
        cost = c.cost_usd
        if cost is None:
            cost = book.cost(c.model, c.epoch, c.tokens_in, c.tokens_out)
        ts = _sqlite_ts(c.ts)
        raw.execute(
            insert,
            (
                ts,
                c.event_id.replace("-", ""),
                key_id,
                c.policy_id,
                c.policy_version,
                c.route,
                c.task_type,
                c.model,
                c.provider,
                c.tier,
                c.attempt,
                c.escalated,
                c.request_id,
                c.reason_json,
                c.outcome,
                c.confidence,
                c.tokens_in,
                c.tokens_out,
                cost,
                cost is None,
                c.latency_ms,
                c.client_app,
                c.client_instance,
                c.client_sdk_version,
                c.attributes_json,
            ),
        )
        if raw.rowcount != 1:
            skipped.add(c.event_id)
            continue
        cell = (
            ts[:13] + ":00:00",
            c.policy_id,
            c.policy_version,
            c.route,
            c.task_type,
            c.model,
            c.provider,
            c.tier,
            c.outcome,
        )
        d = deltas.get(cell)
        if d is None:
            d = deltas[cell] = [0] * len(ROLLUP_MEASURES)
        d[0] += 1
        d[1] += c.attempt == 1
        d[2] += c.escalated
        if cost is None:
            d[4] += 1
        else:
            d[3] += cost
        d[5] += c.tokens_in
        d[6] += c.tokens_out
        if c.confidence is not None:
            d[7] += c.confidence
            d[8] += 1
        d[9] += c.latency_ms
        d[10 + bisect_right(LATENCY_BOUNDS_MS, c.latency_ms)] += 1
    if deltas:
        columns = f"{sql.DIMENSIONS}, {sql.MEASURES}"
        marks = ",".join("?" * (len(ROLLUP_DIMENSIONS) + len(ROLLUP_MEASURES)))
        raw.executemany(
            f"INSERT INTO metrics_rollup_inbox ({columns}) VALUES ({marks})",  # noqa: S608 - constant identifiers
            [(*cell, *d) for cell, d in deltas.items()],
        )
    raw.close()
    return skipped


def _rollups_update_soon(using: str) -> None:
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
        from metrics.tasks import rollups_update

        try:
            # One attempt to reach the broker: with it down, retries would hold up the response
            # (about 6 s each), and beat catches up anyway.
            queue_now(rollups_update)
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
        params = [_sqlite_ts(start), _sqlite_ts(end)]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("LOCK TABLE metrics_rollup_inbox IN EXCLUSIVE MODE")
        cursor.execute("DELETE FROM metrics_rollup_inbox WHERE hour >= %s AND hour < %s", params)
        cursor.execute("DELETE FROM metrics_rollup_hourly WHERE hour >= %s AND hour < %s", params)
        cursor.execute(sql.rebuild_insert_sql(vendor), params)
        return cursor.rowcount


# -- partitions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionReport:
    created: list[date]
    dropped: list[date]


def partitions_maintain(*, today: date | None = None, using: str = DEFAULT_DB_ALIAS) -> PartitionReport:
    """Create the partitions of today and the days ahead; drop those past retention."""
    created = partitions.partitions_ensure_ahead(today=today, using=using)
    dropped = partitions.partitions_drop_expired(today=today, using=using)
    if created or dropped:
        logger.info("decision partitions: created %s, dropped %s", created, dropped)
    return PartitionReport(created, dropped)


# -- monthly report reviews ------------------------------------------------------------------------

REVIEW_NOTE_MAX = 2000
REVIEW_AUDIT_ACTION = AuditEntry.Action.REPORT_REVIEW


@transaction.atomic
def report_review_mark(*, policy: Any, month: date, user: Any, note: str = "", now: datetime | None = None) -> Any:
    """Record that `user` reviewed `policy`'s monthly report of `month` (editor role or above),
    and write it to the audit log. `user=None` is the system itself."""
    if user is not None and (not getattr(user, "is_active", False) or not user.has_perm(PERM_EDIT_POLICY)):
        raise NotAllowed("You do not have permission to mark reports reviewed (editor role or above).")
    now = (now or timezone.now()).astimezone(UTC)
    if not isinstance(month, date) or isinstance(month, datetime) or month.day != 1:
        raise InvalidInput("The month must be the first day of a month.", {"month": ["expected YYYY-MM"]})
    if month > now.date():
        raise InvalidInput(f"{month:%B %Y} has not started yet: it can't be reviewed.", {"month": ["in the future"]})
    note = (note or "").strip()
    if len(note) > REVIEW_NOTE_MAX:
        raise InvalidInput("The note is too long.", {"note": [f"At most {REVIEW_NOTE_MAX} characters."]})
    if "\x00" in note:
        raise InvalidInput("The note holds a NUL character.", {"note": ["the NUL character is not allowed"]})
    label = user.get_username() if user is not None else "system"
    review = ReportReview.objects.create(
        policy=policy,
        month=month,
        reviewed_by=user if getattr(user, "pk", None) else None,
        reviewed_by_label=label,
        reviewed_at=now,
        note=note,
    )
    AuditEntry.objects.create(
        actor=user if getattr(user, "pk", None) else None,
        actor_label=label,
        action=REVIEW_AUDIT_ACTION,
        policy=policy,
        target=f"{policy.slug}:report:{month:%Y-%m}",
        comment=note,
    )
    return review
