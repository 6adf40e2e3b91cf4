"""SQL shared by ingestion, the incremental rollup and the rebuild, per database vendor.

One aggregate list turns decision rows into rollup measures, so the delta a batch writes to the
inbox and the rebuild's GROUP BY over raw rows compute the same numbers the same way. Sums of
cost, confidence and latency are exact (`numeric`, or on PostgreSQL integers of the last decimal
the ingest keeps), so the order rows are added in (per batch then per cell, or all at once) cannot
change a digit.
"""

from __future__ import annotations

from metrics.schema import (
    BUCKET_FIELDS,
    COPY_COLUMNS,
    DECISION_COLUMNS,
    DIMENSION_ARM,
    DIMENSION_CLIENT,
    DIMENSION_NONE,
    LATENCY_BOUNDS_MS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
)

DIMENSIONS = ", ".join(ROLLUP_DIMENSIONS)
MEASURES = ", ".join(ROLLUP_MEASURES)
# The cell's dimensions as a decision row holds them (all but the hour, which is derived from ts).
_ROW_DIMENSIONS = ", ".join(d for d in ROLLUP_DIMENSIONS if d != "hour")


def _hour(vendor: str) -> str:
    if vendor == "postgresql":
        # The UTC hour, as date_trunc('hour', ts, 'UTC') gives it, by arithmetic on the instant
        # (no time zone lookup per row; decisions are never older than the origin).
        return "date_bin('1 hour', ts, timestamptz '1970-01-01 00:00:00+00')"
    return "strftime('%%Y-%%m-%%d %%H:00:00', ts)"


def _bucket(vendor: str) -> str:
    if vendor == "postgresql":
        bounds = ",".join(str(b) for b in LATENCY_BOUNDS_MS)
        return f"width_bucket(latency_ms, '{{{bounds}}}'::float8[])"
    cases = " ".join(f"WHEN latency_ms < {b} THEN {i}" for i, b in enumerate(LATENCY_BOUNDS_MS))
    return f"CASE {cases} ELSE {len(LATENCY_BOUNDS_MS)} END"


def _exact_sum(column: str, vendor: str, places: int) -> str:
    """The exact sum of `column` (double precision, which the ingest rounds to `places` decimals).

    On PostgreSQL, the sum of the values as integers of their last decimal, scaled back: exact like
    `sum(round(column::numeric, places))`, and the same number for any value with at most `places`
    decimals, without a float-to-numeric conversion per row (about a third of the delta's cost).
    """
    if vendor != "postgresql":
        return f"sum({column})"
    return f"sum(round({column} * 1e{places}::float8)::int8) * 1e-{places}::numeric"


def aggregate_rows_sql(vendor: str, source: str, where: str = "", extra: tuple[str, ...] = ()) -> str:
    """SELECT <dimensions>, <measures> from decision rows in `source`, grouped into cells (and by
    the `extra` columns `source` has, after the dimensions)."""
    buckets = ", ".join(f"count(*) FILTER (WHERE b = {i}) AS {name}" for i, name in enumerate(BUCKET_FIELDS))
    more = "".join(f", {column}" for column in extra)
    return f"""
        SELECT hour, {_ROW_DIMENSIONS}{more},
               count(*) AS count,
               count(*) FILTER (WHERE attempt = 1) AS requests,
               count(*) FILTER (WHERE escalated) AS escalations,
               coalesce(sum(cost_usd), 0) AS cost_usd,
               count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced,
               sum(tokens_in) AS tokens_in,
               sum(tokens_out) AS tokens_out,
               coalesce({_exact_sum("confidence", vendor, 6)}, 0) AS confidence_sum,
               count(confidence) AS confidence_count,
               {_exact_sum("latency_ms", vendor, 3)} AS latency_sum_ms,
               {buckets}
        FROM (SELECT {_hour(vendor)} AS hour, {_ROW_DIMENSIONS}{more}, attempt, escalated, cost_usd,
                     tokens_in, tokens_out, confidence, latency_ms, {_bucket(vendor)} AS b
              FROM {source} {where}) AS rows
        GROUP BY {DIMENSIONS}{more}"""  # noqa: S608 - constant identifiers


def _merge_set() -> str:
    return ", ".join(f"{m} = metrics_rollup_hourly.{m} + excluded.{m}" for m in ROLLUP_MEASURES)


def _sum_measures() -> str:
    return ", ".join(f"sum({m})" for m in ROLLUP_MEASURES)


