"""escalation_band: each tier transition's escalation rate against the band the route expects,
and against its own baseline.

The bands come from `metrics.rules.bands` (declared, defaulted, or none: a transition without a
band is not judged against one); the test is `metrics.stats.drift.escalation_band`, over the drift
window. Against the baseline (every transition, band or not): `metrics.stats.shares.
proportion_change`, one-sided, the 24 h window against the 7 days before; a rise inside the band
(a tier-1 pass-rate drop the next tier absorbs) shows here first. And each transition's slow
drift (`metrics.stats.cusum.rate_drift`): the hourly escalation rate of the last 72 h against the
5 days before, a CUSUM toward a rise of 4 points, which a ramp over several days crosses before
a 24 h window's average moves enough. One alert per route carries any kind of check.
"""

from __future__ import annotations

from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.reads import SERIES
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW, SERIES_BASELINE, SERIES_WINDOW
from metrics.rules import bands as band_rules
from metrics.stats import Finding, cusum, drift, shares

_REQ, _ESC = SERIES.index("requests"), SERIES.index("escalations")


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
                        alpha=view.level(shares.CHANGE_ALPHA),
                        subject=f"{view.who}: {step} escalation",
                        window=DRIFT_WINDOW,
                        baseline_window=DRIFT_BASELINE,
                    ),
                )
            )
            steps.append((f"{step} slow drift", self._drift(view, tier, step)))
        return steps

    def _drift(self, view: RouteView, tier: int, step: str) -> Finding:
        """Escalations into tier+1 per request that reached the tier, hour by hour."""
        low, up = view.hourly(tier), view.hourly(tier + 1)
        series = []
        for lo, hi in zip(low, up, strict=True):
            reached = lo[_REQ] + lo[_ESC]
            series.append((min(hi[_ESC], reached), reached))
        b_low, b_up = view.series_baseline(tier), view.series_baseline(tier + 1)
        base_reached = b_low[_REQ] + b_low[_ESC]
        return cusum.rate_drift(
            series,
            min(b_up[_ESC], base_reached),
            base_reached,
            detector=self.name,
            subject=f"{view.who}: {step} escalation",
            alternative="greater",
            min_points=shares.TIER_MIN_POINTS,
            alpha=view.level(cusum.DRIFT_ALPHA),
            window=SERIES_WINDOW,
            baseline_window=SERIES_BASELINE,
        )


DETECTOR = EscalationBand()
