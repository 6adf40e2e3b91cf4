"""mix_shift: the route's task-type mix (requests) and model mix (attempts) against their baseline,
over the drift window; and each model's share of the attempts on the route's first tier on its own
(a z-test with a 10-point, 1.5× minimum), which judges quiet routes the divergence's 500-request
minimum leaves out (a canary moving a third of a 20 req/h route to another model). The first tier
only: more escalation moves the mix over all tiers, and that is `escalation_band`'s to report."""

from __future__ import annotations

from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.stats import drift, shares

MODEL_SHARE_MIN_POINTS = 0.10


class MixShift(RouteDetector):
    name = "mix_shift"

    def checks(self, view: RouteView) -> Checks:
        t = view.totals
        first = min((tier for tier, _ in t.tier_models), default=1)
        mix = {m: c for (tier, m), c in t.tier_models.items() if tier == first}
        n, base_n = sum(c[0] for c in mix.values()), sum(c[1] for c in mix.values())
        per_model: Checks = [
            (
                f"model {model} share",
                shares.proportion_change(
                    mix[model][0],
                    n,
                    mix[model][1],
                    base_n,
                    detector=self.name,
                    subject=f"{view.who}: model {model}'s share of tier {first} attempts",
                    min_points=MODEL_SHARE_MIN_POINTS,
                    min_ratio=shares.SHARE_MIN_RATIO,
                    alpha=view.level(shares.CHANGE_ALPHA),
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                ),
            )
            for model in sorted(mix)
        ]
        return [
            (
                "task types",
                drift.mix_shift(
                    t.task_mix,
                    t.base_task_mix,
                    subject=f"{view.who}: task-type mix",
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                ),
            ),
            (
                "models",
                drift.mix_shift(
                    t.model_mix,
                    t.base_model_mix,
                    subject=f"{view.who}: model mix",
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                ),
            ),
            *per_model,
        ]


DETECTOR = MixShift()
