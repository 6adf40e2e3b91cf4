"""The domain rules every surface of the metrics shares, each defined once (no Django).

`bands`: the expected escalation band of each tier transition of a route (declared, defaulted, or
none). `latency`: the rollups' latency buckets and the quantiles read from them. `periods`: day
and month boundaries of budgets and reports. `numbers`: reading sums that may be NULL.
`budgets`: the budgets a document sets per dimension value.

Dashboards, the metrics API, the monthly report, alerts and what-if call these; none of them keeps
its own copy. May import `metrics.schema` and `metrics.stats` only.
"""
