"""The monthly review report: `selectors` (the month against the previous one, recommendations and
their savings), `views` (page, JSON, CSV), `apis`, and `services` (marking a month reviewed).

May import `metrics.dashboards` (its filters and definitions), `metrics.whatif`, `metrics.rollups`,
`metrics.rules`, `metrics.models`, `metrics.shapes` and `routing`.
"""
