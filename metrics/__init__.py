"""Signalbox's metrics: from decision logs to the numbers of a monthly routing review.

One Django app (`models`, `admin`, `tasks`, `urls`, `migrations`), in rooms by concept:
`ingest/` (decision records in), `rollups/` (hourly and daily cells, the one query module),
`rules/` (each domain rule defined once: bands, latency quantiles, periods), `budget/`,
`dashboards/`, `reports/`, `whatif/`, `alerts/`, and `stats/` (pure statistics). `schema` is the
storage shape with no Django import; `shapes` the OpenAPI building blocks of the metrics API.

`routing` never imports `metrics`; `rules` and `stats` import no Django.
"""
