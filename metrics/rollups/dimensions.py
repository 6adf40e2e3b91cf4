"""Dimension rollups: cells per (routing fields, one dimension key, its value), hourly and daily.

Every ingest writes a dimension delta in the same statement as the raw rows and the plain delta
(`sql.INGEST_POSTGRES`; on SQLite `dimension_deltas_of_rows`), one per record and dimension: the
split arm (`reason.split.arm`), the client app, and each attribute key the policy's live version
declares (`dimensions` in the document). `dimension_rollups_update` folds the deltas: it caps each
(policy, dimension, UTC day) at `DIMENSION_VALUES_PER_DAY` values, the first ones seen (the
heaviest first within one fold), counts later values under `DIMENSION_OTHER`, and adds the cells
to the hourly and the daily tables in the same transaction. Values are admitted in
`metrics_dimension_value`; `DIMENSION_NONE` (the key missing) is always kept and takes no place
under the cap, and so does a value the live version sets a budget for (`dimension_budgets`: its
spend is what the budget is judged on). One fold runs at a time (an advisory lock on PostgreSQL),
so the cap holds exactly.

`dimension_rollups_rebuild` recomputes whole UTC days of one policy from its raw rows, with the
declaration of the live version (after a policy adds a dimension); there the cap keeps each
day's heaviest values.
"""

from __future__ import annotations

import json
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from controlplane.errors import InvalidInput
from controlplane.memory import ProcessCache
from metrics.rollups import sql
from metrics.rules.budgets import budgeted_values
from metrics.schema import (
    BUCKET_FIELDS,
    DIMENSION_ARM,
    DIMENSION_CLIENT,
    DIMENSION_NONE,
    DIMENSION_OTHER,
    DIMENSION_VALUES_PER_DAY,
    LATENCY_BOUNDS_MS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    sqlite_timestamp,
)
from signalbox_client.protocol import dimension_value_text

# The key of a dimension cell, in the column order of the tables' unique constraints.
CELL_KEY: tuple[str, ...] = ("hour", "policy_id", "dim_key", "dim_value", *ROLLUP_DIMENSIONS[2:])
_INBOX_COLUMNS: tuple[str, ...] = (*ROLLUP_DIMENSIONS, *sql.DIMENSION_COLUMNS, *ROLLUP_MEASURES)
_FOLD_LOCK = 0x5B_D1_4E  # pg_advisory_xact_lock id of the dimension fold (and rebuild)

# -- the declared dimensions of each policy's live version -------------------------------------

_declared: ProcessCache[int, tuple[tuple[str, ...], Mapping[str, frozenset[str]], float]] = ProcessCache(
    "declared dimensions", 1000
)
_DECLARED_SECONDS = 60.0


def _declarations(policy_ids: Iterable[int]) -> dict[int, tuple[tuple[str, ...], Mapping[str, frozenset[str]]]]:
    """Policy id -> (declared keys, budgeted values per key) of its live version, cached per
    process for a minute."""
    now = time.monotonic()
    out: dict[int, tuple[tuple[str, ...], Mapping[str, frozenset[str]]]] = {}
    missing = []
    for pid in policy_ids:
        hit = _declared.get(pid)
        if hit is not None and now - hit[2] < _DECLARED_SECONDS:
            out[pid] = (hit[0], hit[1])
        else:
            missing.append(pid)
    if missing:
        from routing.models import Policy, PolicyVersion

        found = dict(
            PolicyVersion.objects.filter(
                pk__in=Policy.objects.filter(pk__in=missing).values("live_version_id")
            ).values_list("policy_id", "document")
        )
        for pid in missing:
            document = found.get(pid)
            keys, budgeted = _keys_of(document), budgeted_values(document)
            _declared.set(pid, (keys, budgeted, now))
            out[pid] = (keys, budgeted)
    return out


