"""SQL shared by ingestion, the incremental rollup and the rebuild, per database vendor.

One aggregate list turns decision rows into rollup measures, so the delta a batch writes to the
inbox and the rebuild's GROUP BY over raw rows compute the same numbers the same way. Sums of
cost, confidence and latency are taken as `numeric`: exact, so the order rows are added in (per
batch then per cell, or all at once) cannot change a digit.
"""

from __future__ import annotations

from metrics.schema import (
    BUCKET_FIELDS,
    DECISION_COLUMNS,
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
        return "date_trunc('hour', ts, 'UTC')"
    return "strftime('%%Y-%%m-%%d %%H:00:00', ts)"


def _bucket(vendor: str) -> str:
    if vendor == "postgresql":
        bounds = ",".join(str(b) for b in LATENCY_BOUNDS_MS)
        return f"width_bucket(latency_ms, '{{{bounds}}}'::float8[])"
    cases = " ".join(f"WHEN latency_ms < {b} THEN {i}" for i, b in enumerate(LATENCY_BOUNDS_MS))
    return f"CASE {cases} ELSE {len(LATENCY_BOUNDS_MS)} END"


def _num(expr: str, vendor: str, places: int) -> str:
    """`expr` as an exact decimal with `places` decimals (ingest already rounds to these)."""
    return f"round({expr}::numeric, {places})" if vendor == "postgresql" else expr


def aggregate_rows_sql(vendor: str, source: str, where: str = "") -> str:
    """SELECT <dimensions>, <measures> from decision rows in `source`, grouped into cells."""
    buckets = ", ".join(f"count(*) FILTER (WHERE b = {i}) AS {name}"
                        for i, name in enumerate(BUCKET_FIELDS))
    return f"""
        SELECT hour, {_ROW_DIMENSIONS},
               count(*) AS count,
               count(*) FILTER (WHERE attempt = 1) AS requests,
               count(*) FILTER (WHERE escalated) AS escalations,
               coalesce(sum(cost_usd), 0) AS cost_usd,
               count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced,
               sum(tokens_in) AS tokens_in,
               sum(tokens_out) AS tokens_out,
               coalesce(sum({_num('confidence', vendor, 6)}), 0) AS confidence_sum,
               count(confidence) AS confidence_count,
               sum({_num('latency_ms', vendor, 3)}) AS latency_sum_ms,
               {buckets}
        FROM (SELECT {_hour(vendor)} AS hour, {_ROW_DIMENSIONS}, attempt, escalated, cost_usd,
                     tokens_in, tokens_out, confidence, latency_ms, {_bucket(vendor)} AS b
              FROM {source} {where}) AS rows
        GROUP BY {DIMENSIONS}"""


def _merge_set() -> str:
    return ", ".join(f"{m} = metrics_rollup_hourly.{m} + excluded.{m}" for m in ROLLUP_MEASURES)


def _sum_measures() -> str:
    return ", ".join(f"sum({m})" for m in ROLLUP_MEASURES)


# Ingest on PostgreSQL: insert the staged rows, skipping those already stored, and write the rollup
# delta of exactly the rows inserted; answer the inserted event ids.
_INSERT_COLUMNS = ", ".join(DECISION_COLUMNS)
STAGING_COPY = f"COPY metrics_decision_staging ({_INSERT_COLUMNS}) FROM STDIN"
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
    )
    SELECT event_id::text FROM ins"""

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
    SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM merged)"""

# SQLite (the demo): one writer at a time, so two statements over an id range do the same.
ROLLUP_UPDATE_SQLITE_MERGE = f"""
    INSERT INTO metrics_rollup_hourly ({DIMENSIONS}, {MEASURES})
    SELECT {DIMENSIONS}, {_sum_measures()} FROM metrics_rollup_inbox WHERE id <= %s
    GROUP BY {DIMENSIONS} ORDER BY {DIMENSIONS}
    ON CONFLICT ({DIMENSIONS}) DO UPDATE SET {_merge_set()}"""


def rebuild_insert_sql(vendor: str) -> str:
    """INSERT the cells of raw rows with since <= ts < until (parameters: since, until)."""
    return (f"INSERT INTO metrics_rollup_hourly ({DIMENSIONS}, {MEASURES}) "
            + aggregate_rows_sql(vendor, "metrics_decision", "WHERE ts >= %s AND ts < %s"))
