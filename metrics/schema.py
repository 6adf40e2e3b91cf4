"""The shape of decision storage, with no Django import: the raw table's DDL per database vendor
(used by the migration and the benchmarks), the rollup dimensions and measures, the latency buckets."""

from __future__ import annotations

from datetime import UTC, datetime

# Re-exported (`X as X`: explicit, the module is checked with implicit re-exports off).
from signalbox_client.protocol import BUILTIN_DIMENSIONS as BUILTIN_DIMENSIONS
from signalbox_client.protocol import DIMENSION_ARM as DIMENSION_ARM
from signalbox_client.protocol import DIMENSION_CLIENT as DIMENSION_CLIENT
from signalbox_client.protocol import DIMENSION_NONE as DIMENSION_NONE
from signalbox_client.protocol import DIMENSION_OTHER as DIMENSION_OTHER
from signalbox_client.protocol import DIMENSION_VALUES_PER_DAY as DIMENSION_VALUES_PER_DAY
from signalbox_client.protocol import MAX_ATTRIBUTE_KEY as MAX_ATTRIBUTE_KEY
from signalbox_client.protocol import MAX_ATTRIBUTE_VALUE as MAX_ATTRIBUTE_VALUE
from signalbox_client.protocol import MAX_MODEL as MAX_MODEL
from signalbox_client.protocol import MAX_OUTCOME as MAX_OUTCOME
from signalbox_client.protocol import MAX_PROVIDER as MAX_PROVIDER
from signalbox_client.protocol import MAX_SHORT as MAX_SHORT
from signalbox_client.protocol import OUTCOMES as OUTCOMES

# Upper bounds (exclusive) of the latency histogram buckets, in milliseconds. Bucket i counts
# latencies in [LATENCY_BOUNDS_MS[i-1], LATENCY_BOUNDS_MS[i]); bucket 0 is [0, 25) and the last
# bucket, index len(LATENCY_BOUNDS_MS), is [30000, +inf). It is PostgreSQL's
# width_bucket(latency_ms, bounds) and Python's bisect_right(bounds, latency_ms).
LATENCY_BOUNDS_MS: tuple[int, ...] = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
BUCKET_FIELDS: tuple[str, ...] = tuple(f"latency_b{i}" for i in range(LATENCY_BUCKETS))

# The dimensions of a rollup cell, in the order of the unique key (and of every upsert's ORDER BY).
ROLLUP_DIMENSIONS: tuple[str, ...] = (
    "hour",
    "policy_id",
    "policy_version",
    "route",
    "task_type",
    "model",
    "provider",
    "tier",
    "outcome",
)
# The additive measures of a rollup cell (every one is summed when deltas merge).
ROLLUP_MEASURES: tuple[str, ...] = (
    "count",
    "requests",
    "escalations",
    "cost_usd",
    "unpriced",
    "tokens_in",
    "tokens_out",
    "confidence_sum",
    "confidence_count",
    "latency_sum_ms",
    *BUCKET_FIELDS,
)

# The outcome values and the lengths of the raw table's strings are the client protocol's
# (`signalbox_client.protocol`); the ingest validation (`metrics.ingest.records`) enforces them.