# Ingest on PostgreSQL: insert the staged rows, skipping those already stored, and write the rollup
# delta of exactly the rows inserted; answer the event ids skipped (usually none, so usually no rows).
_INSERT_COLUMNS = ", ".join(DECISION_COLUMNS)
# The staging COPY in storage order (the raw path of tests/benchmarks/bench_ingest.py writes it).
STAGING_COPY = f"COPY metrics_decision_staging ({_INSERT_COLUMNS}) FROM STDIN"
# The ingest's COPY: the same table, columns in the order of `metrics.ingest.copy_rows.copy_row` lines.
INGEST_COPY = f"COPY metrics_decision_staging ({', '.join(COPY_COLUMNS)}) FROM STDIN"
# The dimension values of each decision row `d` (PostgreSQL): the split arm, the client app, and
# the attribute keys the policy declares, given as two parallel arrays (policy ids, keys) in the
# statement's parameters; a missing one is DIMENSION_NONE. Values are capped later, at the fold.
DIMENSION_COLUMNS: tuple[str, ...] = ("dim_key", "dim_value")


def pg_dimension_value(row: str, key: str) -> str:
    """The value of dimension `key` of decision row `row` (PostgreSQL), DIMENSION_NONE when
    missing; an attribute key is the expression `key` names (a column, or `%s` for a parameter)."""
    if key == DIMENSION_ARM:
        return f"coalesce({row}.reason -> 'split' ->> 'arm', '{DIMENSION_NONE}')"
    if key == DIMENSION_CLIENT:
        return f"coalesce(nullif({row}.client_app, ''), '{DIMENSION_NONE}')"
    return f"coalesce({row}.attributes ->> {key}, '{DIMENSION_NONE}')"


def _pg_dimension_values(row: str) -> str:
    return f"""CROSS JOIN LATERAL (
            SELECT '{DIMENSION_ARM}' AS dim_key,
                   {pg_dimension_value(row, DIMENSION_ARM)} AS dim_value
            UNION ALL SELECT '{DIMENSION_CLIENT}', {pg_dimension_value(row, DIMENSION_CLIENT)}
            UNION ALL SELECT declared.key, {pg_dimension_value(row, "declared.key")}
                FROM unnest(%s::int[], %s::text[]) AS declared(policy_id, key)
                WHERE declared.policy_id = {row}.policy_id
        ) AS dimension"""  # noqa: S608 - constant identifiers


# Up to %s (about: whole batches) of the raw rows the ingest left for the dimension fold, by primary
# key, taken off `metrics_dimension_pending` oldest first in the fold's transaction; the fold's
# advisory lock makes it the only taker, and a batch committing meanwhile waits for the next round.
DIMENSION_PENDING_ROWS = """
    WITH taken AS (
        DELETE FROM metrics_dimension_pending WHERE id IN (
            SELECT id FROM (
                SELECT id, sum(cardinality(event_id)) OVER (ORDER BY id) - cardinality(event_id) AS before
                FROM metrics_dimension_pending
            ) AS queue WHERE before < %s
        )
        RETURNING ts, event_id
    ), keys AS (
        SELECT k.ts, k.event_id FROM taken CROSS JOIN LATERAL unnest(taken.ts, taken.event_id) AS k(ts, event_id)
    ), pending AS (
        SELECT d.* FROM keys JOIN metrics_decision AS d ON d.ts = keys.ts AND d.event_id = keys.event_id
    )"""


def dimension_rows_sql(vendor: str, source: str, where: str = "") -> str:
    """The dimension deltas of the decision rows in `source` (PostgreSQL; parameters: the declared
    keys' policy ids and keys, then those of `where`)."""
    assert vendor == "postgresql"
    return aggregate_rows_sql(vendor, f"{source} {_pg_dimension_values(source)}", where, DIMENSION_COLUMNS)


INGEST_POSTGRES = f"""
    WITH ins AS (
        INSERT INTO metrics_decision ({_INSERT_COLUMNS})
        SELECT {_INSERT_COLUMNS} FROM metrics_decision_staging
        ON CONFLICT DO NOTHING
        RETURNING ts, event_id, {_ROW_DIMENSIONS}, attempt, escalated, cost_usd, tokens_in,
                  tokens_out, confidence, latency_ms
    ), inbox AS (
        INSERT INTO metrics_rollup_inbox ({DIMENSIONS}, {MEASURES})
        {aggregate_rows_sql("postgresql", "ins")}
    ), dimension_pending AS (
        INSERT INTO metrics_dimension_pending (ts, event_id)
        SELECT array_agg(ts), array_agg(event_id) FROM ins HAVING count(*) > 0
    )
    SELECT staged.event_id::text FROM metrics_decision_staging AS staged
    WHERE NOT EXISTS (SELECT FROM ins WHERE ins.event_id = staged.event_id AND ins.ts = staged.ts)"""  # noqa: S608 - constant identifiers

