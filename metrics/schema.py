"""The shape of decision storage, with no Django import: the raw table's DDL per database vendor
(used by the migration and the benchmarks), the rollup dimensions and measures, the latency buckets."""

from __future__ import annotations

# Upper bounds (exclusive) of the latency histogram buckets, in milliseconds. Bucket i counts
# latencies in [LATENCY_BOUNDS_MS[i-1], LATENCY_BOUNDS_MS[i]); bucket 0 is [0, 25) and the last
# bucket, index len(LATENCY_BOUNDS_MS), is [30000, +inf). It is PostgreSQL's
# width_bucket(latency_ms, bounds) and Python's bisect_right(bounds, latency_ms).
LATENCY_BOUNDS_MS: tuple[int, ...] = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
BUCKET_FIELDS: tuple[str, ...] = tuple(f"latency_b{i}" for i in range(LATENCY_BUCKETS))

# The dimensions of a rollup cell, in the order of the unique key (and of every upsert's ORDER BY).
ROLLUP_DIMENSIONS: tuple[str, ...] = (
    "hour", "policy_id", "policy_version", "route", "task_type", "model", "provider", "tier", "outcome",
)
# The additive measures of a rollup cell (every one is summed when deltas merge).
ROLLUP_MEASURES: tuple[str, ...] = (
    "count", "requests", "escalations", "cost_usd", "unpriced", "tokens_in", "tokens_out",
    "confidence_sum", "confidence_count", "latency_sum_ms", *BUCKET_FIELDS,
)

OUTCOMES: tuple[str, ...] = ("ok", "low_confidence", "validation_failed", "error", "timeout", "rate_limited")

DECISION_COLUMNS: tuple[str, ...] = (
    "ts", "event_id", "key_id", "policy_id", "policy_version", "route", "task_type", "model",
    "provider", "tier", "attempt", "escalated", "request_id", "reason", "outcome", "confidence",
    "tokens_in", "tokens_out", "cost_usd", "unpriced", "latency_ms", "client_app",
    "client_instance", "client_sdk_version", "attributes",
)

_COLUMNS_SQL = """
    ts timestamptz NOT NULL,
    event_id uuid NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    key_id integer NOT NULL,
    policy_id integer NOT NULL,
    policy_version integer NOT NULL,
    route varchar(200) NOT NULL,
    task_type varchar(200) NOT NULL,
    model varchar(255) NOT NULL,
    provider varchar(100) NOT NULL,
    tier smallint NOT NULL,
    attempt smallint NOT NULL,
    escalated boolean NOT NULL,
    request_id varchar(200) NOT NULL,
    reason json NOT NULL,
    outcome varchar(20) NOT NULL,
    confidence double precision,
    tokens_in integer NOT NULL,
    tokens_out integer NOT NULL,
    cost_usd numeric(30, 15),
    unpriced boolean NOT NULL,
    latency_ms double precision NOT NULL,
    client_app varchar(200) NOT NULL,
    client_instance varchar(200) NOT NULL,
    client_sdk_version varchar(200) NOT NULL,
    attributes json NOT NULL"""

# Only the primary key is indexed: dashboards read the rollups, and the rare reads of raw rows
# (replay, rebuild) select a time range, which partition pruning and the key serve. `json`, not
# `jsonb`, for reason and attributes: written once, read rarely, and jsonb's conversion costs
# about a fifth of the ingest's database time.
POSTGRES_CREATE = f"""
CREATE TABLE metrics_decision ({_COLUMNS_SQL},
    PRIMARY KEY (ts, event_id)
) PARTITION BY RANGE (ts)
"""

# The staging table of one ingest: same columns as the COPY writes, no constraints, no indexes.
# Created once per connection; ON COMMIT DELETE ROWS empties it at every commit.
POSTGRES_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS metrics_decision_staging (
    ts timestamptz, event_id uuid, key_id integer, policy_id integer, policy_version integer,
    route text, task_type text, model text, provider text, tier smallint, attempt smallint,
    escalated boolean, request_id text, reason json, outcome text, confidence double precision,
    tokens_in integer, tokens_out integer, cost_usd numeric, unpriced boolean,
    latency_ms double precision, client_app text, client_instance text, client_sdk_version text,
    attributes json
) ON COMMIT DELETE ROWS
"""

SQLITE_CREATE = """
CREATE TABLE metrics_decision (
    ts datetime NOT NULL,
    event_id char(32) NOT NULL,
    received_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
    key_id integer NOT NULL,
    policy_id integer NOT NULL,
    policy_version integer NOT NULL,
    route varchar(200) NOT NULL,
    task_type varchar(200) NOT NULL,
    model varchar(255) NOT NULL,
    provider varchar(100) NOT NULL,
    tier smallint NOT NULL,
    attempt smallint NOT NULL,
    escalated bool NOT NULL,
    request_id varchar(200) NOT NULL,
    reason text NOT NULL,
    outcome varchar(20) NOT NULL,
    confidence real,
    tokens_in integer NOT NULL,
    tokens_out integer NOT NULL,
    cost_usd decimal,
    unpriced bool NOT NULL,
    latency_ms real NOT NULL,
    client_app varchar(200) NOT NULL,
    client_instance varchar(200) NOT NULL,
    client_sdk_version varchar(200) NOT NULL,
    attributes text NOT NULL,
    PRIMARY KEY (ts, event_id)
)
"""

DROP = "DROP TABLE IF EXISTS metrics_decision"
