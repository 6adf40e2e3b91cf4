"""pass_rate_drop: the route's pass rate against its own baseline and against the minimum its
expectations promise (`min_pass_rate`), over the drift window; on a cascade route also its last
tier's pass rate (ok / attempts the provider answered) against its baseline: there a failure is
final, while a drop at a lower tier escalates and shows in `escalation_band`'s baseline check.
Both also for slow drift (`metrics.stats.cusum.rate_drift`, the last 72 h hour by hour against the
5 days before, toward a fall of 4 points)."""

from __future__ import annotations

from metrics.alerts import checks as expectation
from metrics.alerts.detectors.base import Checks, RouteDetector, RouteView
from metrics.alerts.reads import SERIES
from metrics.alerts.windows import DRIFT_BASELINE, DRIFT_WINDOW, SERIES_BASELINE, SERIES_WINDOW
from metrics.stats import Finding, cusum, drift, shares

_REQ, _ANS, _OK = SERIES.index("requests"), SERIES.index("answered"), SERIES.index("ok")


class PassRateDrop(RouteDetector):
    name = "pass_rate_drop"

    def checks(self, view: RouteView) -> Checks:
        t, subject = view.totals, f"{view.who}: pass rate"
        # "ok" counts every attempt, requests only first attempts: a pass rate is at most 1.
        passes = min(t.ok, t.requests)
        checks: Checks = [
            (
                "against baseline",
                drift.pass_rate_drop(
                    passes,
                    t.requests,
                    min(t.base_ok, t.base_requests),
                    t.base_requests,
                    alpha=view.level(drift.PASS_RATE_ALPHA),
                    subject=subject,
                    window=DRIFT_WINDOW,
                    baseline_window=DRIFT_BASELINE,
                ),
            )
        ]
        tiers = sorted(k for k, c in t.tier_counts.items() if c[2] or c[6])
        if len(tiers) > 1:
            c = t.tier_counts[tiers[-1]]
            checks.append(
                (
                    f"tier {tiers[-1]} pass rate",
                    shares.proportion_change(
                        c[3],
                        c[2],
                        c[7],
                        c[6],
                        detector=self.name,
                        alternative="less",
                        alpha=view.level(shares.CHANGE_ALPHA),
                        subject=f"{view.who}: tier {tiers[-1]} pass rate",
                        window=DRIFT_WINDOW,
                        baseline_window=DRIFT_BASELINE,
                    ),
                )
            )
        # Slow drift, hour by hour: the route's pass rate (ok attempts of every tier per request,
        # capped at the requests, as above) and, on a cascade, its last tier's.
        hours = [[0] * len(SERIES) for _ in view.series_hours]
        base = [0] * len(SERIES)
        for k in t.tier_counts:
            for row, h in zip(hours, view.hourly(k), strict=True):
                row[_OK] += h[_OK]
                row[_REQ] += h[_REQ]
            b = view.series_baseline(k)
            base[_OK] += b[_OK]
            base[_REQ] += b[_REQ]
        checks.append(
            (
                "slow drift",
                self._drift(view, [(min(r[_OK], r[_REQ]), r[_REQ]) for r in hours], base[_OK], base[_REQ], subject),
            )
        )
        if len(tiers) > 1:
            last = tiers[-1]
            b = view.series_baseline(last)
            checks.append(
                (
                    f"tier {last} slow drift",
                    self._drift(
                        view,
                        [(h[_OK], h[_ANS]) for h in view.hourly(last)],
                        b[_OK],
                        b[_ANS],
                        f"{view.who}: tier {last} pass rate",
                    ),
                )
            )
        minimum = view.expect.get("min_pass_rate")
        if minimum is not None:
            checks.append(
                (
                    "against expected minimum",
                    expectation.pass_rate_below_minimum(
                        passes, t.requests, minimum=float(minimum), subject=subject, window=DRIFT_WINDOW
                    ),
                )
            )
        return checks

    def _drift(self, view: RouteView, series: list[tuple[int, int]], base_x: int, base_n: int, subject: str) -> Finding:
        return cusum.rate_drift(
            series,
            min(base_x, base_n),
            base_n,
            detector=self.name,
            subject=subject,
            alternative="less",
            min_points=shares.TIER_MIN_POINTS,
            alpha=view.level(cusum.DRIFT_ALPHA),
            window=SERIES_WINDOW,
            baseline_window=SERIES_BASELINE,
        )


DETECTOR = PassRateDrop()