# Fold up to %s inbox deltas into the hourly cells, in one statement: the deltas are deleted in the
# same transaction that adds them, so each counts exactly once; SKIP LOCKED lets workers share the
# inbox, and cells are upserted in key order so two workers cannot deadlock.
ROLLUP_UPDATE_POSTGRES = f"""
    WITH taken AS (
        DELETE FROM metrics_rollup_inbox
        WHERE id IN (SELECT id FROM metrics_rollup_inbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
        RETURNING *
    ), merged AS (
        INSERT INTO metrics_rollup_hourly ({DIMENSIONS}, {MEASURES})
        SELECT {DIMENSIONS}, {_sum_measures()} FROM taken
        GROUP BY {DIMENSIONS} ORDER BY {DIMENSIONS}
        ON CONFLICT ({DIMENSIONS}) DO UPDATE SET {_merge_set()}
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM merged),
           (SELECT array_agg(DISTINCT policy_id) FROM taken)"""  # noqa: S608 - constant identifiers

# SQLite (the demo): one writer at a time, so two statements over an id range do the same.
ROLLUP_UPDATE_SQLITE_MERGE = f"""
    INSERT INTO metrics_rollup_hourly ({DIMENSIONS}, {MEASURES})
    SELECT {DIMENSIONS}, {_sum_measures()} FROM metrics_rollup_inbox WHERE id <= %s
    GROUP BY {DIMENSIONS} ORDER BY {DIMENSIONS}
    ON CONFLICT ({DIMENSIONS}) DO UPDATE SET {_merge_set()}"""  # noqa: S608 - constant identifiers


def rebuild_insert_sql(vendor: str) -> str:
    """INSERT the cells of raw rows with since <= ts < until (parameters: since, until)."""
    return f"INSERT INTO metrics_rollup_hourly ({DIMENSIONS}, {MEASURES}) " + aggregate_rows_sql(
        vendor, "metrics_decision", "WHERE ts >= %s AND ts < %s"
    )


# -- the daily rollup: kept equal to the hourly cells by triggers ----------------------------------
# Every statement that writes `metrics_rollup_hourly` (the fold's upsert, a rebuild's delete and
# insert, anything else) applies the change of each hourly cell to its UTC day in the same
# statement: inserted cells are added, deleted cells subtracted, updated cells both. A day cell
# left with no hourly cell is deleted. PostgreSQL does it once per statement (transition tables;
# day cells upserted in key order, so concurrent folds cannot deadlock); SQLite once per row.

_DAY_DIMENSIONS = ", ".join(ROLLUP_DIMENSIONS[1:])
DAILY_KEY = f"day_start, {_DAY_DIMENSIONS}"
_DAILY_TRIGGERS = ("insert", "update", "delete")


def _day(vendor: str, column: str) -> str:
    """The start of `column`'s UTC day (SQL run without parameters: no %% escaping)."""
    if vendor == "postgresql":
        return f"date_trunc('day', {column}, 'UTC')"
    return f"strftime('%Y-%m-%d 00:00:00', {column})"


def _daily_add_set() -> str:
    return ", ".join(f"{m} = metrics_rollup_daily.{m} + excluded.{m}" for m in ROLLUP_MEASURES)


def _pg_daily_apply(parts: tuple[tuple[str, str], ...]) -> str:
    changes = " UNION ALL ".join(
        f"SELECT {_day('postgresql', 'c.hour')} AS day_start, {_DAY_DIMENSIONS}, "  # noqa: S608 - constant identifiers
        + ", ".join(f"{sign}c.{m} AS {m}" for m in ROLLUP_MEASURES)
        + f" FROM {table} AS c"
        for table, sign in parts
    )
    return (
        f"INSERT INTO metrics_rollup_daily ({DAILY_KEY}, {MEASURES}) "  # noqa: S608 - constant identifiers
        f"SELECT {DAILY_KEY}, {_sum_measures()} FROM ({changes}) AS changes "
        f"GROUP BY {DAILY_KEY} ORDER BY {DAILY_KEY} "
        f"ON CONFLICT ({DAILY_KEY}) DO UPDATE SET {_daily_add_set()}"
    )


def _same_cell(left: str, right: str) -> str:
    return " AND ".join(f"{left}.{d} = {right}.{d}" for d in ROLLUP_DIMENSIONS[1:])


_PG_DAILY_CLEANUP = f"""
    DELETE FROM metrics_rollup_daily AS d
    USING (SELECT DISTINCT {_day("postgresql", "hour")} AS day_start, {_DAY_DIMENSIONS} FROM old_cells) AS o
    WHERE d.count = 0 AND d.day_start = o.day_start AND {_same_cell("d", "o")}
      AND NOT EXISTS (SELECT FROM metrics_rollup_hourly AS h
                      WHERE h.hour >= o.day_start AND h.hour < o.day_start + interval '1 day'
                        AND {_same_cell("h", "o")})"""  # noqa: S608 - constant identifiers


