"""mix_shift: the route's task-type mix (requests) and model mix (attempts) against their baseline,
over the drift window."""

from __future__ import annotations

from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.stats import drift


class MixShift(RouteDetector):
    name = "mix_shift"

    def checks(self, view: RouteView) -> Checks:
        t = view.totals
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
        ]


DETECTOR = MixShift()