def declared_dimensions(policy_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Policy id -> the attribute keys its live version declares (cached per process for a minute,
    so a publish that adds a dimension reaches the ingest within that time)."""
    return {pid: keys for pid, (keys, _) in _declarations(policy_ids).items()}


def declared_budgeted_values(policy_ids: Iterable[int]) -> dict[int, Mapping[str, frozenset[str]]]:
    """Policy id -> dimension key -> the values its live version sets a budget for (the fold keeps
    them under their own name past the cap: their spend is what the budget is judged on)."""
    return {pid: budgeted for pid, (_, budgeted) in _declarations(policy_ids).items()}


def declared_live(using: str = DEFAULT_DB_ALIAS) -> dict[int, tuple[str, ...]]:
    """Policy id -> the attribute keys its live version declares, for every policy whose live
    version declares any (one query; the fold's, which takes batches of any policy). A policy
    absent from the answer has only the arm and client dimensions."""
    from routing.models import Policy, PolicyVersion

    live = PolicyVersion.objects.using(using).filter(
        pk__in=Policy.objects.using(using).values("live_version_id"), document__has_key="dimensions"
    )
    found = {pid: _keys_of(document) for pid, document in live.values_list("policy_id", "document")}
    return {pid: keys for pid, keys in found.items() if keys}


def _keys_of(document: Any) -> tuple[str, ...]:
    keys = document.get("dimensions") if isinstance(document, dict) else None
    return tuple(k for k in keys if isinstance(k, str)) if isinstance(keys, list) else ()


def declared_forget() -> None:
    _declared.clear()


def declared_params(declared: Mapping[int, Sequence[str]]) -> list[list[Any]]:
    """The two array parameters of `sql.dimension_rows_sql`: policy ids and keys, in pairs."""
    pairs = [(pid, key) for pid, keys in declared.items() for key in keys]
    return [[p for p, _ in pairs], [k for _, k in pairs]]


def record_dimension_values(
    reason: Any, client_app: str, attributes: Any, keys: Sequence[str]
) -> list[tuple[str, str]]:
    """(key, value) of every dimension of one record: what `sql.dimension_rows_sql` computes."""
    split = reason.get("split") if isinstance(reason, dict) else None
    arm = split.get("arm") if isinstance(split, dict) else None
    out = [
        (DIMENSION_ARM, DIMENSION_NONE if arm is None else dimension_value_text(arm)),
        (DIMENSION_CLIENT, client_app or DIMENSION_NONE),
    ]
    attrs = attributes if isinstance(attributes, dict) else {}
    for key in keys:
        value = attrs.get(key)
        out.append((key, DIMENSION_NONE if value is None else dimension_value_text(value)))
    return out


def record_measures(
    attempt: int,
    escalated: bool,
    cost: Any,
    tokens_in: int,
    tokens_out: int,
    confidence: float | None,
    latency_ms: float,
) -> list[Any]:
    """One record's contribution to each of ROLLUP_MEASURES (the SQLite paths' delta)."""
    buckets = [0] * len(BUCKET_FIELDS)
    buckets[bisect_right(LATENCY_BOUNDS_MS, latency_ms)] = 1
    return [
        1,
        int(attempt == 1),
        int(bool(escalated)),
        0 if cost is None else cost,
        int(cost is None),
        tokens_in,
        tokens_out,
        0 if confidence is None else confidence,
        int(confidence is not None),
        latency_ms,
        *buckets,
    ]


# -- folding ---------------------------------------------------------------------------------------


def _day_of(hour: Any) -> Any:
    """The UTC day start of an hour as the vendor's cursor returns it (datetime, or SQLite text)."""
    if isinstance(hour, str):
        return hour[:10] + " 00:00:00"
    return hour.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _lock(cursor: Any, vendor: str) -> None:
    if vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FOLD_LOCK])


