"""escalation_band: each tier transition's escalation rate against the band the route expects,
and against its own baseline.

The bands come from `metrics.rules.bands` (declared, defaulted, or none: a transition without a
band is not judged against one); the test is `metrics.stats.drift.escalation_band`, over the drift
window. Against the baseline (every transition, band or not): `metrics.stats.shares.
proportion_change`, one-sided, the 24 h window against the 7 days before; a rise inside the band
(a tier-1 pass-rate drop the next tier absorbs) shows here first. One alert per route carries
either kind of check.
"""

from __future__ import annotations

from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.rules import bands as band_rules
from metrics.stats import drift, shares


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
        counts = view.totals.tier_counts
        for tier in sorted(counts):
            if tier + 1 not in counts:
                continue
            low, up = counts[tier], counts[tier + 1]
            reached, base_reached = low[0] + low[1], low[4] + low[5]
            step = f"tier {tier}→{tier + 1}"
            steps.append(
                (
                    f"{step} against baseline",
                    shares.proportion_change(
                        min(up[1], reached),
                        reached,
                        min(up[5], base_reached),
                        base_reached,
                        detector=self.name,
                        alternative="greater",
                        subject=f"{view.who}: {step} escalation",
                        window=DRIFT_WINDOW,
                        baseline_window=DRIFT_BASELINE,
                    ),
                )
            )
        return steps


DETECTOR = EscalationBand()
