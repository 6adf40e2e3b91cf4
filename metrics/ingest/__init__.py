"""Decision-log ingestion: the client endpoint (`apis`), the record check (`records`: the server's
side of the decision-record contract), the COPY rows built from valid records (`copy_rows`), pricing
at ingest (`pricing`), storage (`services`: COPY into day partitions on PostgreSQL, inserts on
SQLite) and the day partitions themselves (`partitions`).

May import `metrics.models`, `metrics.schema`, `metrics.rollups` (to queue the rollup update),
`metrics.budget`, `routing` and `controlplane`; nothing reads dashboards, reports or alerts from here.
"""