def _sqlite_daily_upsert(row: str, sign: str) -> str:
    values = ", ".join(
        [
            _day("sqlite", f"{row}.hour"),
            *(f"{row}.{d}" for d in ROLLUP_DIMENSIONS[1:]),
            *(f"{sign}{row}.{m}" for m in ROLLUP_MEASURES),
        ]
    )
    return (
        f"INSERT INTO metrics_rollup_daily ({DAILY_KEY}, {MEASURES}) VALUES ({values}) "  # noqa: S608 - constant identifiers
        f"ON CONFLICT ({DAILY_KEY}) DO UPDATE SET {_daily_add_set()};"
    )


_SQLITE_DAILY_CLEANUP = f"""
    DELETE FROM metrics_rollup_daily
    WHERE count = 0 AND day_start = {_day("sqlite", "OLD.hour")}
      AND {" AND ".join(f"{d} = OLD.{d}" for d in ROLLUP_DIMENSIONS[1:])}
      AND NOT EXISTS (SELECT 1 FROM metrics_rollup_hourly AS h
                      WHERE h.hour >= {_day("sqlite", "OLD.hour")}
                        AND h.hour < strftime('%Y-%m-%d 00:00:00', OLD.hour, '+1 day')
                        AND {_same_cell("h", "OLD")});"""  # noqa: S608 - constant identifiers


def daily_triggers_create_sql(vendor: str) -> list[str]:
    """The statements creating the triggers that keep `metrics_rollup_daily` equal to the hourly
    cells summed per UTC day.

    Migration 0004 runs what this returns, so a database gets the triggers of the code it was
    migrated with: a change here reaches existing databases only through a new migration that
    drops and recreates them (as `metrics.schema` does for the decision table in 0002).
    """
    statements = []
    if vendor == "postgresql":
        bodies = {
            "insert": (_pg_daily_apply((("new_cells", ""),)), "REFERENCING NEW TABLE AS new_cells"),
            "update": (
                _pg_daily_apply((("new_cells", ""), ("old_cells", "-"))) + ";" + _PG_DAILY_CLEANUP,
                "REFERENCING OLD TABLE AS old_cells NEW TABLE AS new_cells",
            ),
            "delete": (
                _pg_daily_apply((("old_cells", "-"),)) + ";" + _PG_DAILY_CLEANUP,
                "REFERENCING OLD TABLE AS old_cells",
            ),
        }
        for event, (body, referencing) in bodies.items():
            name = f"metrics_rollup_daily_on_{event}"
            statements.append(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n{body};\nRETURN NULL;\nEND\n$$"
            )
            statements.append(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON metrics_rollup_hourly "
                f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        return statements
    row_bodies = {
        "insert": _sqlite_daily_upsert("NEW", ""),
        "update": _sqlite_daily_upsert("NEW", "") + _sqlite_daily_upsert("OLD", "-") + _SQLITE_DAILY_CLEANUP,
        "delete": _sqlite_daily_upsert("OLD", "-") + _SQLITE_DAILY_CLEANUP,
    }
    for event, body in row_bodies.items():
        statements.append(
            f"CREATE TRIGGER metrics_rollup_daily_on_{event} AFTER {event.upper()} "
            f"ON metrics_rollup_hourly FOR EACH ROW BEGIN {body} END"
        )
    return statements


def daily_triggers_drop_sql(vendor: str) -> list[str]:
    statements = [
        f"DROP TRIGGER IF EXISTS metrics_rollup_daily_on_{event}"
        + (" ON metrics_rollup_hourly" if vendor == "postgresql" else "")
        for event in _DAILY_TRIGGERS
    ]
    if vendor == "postgresql":
        statements += [f"DROP FUNCTION IF EXISTS metrics_rollup_daily_on_{event}()" for event in _DAILY_TRIGGERS]
    return statements


def daily_backfill_sql(vendor: str) -> str:
    """Fill the daily cells from the hourly cells already there (the migration that adds them)."""
    return (
        f"INSERT INTO metrics_rollup_daily ({DAILY_KEY}, {MEASURES}) "  # noqa: S608 - constant identifiers
        f"SELECT {_day(vendor, 'hour')}, {_DAY_DIMENSIONS}, {_sum_measures()} FROM metrics_rollup_hourly "
        f"GROUP BY {_day(vendor, 'hour')}, {_DAY_DIMENSIONS}"
    )
