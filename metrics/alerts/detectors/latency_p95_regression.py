"""latency_p95_regression: the route's p95 latency (from the rollups' histogram buckets), and each
tier's on a cascade, against its own baseline; and the route's against the budget its
expectations set (`latency_p95_ms`), over the drift window.

Against the baseline a p95 read from buckets is a poor statistic on its own: interpolated inside a
bucket 2.5× wide it moves by a third on noise, and a real slowdown of 1.4× moves it by less than
that. So the verdict is the tail test (`metrics.stats.shares.latency_tail_rise` at the lower edge
of the bucket holding the baseline's p95: the share of attempts slower than a fixed bound, judged
by significance and size), on condition that the p95 rose and is above the 500 ms floor
(`metrics.stats.drift.latency_p95_regression` with a ratio of 1). Per tier because a slower tier 2
or 3 moves the route's p95 little: most attempts are tier 1's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from metrics.alerts import checks as expectation
from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW
from metrics.rules.latency import QUANTILE_BOUNDS
from metrics.stats import Finding, drift, shares

P95_MUST_RISE = 1.0  # the p95's part of the verdict: it rose at all (the tail test sizes the change)


class LatencyP95Regression(RouteDetector):
    name = "latency_p95_regression"

    def checks(self, view: RouteView) -> Checks:
        t, subject = view.totals, f"{view.who}: latency p95"
        checks: Checks = [("against baseline", self._regression(view, t.buckets, t.base_buckets, subject))]
        tiers = sorted(k for k, (cur, base) in t.tier_buckets.items() if sum(cur) or sum(base))
        if len(tiers) > 1:
            for k in tiers:
                cur, base = t.tier_buckets[k]
                checks.append(
                    (
                        f"tier {k} against baseline",
                        self._regression(view, cur, base, f"{view.who}: tier {k} latency p95"),
                    )
                )
        budget = view.expect.get("latency_p95_ms")
        if budget is not None:
            checks.append(
                (
                    "against p95 budget",
                    expectation.latency_p95_over_budget(
                        QUANTILE_BOUNDS, t.buckets, budget_ms=float(budget), subject=subject, window=DRIFT_WINDOW
                    ),
                )
            )
        return checks

    def _regression(self, view: RouteView, counts: Sequence[int], base_counts: Sequence[int], subject: str) -> Finding:
        ratio = drift.latency_p95_regression(
            QUANTILE_BOUNDS,
            counts,
            base_counts,
            ratio=P95_MUST_RISE,
            subject=subject,
            window=DRIFT_WINDOW,
            baseline_window=DRIFT_BASELINE,
        )
        if not ratio.fired:
            return ratio
        tail = shares.latency_tail_rise(
            QUANTILE_BOUNDS,
            counts,
            base_counts,
            detector=self.name,
            subject=subject,
            edge_of="lower",
            alpha=view.level(shares.CHANGE_ALPHA),
            window=DRIFT_WINDOW,
            baseline_window=DRIFT_BASELINE,
        )
        if tail.status == "insufficient_data":
            return replace(tail, detector=self.name)
        numbers = {**tail.evidence.numbers, "p95": dict(ratio.evidence.numbers)}
        if tail.fired:
            return replace(
                tail,
                detector=self.name,
                summary=f"{ratio.summary}; {tail.summary}",
                evidence=replace(tail.evidence, numbers=numbers),
            )
        return replace(
            tail,
            detector=self.name,
            status="ok",
            severity="info",
            summary=f"{ratio.summary}; but {tail.summary}, not a regression",
            evidence=replace(tail.evidence, numbers=numbers),
        )


DETECTOR = LatencyP95Regression()
