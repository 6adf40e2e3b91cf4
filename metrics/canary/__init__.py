"""Canaries: the splits of a policy's live version judged arm against control. `selectors` reads
each split's arms from the dimension rollups (the `arm` dimension) and gives the verdict of
`metrics.stats.canary`; the dashboards' canary page, its API, the monthly report and the
guardrail detector all read it from there.

May import `metrics.rollups`, `metrics.rules`, `metrics.stats`, `metrics.models`, `routing` and
`controlplane`; never dashboards, reports, alerts.
"""
