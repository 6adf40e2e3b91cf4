"""Synthetic per-route streams with an optional injected change, and the detectors run over them.

Used by the tests (detection and false-alarm bounds) and by ``python -m metrics.stats.false_alarms``
(the measured rates in docs/alerts.md). A stream has 5-minute slots grouped into hourly rollups;
the first ``WARMUP_HOURS`` only feed baselines, then every hour of the evaluated week is judged the
way the Celery evaluation will judge it:

- escalation band, pass rate, cost per request, latency p95, task mix: the last 24 h against the
  band, or against the 7 days before those 24 h (24 h windows average out the daily cycle);
- provider failures: the last hour against the 24 h before it;
- burn rate: every 5 minutes, over 5 min / 30 min / 1 h / 6 h windows, for a monthly and a daily
  budget both sized so the route spends exactly its budget on average (the worst clean case).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from metrics.stats import budgets, drift

SLOTS_PER_HOUR = 12
WARMUP_HOURS = 24 + 7 * 24
EVAL_HOURS = 7 * 24
LATENCY_BOUNDS: tuple[float, ...] = (
    50,
    100,
    200,
    300,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    5000,
    7500,
    10000,
    15000,
    30000,
    math.inf,
)
BASE_MIX: Mapping[str, float] = {
    "chat": 0.40,
    "summarize": 0.25,
    "extract": 0.15,
    "classify": 0.10,
    "code": 0.06,
    "translate": 0.03,
    "vision": 0.01,
}
SHIFTED_MIX: Mapping[str, float] = {
    "chat": 0.25,
    "summarize": 0.22,
    "extract": 0.30,
    "classify": 0.10,
    "code": 0.08,
    "translate": 0.04,
    "vision": 0.01,
}
MAJOR_SHIFT_MIX: Mapping[str, float] = {
    "chat": 0.15,
    "summarize": 0.20,
    "extract": 0.35,
    "classify": 0.12,
    "code": 0.12,
    "translate": 0.04,
    "vision": 0.02,
}
ESCALATION_BAND = (0.20, 0.30)
COST_MEDIAN = 0.002  # USD per request, lognormal sigma 1 (mean ≈ 0.0033, CV ≈ 1.3)
COST_SIGMA = 1.0
LATENCY_MEDIAN_MS = 800.0
LATENCY_SIGMA = 0.5

DETECTORS = (
    "escalation_band",
    "pass_rate_drop",
    "cost_per_request_regression",
    "latency_p95_regression",
    "mix_shift_ticket",
    "mix_shift_info",
    "error_spike",
    "burn_rate_monthly_page",
    "burn_rate_monthly_ticket",
    "burn_rate_daily_page",
    "burn_rate_daily_ticket",
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A route's traffic; each (before, after) pair switches at eval hour ``change_hour``."""

    name: str = "clean"
    requests_per_hour: float = 100.0
    diurnal_amplitude: float = 0.6
    escalation: tuple[float, float] = (0.25, 0.25)
    pass_rate: tuple[float, float] = (0.95, 0.95)
    failure: tuple[float, float] = (0.02, 0.02)
    cost_mult: tuple[float, float] = (1.0, 1.0)
    latency_mult: tuple[float, float] = (1.0, 1.0)
    mix: tuple[Mapping[str, float], Mapping[str, float]] = field(default_factory=lambda: (BASE_MIX, BASE_MIX))
    change_hour: int = 48


def _poisson(rnd: random.Random, lam: float) -> int:
    if lam >= 30:
        return max(0, round(rnd.gauss(lam, math.sqrt(lam))))
    limit, k, prod = math.exp(-lam), 0, rnd.random()
    while prod > limit:
        k += 1
        prod *= rnd.random()
    return k


@dataclass(slots=True)
class Stream:
    """Hourly rollups (lists indexed by absolute hour) and 5-minute spend."""

    requests: list[int]
    escalations: list[int]
    passes: list[int]
    failures: list[int]
    cost: list[float]
    latency: list[list[int]]
    mix: list[dict[str, int]]
    slot_cost: list[float]


def generate(scenario: Scenario, seed: int) -> Stream:
    """Generate WARMUP_HOURS + EVAL_HOURS of rollups for one route, reproducibly from ``seed``."""
    rnd = random.Random(seed)
    r, lognorm = rnd.random, rnd.lognormvariate
    hours = WARMUP_HOURS + EVAL_HOURS
    change_at = WARMUP_HOURS + scenario.change_hour
    mu_cost, mu_lat = math.log(COST_MEDIAN), math.log(LATENCY_MEDIAN_MS)
    bounds = LATENCY_BOUNDS
    s = Stream([], [], [], [], [], [], [], [])
    for h in range(hours):
        after = 1 if h >= change_at else 0
        esc_p, pass_p, fail_p = (scenario.escalation[after], scenario.pass_rate[after], scenario.failure[after])
        cost_m, lat_m = scenario.cost_mult[after], scenario.latency_mult[after]
        mix = scenario.mix[after]
        names = list(mix)
        cum, acc = [], 0.0
        for k in names:
            acc += mix[k]
            cum.append(acc)
        cum[-1] = 1.0
        lam = (
            scenario.requests_per_hour
            * (1.0 + scenario.diurnal_amplitude * math.sin(2 * math.pi * (h % 24) / 24))
            / SLOTS_PER_HOUR
        )
        n = e = p = f = 0
        cost = 0.0
        hist = [0] * len(bounds)
        mix_counts = [0] * len(names)
        for _ in range(SLOTS_PER_HOUR):
            slot_cost = 0.0
            for _ in range(_poisson(rnd, lam)):
                n += 1
                if r() < esc_p:
                    e += 1
                if r() < pass_p:
                    p += 1
                if r() < fail_p:
                    f += 1
                slot_cost += cost_m * lognorm(mu_cost, COST_SIGMA)
                hist[bisect_left(bounds, lat_m * lognorm(mu_lat, LATENCY_SIGMA))] += 1
                mix_counts[min(bisect_right(cum, r()), len(names) - 1)] += 1
            s.slot_cost.append(slot_cost)
            cost += slot_cost
        s.requests.append(n)
        s.escalations.append(e)
        s.passes.append(p)
        s.failures.append(f)
        s.cost.append(cost)
        s.latency.append(hist)
        s.mix.append(dict(zip(names, mix_counts, strict=True)))
    return s