def _weights_of(rows: list[tuple[Any, ...]]) -> list[tuple[Any, int, str, str, int]]:
    """(day, policy, key, value, requests) of inbox-shaped rows, (none) left out."""
    i_hour, i_policy = _INBOX_COLUMNS.index("hour"), _INBOX_COLUMNS.index("policy_id")
    i_key, i_value = _INBOX_COLUMNS.index("dim_key"), _INBOX_COLUMNS.index("dim_value")
    i_requests = _INBOX_COLUMNS.index("requests")
    return [
        (_day_of(row[i_hour]), row[i_policy], row[i_key], row[i_value], row[i_requests])
        for row in rows
        if row[i_value] != DIMENSION_NONE
    ]


def _admit(cursor: Any, weights: Iterable[tuple[Any, int, str, str, int]]) -> dict[tuple[Any, int, str], set[str]]:
    """The values kept per (day, policy, key) among those weighed, admitting new ones while the
    day has room: heaviest (most requests in this fold) first, ties by value."""
    weight: dict[tuple[Any, int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, policy_id, key, value, requests in weights:
        weight[(day, policy_id, key)][value] += int(requests or 0)
    kept: dict[tuple[Any, int, str], set[str]] = {}
    new_rows = []
    budgeted = declared_budgeted_values({policy_id for _, policy_id, _ in weight}) if weight else {}
    for group, values in weight.items():
        day, policy_id, key = group
        cursor.execute(
            "SELECT dim_value FROM metrics_dimension_value WHERE day_start = %s AND policy_id = %s AND dim_key = %s",
            [day, policy_id, key],
        )
        known = {r[0] for r in cursor.fetchall()}
        always = budgeted.get(policy_id, {}).get(key, frozenset())
        room = DIMENSION_VALUES_PER_DAY - len(known - always)
        fresh = sorted((v for v in values if v not in known and v not in always), key=lambda v: (-values[v], v))
        # A budgeted value takes no place under the cap (at most MAX_DIMENSION_BUDGETS more a day).
        admitted = sorted(v for v in values if v not in known and v in always) + fresh[: max(room, 0)]
        new_rows += [(day, policy_id, key, v) for v in admitted]
        kept[group] = known | set(admitted)
    if new_rows:
        cursor.executemany(
            "INSERT INTO metrics_dimension_value (day_start, policy_id, dim_key, dim_value) VALUES (%s, %s, %s, %s)",
            new_rows,
        )
    return kept


def _zero(measure: str) -> Any:
    return Decimal(0) if measure in ("cost_usd", "confidence_sum", "latency_sum_ms") else 0


def _fold_rows(cursor: Any, rows: list[tuple[Any, ...]]) -> int:
    """Cap the values of inbox-shaped `rows` and add them to the hourly and daily cells; return the
    number of hourly cells written."""
    if not rows:
        return 0
    kept = _admit(cursor, _weights_of(rows))
    n_dims = len(ROLLUP_DIMENSIONS)
    i_hour, i_policy = _INBOX_COLUMNS.index("hour"), _INBOX_COLUMNS.index("policy_id")
    i_key, i_value = _INBOX_COLUMNS.index("dim_key"), _INBOX_COLUMNS.index("dim_value")
    hourly: dict[tuple[Any, ...], list[Any]] = {}
    daily: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        value = row[i_value]
        if value != DIMENSION_NONE and value not in kept[(_day_of(row[i_hour]), row[i_policy], row[i_key])]:
            value = DIMENSION_OTHER
        rest = row[2:n_dims]  # policy_version … outcome
        measures = row[n_dims + 2 :]
        for cells, when in ((hourly, row[i_hour]), (daily, _day_of(row[i_hour]))):
            key = (when, row[i_policy], row[i_key], value, *rest)
            sums = cells.get(key)
            if sums is None:
                sums = cells[key] = [_zero(m) for m in ROLLUP_MEASURES]
            for j, m in enumerate(measures):
                if m is not None:
                    sums[j] += m if not isinstance(m, float) else Decimal(repr(m))
    for table, time_column, cells in (
        ("metrics_dimension_hourly", "hour", hourly),
        ("metrics_dimension_daily", "day_start", daily),
    ):
        key_columns = ", ".join((time_column, *CELL_KEY[1:]))
        marks = ", ".join(["%s"] * (len(CELL_KEY) + len(ROLLUP_MEASURES)))
        merge = ", ".join(f"{m} = {table}.{m} + excluded.{m}" for m in ROLLUP_MEASURES)
        cursor.executemany(
            f"INSERT INTO {table} ({key_columns}, {sql.MEASURES}) VALUES ({marks}) "  # noqa: S608 - constant identifiers
            f"ON CONFLICT ({key_columns}) DO UPDATE SET {merge}",
            [(*key, *sums) for key, sums in sorted(cells.items(), key=lambda kv: tuple(map(str, kv[0])))],
        )
    return len(hourly)


# PostgreSQL folds in SQL: the deltas of one round are moved into a session temp table, their values
# admitted (the one step in Python: a row per distinct value), and the cells upserted by two
# INSERT … SELECT … GROUP BY over it (the Python path writes a row at a time: ≈ 25× slower).
_TAKEN = "metrics_dimension_taken"
_TAKEN_CREATE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_TAKEN} AS "  # noqa: S608 - constant identifiers
    f"SELECT id, {', '.join(_INBOX_COLUMNS)} FROM metrics_dimension_inbox WITH NO DATA"
)


