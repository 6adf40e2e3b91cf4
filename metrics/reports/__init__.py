"""The monthly review report: `selectors` (the month against the previous one, in a fixed number
of queries), `sums` (the month's sums and the measures compared), `recommendations` (where a route
could cost less, their savings, the draft's what-if), `tables` (the CSV tables), `views` (page,
JSON, CSV), `apis`, and `services` (marking a month reviewed).

May import `metrics.dashboards` (its filters and definitions), `metrics.whatif`, `metrics.rollups`,
`metrics.rules`, `metrics.models`, `metrics.shapes` and `routing`.
"""
