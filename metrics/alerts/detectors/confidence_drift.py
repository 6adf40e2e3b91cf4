"""confidence_drift: the mean confidence of a cascade route's first tier (the score its escalation
threshold reads) against its baseline, over the drift window: a model or prompt change that lowers
confidence shows here before the escalations it causes leave their band."""

from __future__ import annotations

from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.stats import shares


class ConfidenceDrift(RouteDetector):
    name = "confidence_drift"

    def checks(self, view: RouteView) -> Checks:
        t = view.totals
        tiers = sorted(k for k, v in t.tier_confidence.items() if v[1] or v[3])
        if not tiers:
            return []
        conf = t.tier_confidence[tiers[0]]
        return [
            (
                f"tier {tiers[0]} confidence",
                shares.mean_drop(
                    conf[0],
                    int(conf[1]),
                    conf[2],
                    int(conf[3]),
                    detector=self.name,
                    subject=f"{view.who}: tier {tiers[0]} mean confidence",
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                ),
            )
        ]


DETECTOR = ConfidenceDrift()