def _pg_fold_taken(cursor: Any) -> int:
    """Admit the values in the temp table and add its deltas to the hourly and daily cells."""
    cursor.execute(
        f"SELECT date_trunc('day', hour, 'UTC'), policy_id, dim_key, dim_value, sum(requests) FROM {_TAKEN} "  # noqa: S608 - constant identifiers
        "WHERE dim_value <> %s GROUP BY 1, 2, 3, 4",
        [DIMENSION_NONE],
    )
    _admit(cursor, cursor.fetchall())
    value = (
        f"CASE WHEN t.dim_value = '{DIMENSION_NONE}' OR v.dim_value IS NOT NULL "
        f"THEN t.dim_value ELSE '{DIMENSION_OTHER}' END"
    )
    written = 0
    for table, time_column, when in (
        ("metrics_dimension_hourly", "hour", "t.hour"),
        ("metrics_dimension_daily", "day_start", "date_trunc('day', t.hour, 'UTC')"),
    ):
        key_columns = ", ".join((time_column, *CELL_KEY[1:]))
        select = [when, "t.policy_id", "t.dim_key", value, *(f"t.{d}" for d in ROLLUP_DIMENSIONS[2:])]
        merge = ", ".join(f"{m} = {table}.{m} + excluded.{m}" for m in ROLLUP_MEASURES)
        cursor.execute(
            f"INSERT INTO {table} ({key_columns}, {sql.MEASURES}) "  # noqa: S608 - constant identifiers
            f"SELECT {', '.join(select)}, {', '.join(f'sum(t.{m})' for m in ROLLUP_MEASURES)} FROM {_TAKEN} AS t "
            "LEFT JOIN metrics_dimension_value AS v ON v.day_start = date_trunc('day', t.hour, 'UTC') "
            "AND v.policy_id = t.policy_id AND v.dim_key = t.dim_key AND v.dim_value = t.dim_value "
            f"GROUP BY {', '.join(str(i + 1) for i in range(len(select)))} "
            f"ON CONFLICT ({key_columns}) DO UPDATE SET {merge}"
        )
        written = written or cursor.rowcount
    cursor.execute(f"DELETE FROM {_TAKEN}")  # noqa: S608 - constant identifiers
    return written


def _taken_ensure(cursor: Any) -> None:
    """The fold's temp table, in every round: IF NOT EXISTS costs a catalog lookup, once a fold round.
    (Remembering the session instead breaks when the creating transaction rolls back, a caller's or
    a test's: the session stays, the table is gone.)"""
    cursor.execute(_TAKEN_CREATE)


