"""escalation_band: each tier transition's escalation rate against the band the route expects.

The bands come from `metrics.rules.bands` (declared, defaulted, or none: a transition without a
band is not judged); the test is `metrics.stats.drift.escalation_band`, over the drift window.
"""

from __future__ import annotations

from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_WINDOW
from metrics.rules import bands as band_rules
from metrics.stats import drift


class EscalationBand(RouteDetector):
    name = "escalation_band"

    def checks(self, view: RouteView) -> Checks:
        tiers = view.totals.tiers
        steps: Checks = []
        for i, band in enumerate(band_rules.escalation_bands(view.doc, max(tiers, default=1))):
            if band is None:
                continue  # a transition with no band is not judged
            lower, upper = tiers.get(i + 1, [0, 0]), tiers.get(i + 2, [0, 0])
            reached, escalated = lower[0] + lower[1], upper[1]
            step = f"tier {i + 1}→{i + 2}"
            steps.append(
                (
                    step,
                    drift.escalation_band(
                        escalated,
                        reached,
                        band=(band.lo, band.hi),
                        subject=f"{view.who}: {step} escalation",
                        window=DRIFT_WINDOW,
                    ),
                )
            )
        return steps


DETECTOR = EscalationBand()
