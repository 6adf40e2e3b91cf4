"""Rollups: hourly and daily cells summed from the raw decisions. `sql` (the aggregate, the daily
triggers, the rebuild), `services` (folding the inbox of deltas, rebuilding a range) and
`selectors`, the one query module every read of rollup cells goes through: dashboards, reports,
alerts and what-if call it, never the rollup models directly (the seam a column store can take).

May import `metrics.models`, `metrics.schema`, `metrics.rules`; never dashboards, reports, alerts.
"""