def _pg_take(cursor: Any, limit: int, using: str) -> tuple[int, bool]:
    """Fill the temp table with up to `limit` inbox deltas (oldest first: SQLite's ingest writes
    them, and PostgreSQL's did before the pending queue) and the deltas of about `limit` raw rows
    the ingest left pending, with the dimensions the live versions declare now. Return (deltas
    taken, whether either queue may hold more)."""
    _taken_ensure(cursor)
    cursor.execute(f"DELETE FROM {_TAKEN}")  # noqa: S608 - constant identifiers
    columns = ", ".join(("id", *_INBOX_COLUMNS))
    cursor.execute(
        f"INSERT INTO {_TAKEN} ({columns}) SELECT {columns} FROM metrics_dimension_inbox ORDER BY id LIMIT %s",  # noqa: S608 - constant identifiers
        [limit],
    )
    # Exactly the rows copied (by id): a delta committing meanwhile stays for the next round.
    cursor.execute(f"DELETE FROM metrics_dimension_inbox WHERE id IN (SELECT id FROM {_TAKEN})")  # noqa: S608 - constant identifiers
    from_inbox = int(cursor.rowcount)
    cursor.execute(
        f"{sql.DIMENSION_PENDING_ROWS} INSERT INTO {_TAKEN} ({', '.join(_INBOX_COLUMNS)}) "
        + sql.dimension_rows_sql("postgresql", "pending"),
        [limit, *declared_params(declared_live(using))],
    )
    from_pending = int(cursor.rowcount)
    cursor.execute("SELECT EXISTS (SELECT FROM metrics_dimension_pending)")
    more = from_inbox >= limit or bool(cursor.fetchone()[0])
    return from_inbox + from_pending, more


def dimension_rollups_update(*, limit: int = 20000, max_rounds: int = 1000, using: str = DEFAULT_DB_ALIAS) -> int:
    """Fold pending dimension deltas into the dimension cells; return how many deltas were folded.

    Each round takes up to `limit` deltas in its own transaction (deleted in the transaction that
    adds them), so a delta counts exactly once however often this runs.
    """
    total = 0
    connection = connections[using]
    columns = ", ".join(_INBOX_COLUMNS)
    for _ in range(max_rounds):
        with transaction.atomic(using=using), connection.cursor() as cursor:
            _lock(cursor, connection.vendor)
            if connection.vendor == "postgresql":
                taken, more = _pg_take(cursor, limit, using)
                if taken:
                    _pg_fold_taken(cursor)
            else:
                cursor.execute(
                    f"DELETE FROM metrics_dimension_inbox WHERE id IN "  # noqa: S608 - constant identifiers
                    f"(SELECT id FROM metrics_dimension_inbox ORDER BY id LIMIT %s) RETURNING {columns}",
                    [limit],
                )
                rows = [tuple(r) for r in cursor.fetchall()]
                _fold_rows(cursor, rows)
                taken = len(rows)
                more = taken >= limit
        total += taken
        if not more:
            break
    return total


def dimension_deltas_of_rows(rows: Iterable[tuple[tuple[Any, ...], list[tuple[str, str]], list[Any]]]) -> list[tuple]:
    """Inbox rows from (plain cell, dimension values, measures of one record) triples (SQLite)."""
    deltas: dict[tuple[Any, ...], list[Any]] = {}
    for cell, values, measures in rows:
        for key, value in values:
            k = (*cell, key, value)
            d = deltas.get(k)
            if d is None:
                deltas[k] = list(measures)
            else:
                for j, m in enumerate(measures):
                    d[j] += m
    return [(*k, *d) for k, d in deltas.items()]


def dimension_inbox_insert(cursor: Any, rows: list[tuple]) -> None:
    """Write SQLite-computed dimension deltas (a raw sqlite3 cursor: `?` placeholders)."""
    if rows:
        marks = ",".join("?" * len(_INBOX_COLUMNS))
        cursor.executemany(
            f"INSERT INTO metrics_dimension_inbox ({', '.join(_INBOX_COLUMNS)}) VALUES ({marks})",  # noqa: S608 - constant identifiers
            rows,
        )


