"""traffic_share: each route's share of its policy's requests, and each of its task types' share,
over the drift window against the baseline. A share is a distribution change of the policy's
traffic: a route whose traffic doubled while its own mix stayed the same moves no per-route
detector. Both windows hold whole days, so the daily cycle cancels out of a share."""

from __future__ import annotations

from collections import defaultdict

from metrics.alerts.detectors.base import Checks, Context, Detector
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.stats import shares
from metrics.stats.findings import Finding


class TrafficShare(Detector):
    name = "traffic_share"

    def checked(self, context: Context) -> list[tuple[str, Checks]] | None:
        total = sum(v.totals.requests for v in context.routes)
        base_total = sum(v.totals.base_requests for v in context.routes)
        if len(context.routes) < 2:
            return []
        alpha = context.routes[0].level(shares.CHANGE_ALPHA)  # one level for the whole evaluation
        out = []
        for view in context.routes:
            t = view.totals

            def share(x: int, bx: int, subject: str) -> Finding:
                return shares.proportion_change(
                    x,
                    total,
                    bx,
                    base_total,
                    detector=self.name,
                    subject=subject,
                    min_points=shares.SHARE_MIN_POINTS,
                    min_ratio=shares.SHARE_MIN_RATIO,
                    alpha=alpha,
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                )

            checks = [
                ("route share", share(t.requests, t.base_requests, f"{view.who}: share of the policy's requests"))
            ]
            tasks: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for task, n in t.task_mix.items():
                tasks[task][0] += n
            for task, n in t.base_task_mix.items():
                tasks[task][1] += n
            if len(tasks) > 1:
                for task, (x, bx) in sorted(tasks.items()):
                    checks.append(
                        (f"task {task} share", share(x, bx, f"{view.who}: task {task}'s share of the policy"))
                    )
            out.append((view.route, checks))
        return out


DETECTOR = TrafficShare()
