"""Measure each detector's false-alarm rate and detection delay on synthetic streams.

    python -m metrics.stats.false_alarms [--seeds 200] [--detection-seeds 50]

Clean streams (no change) are evaluated every hour for a week per seed; a detection scenario
injects one change at eval hour 48 and records how many hours of changed data each target
detector needed. The figures in docs/alerts.md come from this script with its defaults.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

from metrics.stats import drift, simulate
from metrics.stats.divergence import (
    jensen_shannon_divergence,
    population_stability_index,
    smoothed_distributions,
)
from metrics.stats.simulate import DETECTORS, EVAL_HOURS, Scenario


@dataclass(frozen=True, slots=True)
class FalseAlarmRate:
    detector: str
    seeds: int
    evaluations_fired: float  # fraction of (seed, hour) evaluations that alerted
    weeks_with_alert: float  # fraction of route-weeks with at least one alert
    episodes_per_week: float  # alert episodes (runs of consecutive hours) per route-week


def false_alarm_rates(scenario: Scenario, seeds: range) -> dict[str, FalseAlarmRate]:
    """Run the clean ``scenario`` over ``seeds``; return per-detector false-alarm figures."""
    fired_evals = dict.fromkeys(DETECTORS, 0)
    weeks = dict.fromkeys(DETECTORS, 0)
    eps = dict.fromkeys(DETECTORS, 0)
    for seed in seeds:
        fired = simulate.evaluate(simulate.generate(scenario, seed))
        for d, hours in fired.items():
            fired_evals[d] += len(hours)
            weeks[d] += bool(hours)
            eps[d] += simulate.episodes(hours)
    n = len(seeds)
    return {d: FalseAlarmRate(d, n, fired_evals[d] / (n * EVAL_HOURS), weeks[d] / n, eps[d] / n) for d in DETECTORS}


@dataclass(frozen=True, slots=True)
class Detection:
    scenario: str
    detector: str
    seeds: int
    detected: int  # seeds where the detector fired at or after the change
    early: int  # seeds where it fired before the change (a false alarm)
    delays: tuple[int, ...]  # hours of changed data seen when it first fired


DETECTION_SCENARIOS: tuple[tuple[Scenario, tuple[str, ...]], ...] = (
    (Scenario("escalation 25% → 40%", escalation=(0.25, 0.40)), ("escalation_band",)),
    (Scenario("pass rate 95% → 88%", pass_rate=(0.95, 0.88)), ("pass_rate_drop",)),
    (Scenario("cost per request ×1.5", cost_mult=(1.0, 1.5)), ("cost_per_request_regression",)),
    (Scenario("provider outage: failures 2% → 30%", failure=(0.02, 0.30)), ("error_spike",)),
    (Scenario("latency ×1.6", latency_mult=(1.0, 1.6)), ("latency_p95_regression",)),
    (
        Scenario("moderate task mix shift (PSI ≈ 0.19)", mix=(simulate.BASE_MIX, simulate.SHIFTED_MIX)),
        ("mix_shift_info",),
    ),
    (
        Scenario("major task mix shift (PSI ≈ 0.48)", mix=(simulate.BASE_MIX, simulate.MAJOR_SHIFT_MIX)),
        ("mix_shift_ticket",),
    ),
    (Scenario("spend spike ×20", cost_mult=(1.0, 20.0)), ("burn_rate_monthly_page", "burn_rate_daily_page")),
    (Scenario("spend leak ×8", cost_mult=(1.0, 8.0)), ("burn_rate_monthly_ticket", "burn_rate_daily_page")),
)


def detections(scenario: Scenario, targets: tuple[str, ...], seeds: range) -> list[Detection]:
    """Run a change scenario over ``seeds``; return detection figures for each target detector."""
    found: dict[str, list[int]] = {d: [] for d in targets}
    early = dict.fromkeys(targets, 0)
    for seed in seeds:
        fired = simulate.evaluate(simulate.generate(scenario, seed))
        for d in targets:
            if any(h < scenario.change_hour for h in fired[d]):
                early[d] += 1
            first = simulate.first_alert(fired[d], scenario.change_hour)
            if first is not None:
                found[d].append(first - scenario.change_hour + 1)
    return [Detection(scenario.name, d, len(seeds), len(found[d]), early[d], tuple(found[d])) for d in targets]


def null_divergence_quantiles(
    mix: Mapping[str, float], n_current: int, n_baseline: int, trials: int, seed: int = 0
) -> dict[str, dict[str, float]]:
    """JSD and PSI of two samples drawn from the same ``mix``: quantiles of their null distribution."""
    rnd = random.Random(seed)
    names = list(mix)
    weights = [mix[k] for k in names]
    jsd, psi = [], []
    for _ in range(trials):
        a = dict.fromkeys(names, 0)
        b = dict.fromkeys(names, 0)
        for k in rnd.choices(names, weights, k=n_current):
            a[k] += 1
        for k in rnd.choices(names, weights, k=n_baseline):
            b[k] += 1
        p, q = smoothed_distributions(a, b)
        jsd.append(jensen_shannon_divergence(p, q))
        psi.append(population_stability_index(p, q))
    out = {}
    for name, xs in (("jsd", sorted(jsd)), ("psi", sorted(psi))):
        out[name] = {
            "mean": statistics.fmean(xs),
            "p99": xs[int(0.99 * len(xs))],
            "p99.9": xs[min(len(xs) - 1, int(0.999 * len(xs)))],
            "max": xs[-1],
        }
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="clean route-weeks per volume")
    parser.add_argument("--detection-seeds", type=int, default=50)
    parser.add_argument("--null-trials", type=int, default=10000)
    args = parser.parse_args(argv)
    time.monotonic()

    clean = (
        ("100 req/h (diurnal 40–160)", Scenario()),
        ("20 req/h (diurnal 8–32)", Scenario(requests_per_hour=20)),
        ("1000 req/h (diurnal 400–1600)", Scenario(requests_per_hour=1000)),
        (
            "100 req/h, escalation on the band edge (30%), failures 4%",
            Scenario(escalation=(0.30, 0.30), failure=(0.04, 0.04)),
        ),
    )
    for _label, scenario in clean:
        seeds = range(args.seeds if scenario.requests_per_hour <= 100 else max(20, args.seeds // 10))
        rates = false_alarm_rates(scenario, seeds)
        for _r in rates.values():
            pass

    for scenario, targets in DETECTION_SCENARIOS:
        for d in detections(scenario, targets, range(args.detection_seeds)):
            ds = sorted(d.delays)
            statistics.median(ds) if ds else float("nan")
            ds[int(0.9 * (len(ds) - 1))] if ds else float("nan")
            ds[-1] if ds else float("nan")

    for n1, n2 in ((drift.MIX_MIN_SAMPLES, drift.MIX_MIN_SAMPLES), (500, 3500), (2400, 16800)):
        trials = args.null_trials if n1 + n2 < 10_000 else args.null_trials // 10
        q = null_divergence_quantiles(simulate.BASE_MIX, n1, n2, trials)
        _j, _p = q["jsd"], q["psi"]
    for _name, mix in (("moderate", simulate.SHIFTED_MIX), ("major", simulate.MAJOR_SHIFT_MIX)):
        _a, _b = smoothed_distributions(
            {k: round(v * 10000) for k, v in mix.items()},
            {k: round(v * 10000) for k, v in simulate.BASE_MIX.items()},
        )


if __name__ == "__main__":
    main()
