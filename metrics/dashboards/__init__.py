"""The dashboards: `selectors` (the one import of every page's reads, a facade over `filters`,
`definitions`, `spend`, `cascade`, `latency` and `worksheet`, one function per page over the
rollups), `charts` (Plotly figures from that data, their shared looks in `chart_style`), `views`
(the server-rendered pages) and `apis` (the same data as JSON).

May import `metrics.rollups`, `metrics.rules`, `metrics.budget`, `metrics.stats`, `metrics.canary`,
`metrics.models`, `metrics.shapes` and `routing`.
"""
