"""The dashboards: `selectors` (one function per page over the rollups), `charts` (Plotly figures
from that data), `views` (the server-rendered pages) and `apis` (the same data as JSON).

May import `metrics.rollups`, `metrics.rules`, `metrics.budget`, `metrics.stats`, `metrics.models`,
`metrics.shapes` and `routing`.
"""