def _prefix(values: Sequence[float]) -> list[float]:
    out = [0.0]
    for v in values:
        out.append(out[-1] + v)
    return out


def evaluate(stream: Stream, scenario: Scenario | None = None) -> dict[str, list[int]]:
    """Run every detector at every evaluated hour; return, per detector, the eval hours it fired.

    Eval hour 0 is the first hour after the warm-up; an injected change starts at
    ``scenario.change_hour`` on the same clock.
    """
    del scenario  # the detectors see only the numbers, as in production
    req, esc = _prefix(stream.requests), _prefix(stream.escalations)
    pas, fail, cost = _prefix(stream.passes), _prefix(stream.failures), _prefix(stream.cost)
    nb = len(LATENCY_BOUNDS)
    lat = [[0] * nb]
    for hist in stream.latency:
        lat.append([a + b for a, b in zip(lat[-1], hist, strict=True)])
    cats = sorted({k for m in stream.mix for k in m})
    mixp = [dict.fromkeys(cats, 0)]
    for m in stream.mix:
        mixp.append({k: mixp[-1][k] + m.get(k, 0) for k in cats})

    def tot(pre: list[float], a: int, b: int) -> float:  # hours [a, b)
        return pre[b] - pre[a]

    fired: dict[str, list[int]] = {d: [] for d in DETECTORS}
    for t in range(EVAL_HOURS):
        end = WARMUP_HOURS + t + 1  # hours [end-24, end) are the current window
        cur_a, base_a, base_b = end - 24, end - 24 - 7 * 24, end - 24
        n = int(tot(req, cur_a, end))
        nbase = int(tot(req, base_a, base_b))
        if drift.escalation_band(int(tot(esc, cur_a, end)), n, band=ESCALATION_BAND).fired:
            fired["escalation_band"].append(t)
        if drift.pass_rate_drop(int(tot(pas, cur_a, end)), n, int(tot(pas, base_a, base_b)), nbase).fired:
            fired["pass_rate_drop"].append(t)
        if drift.cost_per_request_regression(tot(cost, cur_a, end), n, tot(cost, base_a, base_b), nbase).fired:
            fired["cost_per_request_regression"].append(t)
        cur_h = [a - b for a, b in zip(lat[end], lat[cur_a], strict=True)]
        base_h = [a - b for a, b in zip(lat[base_b], lat[base_a], strict=True)]
        if drift.latency_p95_regression(LATENCY_BOUNDS, cur_h, base_h).fired:
            fired["latency_p95_regression"].append(t)
        cur_m = {k: mixp[end][k] - mixp[cur_a][k] for k in cats}
        base_m = {k: mixp[base_b][k] - mixp[base_a][k] for k in cats}
        mf = drift.mix_shift(cur_m, base_m)
        if mf.fired:
            fired["mix_shift_ticket" if mf.severity == "ticket" else "mix_shift_info"].append(t)
        if drift.error_spike(
            int(tot(fail, end - 1, end)),
            int(tot(req, end - 1, end)),
            int(tot(fail, end - 25, end - 1)),
            int(tot(req, end - 25, end - 1)),
        ).fired:
            fired["error_spike"].append(t)
    _evaluate_burn(stream, fired)
    return fired


def _evaluate_burn(stream: Stream, fired: dict[str, list[int]]) -> None:
    slots = _prefix(stream.slot_cost)
    warm = WARMUP_HOURS * SLOTS_PER_HOUR
    # Budgets that the clean stream spends exactly: the warm-up's mean hourly cost × period.
    hourly = slots[warm] / WARMUP_HOURS
    plans = (("monthly", hourly * 720, 720.0), ("daily", hourly * 24, 24.0))
    for i in range(EVAL_HOURS * SLOTS_PER_HOUR):
        end = warm + i + 1
        spend = {m: slots[end] - slots[end - m // 5] for m in (5, 30, 60, 360)}
        for name, budget, period in plans:
            f = budgets.burn_rate_alert(spend, budget=budget, period_hours=period)
            if f.fired:
                key = f"burn_rate_{name}_{f.severity}"
                hour = i // SLOTS_PER_HOUR
                if not fired[key] or fired[key][-1] != hour:
                    fired[key].append(hour)


def first_alert(hours: list[int], from_hour: int = 0) -> int | None:
    """The first eval hour >= ``from_hour`` at which a detector fired, or None."""
    return next((h for h in hours if h >= from_hour), None)


def episodes(hours: list[int]) -> int:
    """Number of alert episodes: runs of consecutive firing hours count once (one open alert)."""
    return sum(1 for i, h in enumerate(hours) if i == 0 or hours[i - 1] != h - 1)