# The raw table's columns in storage order: (name, PostgreSQL type, SQLite type). Every DDL below and
# every column list of the ingest is derived from this one tuple.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ts", "timestamptz NOT NULL", "datetime NOT NULL"),
    ("event_id", "uuid NOT NULL", "char(32) NOT NULL"),
    ("received_at", "timestamptz NOT NULL DEFAULT now()", "datetime NOT NULL DEFAULT CURRENT_TIMESTAMP"),
    ("key_id", "integer NOT NULL", "integer NOT NULL"),
    ("policy_id", "integer NOT NULL", "integer NOT NULL"),
    ("policy_version", "integer NOT NULL", "integer NOT NULL"),
    ("route", f"varchar({MAX_SHORT}) NOT NULL", f"varchar({MAX_SHORT}) NOT NULL"),
    ("task_type", f"varchar({MAX_SHORT}) NOT NULL", f"varchar({MAX_SHORT}) NOT NULL"),
    ("model", f"varchar({MAX_MODEL}) NOT NULL", f"varchar({MAX_MODEL}) NOT NULL"),
    ("provider", f"varchar({MAX_PROVIDER}) NOT NULL", f"varchar({MAX_PROVIDER}) NOT NULL"),
    ("tier", "smallint NOT NULL", "smallint NOT NULL"),
    ("attempt", "smallint NOT NULL", "smallint NOT NULL"),
    ("escalated", "boolean NOT NULL", "bool NOT NULL"),
    ("request_id", f"varchar({MAX_SHORT}) NOT NULL", f"varchar({MAX_SHORT}) NOT NULL"),
    ("reason", "json NOT NULL", "text NOT NULL"),
    ("outcome", f"varchar({MAX_OUTCOME}) NOT NULL", f"varchar({MAX_OUTCOME}) NOT NULL"),
    ("confidence", "double precision", "real"),
    ("tokens_in", "integer NOT NULL", "integer NOT NULL"),
    ("tokens_out", "integer NOT NULL", "integer NOT NULL"),
    ("cost_usd", "numeric(30, 15)", "decimal"),
    ("unpriced", "boolean NOT NULL", "bool NOT NULL"),
    ("latency_ms", "double precision NOT NULL", "real NOT NULL"),
    ("client_app", f"varchar({MAX_SHORT}) NOT NULL", f"varchar({MAX_SHORT}) NOT NULL"),
    ("client_instance", f"varchar({MAX_SHORT}) NOT NULL", f"varchar({MAX_SHORT}) NOT NULL"),
    ("client_sdk_version", f"varchar({MAX_SHORT}) NOT NULL", f"varchar({MAX_SHORT}) NOT NULL"),
    ("attributes", "json NOT NULL", "text NOT NULL"),
)

# The columns an ingest writes, in COPY / INSERT order: all but `received_at` (the database's clock).
DECISION_COLUMNS: tuple[str, ...] = tuple(name for name, _, _ in _COLUMNS if name != "received_at")

# The same columns in the order of the ingest's COPY lines: the three the service adds (the key, and
# the price it looks up) first, then those of one record's text (`metrics.ingest.copy_rows.copy_row`), which
# the per-record check can then build in one piece before the batch is priced.
COPY_LEAD_COLUMNS: tuple[str, ...] = ("key_id", "cost_usd", "unpriced")
COPY_COLUMNS: tuple[str, ...] = COPY_LEAD_COLUMNS + tuple(
    name for name in DECISION_COLUMNS if name not in COPY_LEAD_COLUMNS
)


def _staging_type(postgres: str) -> str:
    """The staging column's type: the raw type without constraints, default or length limit."""
    base = postgres.split(" NOT NULL")[0]
    if base.startswith("varchar"):
        return "text"
    return "numeric" if base.startswith("numeric") else base


def _ddl(column: int) -> str:
    return ",\n".join(f"    {c[0]} {c[column]}" for c in _COLUMNS)


# Only the primary key is indexed: dashboards read the rollups, and the rare reads of raw rows
# (replay, rebuild) select a time range, which partition pruning and the key serve. `json`, not
# `jsonb`, for reason and attributes: written once, read rarely, and jsonb's conversion costs
# about a fifth of the ingest's database time.
POSTGRES_CREATE = f"""
CREATE TABLE metrics_decision (
{_ddl(1)},
    PRIMARY KEY (ts, event_id)
) PARTITION BY RANGE (ts)
"""

# The staging table of one ingest: the columns the COPY writes, no constraints, no indexes.
# Created once per connection; ON COMMIT DELETE ROWS empties it at every commit.
_STAGING_TYPES = {name: _staging_type(postgres) for name, postgres, _ in _COLUMNS}
POSTGRES_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS metrics_decision_staging ("
    + ", ".join(f"{name} {_STAGING_TYPES[name]}" for name in DECISION_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)

SQLITE_CREATE = f"""
CREATE TABLE metrics_decision (
{_ddl(2)},
    PRIMARY KEY (ts, event_id)
)
"""

DROP = "DROP TABLE IF EXISTS metrics_decision"


def sqlite_timestamp(ts: datetime) -> str:
    """An instant as the SQLite demo stores timestamps: UTC, text, microseconds."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
