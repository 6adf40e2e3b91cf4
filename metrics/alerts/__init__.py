"""Alerts: evaluation of the detectors on rollup windows, the alert lifecycle and delivery through
notification channels (`services`), the expectation checks (`checks`), reads (`selectors`) and the
API (`apis`). The statistics themselves are pure, in `metrics.stats`.

May import `metrics.rollups`, `metrics.rules`, `metrics.budget`, `metrics.stats`, `metrics.models`,
`metrics.shapes`, `routing` and `controlplane`.
"""
