"""error_spike: the route's provider failures (fallback, error, timeout, rate_limited) over the
spike window against the 24 h before it: a provider outage pages."""

from __future__ import annotations

from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import SPIKE_BASELINE, SPIKE_WINDOW
from metrics.stats import drift


class ErrorSpike(RouteDetector):
    name = "error_spike"

    def checks(self, view: RouteView) -> Checks:
        t = view.totals
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
            )
        ]


DETECTOR = ErrorSpike()