# -- rebuild ---------------------------------------------------------------------------------------


def _day_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def dimension_rollups_rebuild(
    *, policy_id: int, since: datetime, until: datetime | None = None, using: str = DEFAULT_DB_ALIAS
) -> int:
    """Recompute one policy's dimension cells of the UTC days touching [since, until) from its raw
    rows, with the live version's declared dimensions, in one transaction; return the hourly
    cells written. Pending deltas of those days are discarded (the raw rows count instead)."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"'{name}' needs a time zone.", {name: ["needs a time zone"]})
    if until is not None and until <= since:
        raise InvalidInput("'until' must be after 'since'.", {"until": ["must be after since"]})
    start = _day_floor(since)
    end = _day_floor(until or datetime.now(UTC))
    if until is None or end < until:
        end += timedelta(days=1)
    declared_forget()
    keys = declared_dimensions([policy_id]).get(policy_id, ())
    connection = connections[using]
    vendor = connection.vendor
    bounds: list[Any] = [start, end] if vendor == "postgresql" else [sqlite_timestamp(start), sqlite_timestamp(end)]
    if vendor == "postgresql":
        # The raw rows still pending are folded first: the rebuild then replaces their days' cells
        # with a count from the raw rows, and a pending batch of those days cannot count twice.
        dimension_rollups_update(using=using)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        _lock(cursor, vendor)
        if vendor == "postgresql":
            cursor.execute("LOCK TABLE metrics_dimension_inbox, metrics_dimension_pending IN EXCLUSIVE MODE")
            # Ingests committed between the drain and the lock: fold them too, under the lock.
            taken, _ = _pg_take(cursor, 1_000_000_000, using)
            if taken:
                _pg_fold_taken(cursor)
        for table, column in (
            ("metrics_dimension_inbox", "hour"),
            ("metrics_dimension_hourly", "hour"),
            ("metrics_dimension_daily", "day_start"),
            ("metrics_dimension_value", "day_start"),
        ):
            cursor.execute(
                f"DELETE FROM {table} WHERE policy_id = %s AND {column} >= %s AND {column} < %s",  # noqa: S608 - constant identifiers
                [policy_id, *bounds],
            )
        if vendor == "postgresql":
            _taken_ensure(cursor)
            cursor.execute(f"DELETE FROM {_TAKEN}")  # noqa: S608 - constant identifiers
            cursor.execute(
                f"INSERT INTO {_TAKEN} ({', '.join(_INBOX_COLUMNS)}) "
                + sql.dimension_rows_sql(vendor, "metrics_decision", "WHERE policy_id = %s AND ts >= %s AND ts < %s"),
                [*declared_params({policy_id: keys}), policy_id, *bounds],
            )
            return _pg_fold_taken(cursor)
        rows = _sqlite_rows(cursor, policy_id, keys, bounds)
        return _fold_rows(cursor, rows)


def _sqlite_rows(cursor: Any, policy_id: int, keys: Sequence[str], bounds: list[Any]) -> list[tuple]:
    cursor.execute(
        "SELECT ts, policy_id, policy_version, route, task_type, model, provider, tier, outcome, attempt, "
        "escalated, cost_usd, tokens_in, tokens_out, confidence, latency_ms, reason, client_app, attributes "
        "FROM metrics_decision WHERE policy_id = %s AND ts >= %s AND ts < %s",
        [policy_id, *bounds],
    )
    triples = []
    for r in cursor.fetchall():
        cell = (str(r[0])[:13] + ":00:00", *r[1:9])
        cost = None if r[11] is None else Decimal(str(r[11]))
        measures = record_measures(r[9], bool(r[10]), cost, r[12], r[13], r[14], r[15])
        values = record_dimension_values(json.loads(r[16]), r[17], json.loads(r[18]), keys)
        triples.append((cell, values, measures))
    return dimension_deltas_of_rows(triples)
