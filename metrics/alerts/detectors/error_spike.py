"""error_spike: the route's provider failures (fallback, error, timeout, rate_limited) over the
spike window against the 24 h before it: a provider outage pages. And a partial burst too small
for two hours to prove (a tenth of the attempts failing on a quiet route) as a slow drift: the
hourly failure rate of the last 24 h against the 5 days before the slow-drift series, a CUSUM
toward the spike's own limit (3× the baseline rate, at least 5%), a ticket. 24 h, not the 72 h of
the other drift checks: a burst lasts hours, and an outage's hundreds of failures must leave the
series within the day after it ended."""

from __future__ import annotations

from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.reads import SERIES
from metrics.alerts.windows import SERIES_BASELINE, SPIKE_BASELINE, SPIKE_WINDOW
from metrics.stats import cusum, drift

_FAIL, _ATT = SERIES.index("failures"), SERIES.index("attempts")
BURST_HOURS = 24
BURST_WINDOW = f"the last {BURST_HOURS} h, hour by hour"


class ErrorSpike(RouteDetector):
    name = "error_spike"

    def checks(self, view: RouteView) -> Checks:
        t = view.totals
        hours = [[0, 0] for _ in view.series_hours[-BURST_HOURS:]]
        base_x = base_n = 0
        for k in t.tier_counts:
            for row, h in zip(hours, view.hourly(k)[-BURST_HOURS:], strict=True):
                row[0] += h[_FAIL]
                row[1] += h[_ATT]
            b = view.series_baseline(k)
            base_x, base_n = base_x + b[_FAIL], base_n + b[_ATT]
        p0 = base_x / base_n if base_n else 0.0
        burst = cusum.rate_drift(
            [(x, n) for x, n in hours],
            base_x,
            base_n,
            detector=self.name,
            subject=f"{view.who}: provider failures",
            alternative="greater",
            min_points=drift.ERROR_SPIKE_FLOOR,
            target=max(drift.ERROR_SPIKE_FACTOR * p0, drift.ERROR_SPIKE_FLOOR),
            alpha=view.level(cusum.DRIFT_ALPHA),
            window=BURST_WINDOW,
            baseline_window=SERIES_BASELINE,
        )
        return [
            (
                "provider failures",
                drift.error_spike(
                    t.spike_failures,
                    t.spike_attempts,
                    t.spike_base_failures,
                    t.spike_base_attempts,
                    subject=f"{view.who}: provider failures",
                    window=SPIKE_WINDOW,
                    baseline_window=SPIKE_BASELINE,
                ),
            ),
            ("partial burst", burst),
        ]


DETECTOR = ErrorSpike()
