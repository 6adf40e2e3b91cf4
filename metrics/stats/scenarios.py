"""Alert-quality scenarios: a month of synthetic hourly rollup cells for one policy of eight cascade
routes (plus the week of warm-up its baselines need), anomalies injected at random routes, times and
sizes from a seed, and the scoring of the alerts an evaluation raised on it.

Pure (standard library, no Django): `metrics.alerts.simulation` writes the cells through the rollup
inbox, evaluates the policy hour by hour and hands the alerts back to `score`; `manage.py
simulate_alerts` prints the tables of docs/alerts.md ("Alert quality on simulated months").

Traffic: Poisson requests per route and task type with a daily cycle (±55%, the route's own
phase), a weekend dip (−30%) and 5% hour-to-hour overdispersion. Each request starts on tier 1; at
every tier a share of attempts does not pass (low confidence or failed validation) and escalates,
or ends failed on the last tier; each provider fails 1–2% of attempts (outcome `error`), and the
tier's fallback model answers those. Tokens, cost (real list prices), confidence and a log-normal
latency (σ 0.5) into the rollup's buckets are summed per cell with the noise of a sum of n draws.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

WARMUP_DAYS = 8  # the drift baseline (7 days) before the first day's 24 h window
MATCH_GRACE_HOURS = 24  # an alert up to a day after an anomaly ends is still caused by it
DETECT_WITHIN_HOURS = 24

# (anomaly kind, what it changes): the kinds every anomaly month draws from.
KINDS: tuple[tuple[str, str], ...] = (
    ("escalation_spike", "tier 1 escalation +10–25 points for 12–72 h"),
    ("escalation_drift", "tier 1 escalation rising by 8–20 points over 3–5 days, then held"),
    ("cost_jump", "cost per request ×1.3–2.0 (longer prompts and answers) for 2–4 days"),
    ("tier_pass_drop", "one tier of a 2–3 tier cascade: 6–15 points more attempts fail, 1–3 days"),
    ("route_pass_drop", "every tier of the route: 4–10 points more attempts fail, 1–3 days"),
    ("confidence_drift", "tier 1 mean confidence −0.05…−0.12 over 3–5 days (escalation +30% of it)"),
    ("latency_regression", "one tier's model ×1.4–2.5 slower for 1–3 days"),
    ("route_share_shift", "one route's traffic ×1.8–3 (its share of the policy), its own mix unchanged, 2–4 days"),
    ("task_share_shift", "one task type's traffic ×2–3 within a route of several, 2–4 days"),
    ("model_mix_shift", "30–60% of a route's tier 1 moves to another provider's model, 2–4 days"),
    ("provider_outage", "one provider fails 50–95% of attempts on every route using it, 1–6 h"),
    ("error_burst", "one route's tier 1 provider fails 8–25% of attempts, 2–12 h"),
)
KIND_NAMES: tuple[str, ...] = tuple(k for k, _ in KINDS)
BUDGET_OVERRUN = "budget_overrun"
BUDGET_OVERRUN_TEXT = (
    "the policy's month overruns its monthly budget by 5–30% (cost growth on 1–2 routes from day 5–16)"
)
ANOMALIES_PER_MONTH = 6


@dataclass(frozen=True)
class Model:
    id: str
    provider: str
    price_in: float  # USD per token
    price_out: float
    latency_ms: float  # median


@dataclass(frozen=True)
class Task:
    name: str
    share: float  # of the route's requests
    tokens_in: int
    tokens_out: int


@dataclass(frozen=True)
class Route:
    name: str
    per_hour: float  # mean requests an hour
    phase: float  # hours the daily peak is shifted by
    tasks: tuple[Task, ...]
    tiers: tuple[str, ...]  # model id per tier
    fallbacks: tuple[str, ...]  # fallback model id per tier
    not_pass: tuple[float, ...]  # per tier: share of attempts that do not pass
    confidence: float  # mean tier-1 confidence


@dataclass(frozen=True)
class Anomaly:
    kind: str
    routes: tuple[str, ...]  # the routes it affects ("" = the policy budget only)
    start: datetime
    end: datetime
    size: float
    label: str
    tier: int = 0  # tier_pass_drop, latency_regression: the tier (1-based)
    provider: str = ""  # provider_outage
    task: str = ""  # task_share_shift
    ramp_hours: float = 0.0  # drift kinds: hours until the full size


@dataclass(slots=True)
class Cell:
    """One hourly rollup cell's dimensions and additive measures."""

    hour: datetime
    route: str
    task_type: str
    model: str
    provider: str
    tier: int
    outcome: str
    count: int = 0
    requests: int = 0
    escalations: int = 0
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    confidence_sum: float = 0.0
    confidence_count: int = 0
    latency_sum_ms: float = 0.0
    buckets: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    seed: int
    clean: bool
    month_start: datetime  # first day scored
    month_end: datetime  # first day after it
    routes: tuple[Route, ...]
    models: Mapping[str, Model]
    anomalies: tuple[Anomaly, ...]
    budget_monthly: float
    overrun: float  # realised month spend / budget − 1 (negative: under budget)

    @property
    def start(self) -> datetime:
        return self.month_start - timedelta(days=WARMUP_DAYS)

    @property
    def days(self) -> int:
        return (self.month_end - self.month_start).days

    @property
    def route_days(self) -> int:
        return len(self.routes) * self.days


# -- random draws ---------------------------------------------------------------------------------


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def _binom(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if n < 25:
        return sum(1 for _ in range(n) if rng.random() < p)
    if n * p < 10:
        return min(n, _poisson(rng, n * p))
    if n * (1 - p) < 10:
        return n - min(n, _poisson(rng, n * (1 - p)))
    return min(n, max(0, round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))))


def _lognormal_shares(median: float, sigma: float, bounds: Sequence[float]) -> list[float]:
    """P(latency in bucket i) for a log-normal latency; bucket i is [bounds[i-1], bounds[i])."""
    cdf = [0.0] + [0.5 * (1 + math.erf(math.log(b / median) / (sigma * math.sqrt(2)))) for b in bounds] + [1.0]
    return [cdf[i + 1] - cdf[i] for i in range(len(bounds) + 1)]


def _multinomial(rng: random.Random, n: int, shares: Sequence[float]) -> list[int]:
    out = [0] * len(shares)
    left, rest = n, 1.0
    for i, s in enumerate(shares):
        if left <= 0:
            break
        if s < 1e-5:
            rest -= s
            continue
        k = left if rest - s <= 1e-9 else _binom(rng, left, min(1.0, s / rest))
        out[i] = k
        left -= k
        rest -= s
    if left > 0:  # the tail shares' rounding
        out[max(range(len(shares)), key=lambda i: shares[i])] += left
    return out


# -- the policy -----------------------------------------------------------------------------------

ROUTE_NAMES = ("support", "extraction", "summaries", "classify", "translate", "code", "search", "agent")
TASK_NAMES = {
    "support": (("faq", 900, 180), ("troubleshooting", 2600, 420), ("billing", 1400, 260)),
    "extraction": (("invoice", 6200, 700), ("receipt", 2500, 300)),
    "summaries": (("meeting", 9000, 500), ("article", 4000, 350)),
    "classify": (("intent", 600, 10), ("toxicity", 400, 5)),
    "translate": (("ui_strings", 500, 500), ("documents", 3000, 3000)),
    "code": (("review", 5000, 800), ("completion", 1500, 200)),
    "search": (("rerank", 2000, 50),),
    "agent": (("plan", 3000, 600), ("tool_call", 1800, 250)),
}


def policy_routes(rng: random.Random, models: Mapping[str, Model], *, count: int = 8) -> tuple[Route, ...]:
    """Eight (or `count`) routes on the catalog's models: tier 1 cheap, tier 2 mid, tier 3 frontier;
    cascades of one to three tiers, each tier's fallback from another provider."""
    by_price = sorted(models.values(), key=lambda m: m.price_in + m.price_out)
    cheap, mid, top = by_price[:5], by_price[4:9], by_price[8:]
    routes = []
    depths = ([1, 2, 2, 2, 3, 3, 3, 2] * (count // 8 + 1))[:count]
    rng.shuffle(depths)
    names = [ROUTE_NAMES[i % 8] if i < 8 else f"{ROUTE_NAMES[i % 8]}_{i // 8}" for i in range(count)]
    for full_name, depth in zip(names, depths, strict=True):
        name = full_name.split("_")[0] if full_name not in TASK_NAMES else full_name
        pools = [cheap, mid, top][:depth] if depth > 1 else [rng.choice([cheap, mid])]
        tiers = [rng.choice(pool) for pool in pools]
        fallbacks = []
        for m, pool in zip(tiers, pools, strict=True):
            others = [x for x in [*pool, *by_price] if x.provider != m.provider]
            fallbacks.append(others[0] if others else m)
        not_pass = [*[rng.uniform(0.12, 0.30), rng.uniform(0.05, 0.12)][: depth - 1], rng.uniform(0.02, 0.06)]
        raw = [rng.uniform(0.5, 1.5) for _ in TASK_NAMES[name]]
        tasks = tuple(
            Task(t if full_name == name else f"{full_name}.{t}", r / sum(raw), tin, tout)
            for (t, tin, tout), r in zip(TASK_NAMES[name], raw, strict=True)
        )
        routes.append(
            Route(
                name=full_name,
                per_hour=rng.choice([20.0, 40.0, 80.0, 150.0, 300.0]),
                phase=rng.uniform(-2, 2),
                tasks=tasks,
                tiers=tuple(m.id for m in tiers),
                fallbacks=tuple(m.id for m in fallbacks),
                not_pass=tuple(not_pass),
                confidence=rng.uniform(0.72, 0.85),
            )
        )
    return tuple(routes)


def escalation_bands(route: Route) -> list[dict[str, float]]:
    """The route's expected escalation band per step: the simulated rate ± 7 points (tier 1→2) or
    ± 4 points (later steps), as a review would set them from history."""
    out = []
    for t, q in enumerate(route.not_pass[:-1]):
        half = 0.07 if t == 0 else 0.04
        out.append({"min": round(max(0.0, q - half), 3), "max": round(min(1.0, q + half), 3)})
    return out


def policy_document(scenario: Scenario) -> dict[str, object]:
    """The policy document the scenario's traffic follows (schema v1)."""
    routes: dict[str, object] = {}
    for r in scenario.routes:
        route: dict[str, object] = {
            "tiers": [{"model": m, "fallbacks": [f]} for m, f in zip(r.tiers, r.fallbacks, strict=True)],
        }
        if len(r.tiers) > 1:
            route["escalate"] = {"min_confidence": 0.6, "on_validation_failure": True, "max_depth": len(r.tiers) - 1}
            route["expectations"] = {"escalation_bands": escalation_bands(r)}
        routes[r.name] = route
    return {
        "schema_version": 1,
        "default_route": scenario.routes[0].name,
        "task_types": {t.name: r.name for r in scenario.routes for t in r.tasks},
        "routes": routes,
        "budget": {"monthly_usd": round(scenario.budget_monthly, 2)},
    }


# -- anomalies ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Effect:
    """Every change in force on one route in one hour."""

    volume: float = 1.0
    task_volume: dict[str, float] = field(default_factory=dict)
    not_pass_add: dict[int, float] = field(default_factory=dict)  # tier index -> added share
    confidence_add: float = 0.0
    latency: dict[int, float] = field(default_factory=dict)  # tier index -> factor
    cost: float = 1.0
    failure: dict[str, float] = field(default_factory=dict)  # provider -> failure rate
    tier1_failure: float = 0.0
    moved: float = 0.0  # share of tier 1 moved to the alternative model


def _level(a: Anomaly, hour: datetime) -> float:
    """0 outside the anomaly, its full size inside (drift kinds ramp up linearly)."""
    if not a.start <= hour < a.end:
        return 0.0
    if a.ramp_hours <= 0:
        return a.size
    return a.size * min(1.0, ((hour - a.start).total_seconds() / 3600 + 1) / a.ramp_hours)


def effect(anomalies: Sequence[Anomaly], route: Route, hour: datetime) -> Effect:
    e = Effect()
    for a in anomalies:
        if route.name not in a.routes:
            continue
        v = _level(a, hour)
        if v == 0:
            continue
        if a.kind in ("escalation_spike", "escalation_drift"):
            e.not_pass_add[0] = e.not_pass_add.get(0, 0.0) + v
        elif a.kind == "tier_pass_drop":
            e.not_pass_add[a.tier - 1] = e.not_pass_add.get(a.tier - 1, 0.0) + v
        elif a.kind == "route_pass_drop":
            for t in range(len(route.tiers)):
                e.not_pass_add[t] = e.not_pass_add.get(t, 0.0) + v
        elif a.kind == "confidence_drift":
            e.confidence_add -= v
            e.not_pass_add[0] = e.not_pass_add.get(0, 0.0) + 0.3 * v
        elif a.kind == "latency_regression":
            e.latency[a.tier - 1] = v
        elif a.kind in ("cost_jump", BUDGET_OVERRUN):
            e.cost *= v
        elif a.kind == "route_share_shift":
            e.volume *= v
        elif a.kind == "task_share_shift":
            e.task_volume[a.task] = v
        elif a.kind == "model_mix_shift":
            e.moved = v
        elif a.kind == "provider_outage":
            e.failure[a.provider] = v
        elif a.kind == "error_burst":
            e.tier1_failure = v
    return e


def _uses(route: Route, provider: str, models: Mapping[str, Model]) -> bool:
    return any(models[m].provider == provider for m in route.tiers)


def _anomaly(
    rng: random.Random,
    kind: str,
    start: datetime,
    slot_end: datetime,
    routes: Sequence[Route],
    models: Mapping[str, Model],
) -> Anomaly:
    def hours(lo: int, hi: int) -> timedelta:
        return timedelta(hours=rng.randint(lo, hi))

    def pick(ok: Callable[[Route], bool] = lambda r: True) -> Route:
        return rng.choice([r for r in routes if ok(r)])

    if kind == "escalation_spike":
        r, size = pick(lambda r: len(r.tiers) > 1), rng.uniform(0.10, 0.25)
        return Anomaly(kind, (r.name,), start, start + hours(12, 72), size, f"{r.name}: tier 1 escalation +{size:.0%}")
    if kind == "escalation_drift":
        r, size, ramp = pick(lambda r: len(r.tiers) > 1), rng.uniform(0.08, 0.20), rng.randint(72, 120)
        return Anomaly(
            kind,
            (r.name,),
            start,
            slot_end,
            size,
            f"{r.name}: tier 1 escalation +{size:.0%} over {ramp} h",
            ramp_hours=ramp,
        )
    if kind == "cost_jump":
        r, size = pick(), rng.uniform(1.3, 2.0)
        return Anomaly(kind, (r.name,), start, start + hours(48, 96), size, f"{r.name}: cost per request ×{size:.2f}")
    if kind == "tier_pass_drop":
        r, size = pick(lambda r: len(r.tiers) > 1), rng.uniform(0.06, 0.15)
        tier = rng.randint(1, len(r.tiers))
        label = f"{r.name}: tier {tier} of {len(r.tiers)} −{size:.0%} pass"
        return Anomaly(kind, (r.name,), start, start + hours(24, 72), size, label, tier=tier)
    if kind == "route_pass_drop":
        r, size = pick(), rng.uniform(0.04, 0.10)
        return Anomaly(kind, (r.name,), start, start + hours(24, 72), size, f"{r.name}: every tier −{size:.0%} pass")
    if kind == "confidence_drift":
        r, size, ramp = pick(lambda r: len(r.tiers) > 1), rng.uniform(0.05, 0.12), rng.randint(72, 120)
        return Anomaly(
            kind,
            (r.name,),
            start,
            slot_end,
            size,
            f"{r.name}: tier 1 confidence −{size:.2f} over {ramp} h",
            ramp_hours=ramp,
        )
    if kind == "latency_regression":
        r, size = pick(), rng.uniform(1.4, 2.5)
        tier = rng.randint(1, len(r.tiers))
        label = f"{r.name}: tier {tier} latency ×{size:.1f}"
        return Anomaly(kind, (r.name,), start, start + hours(24, 72), size, label, tier=tier)
    if kind == "route_share_shift":
        r, size = pick(), rng.uniform(1.8, 3.0)
        return Anomaly(kind, (r.name,), start, start + hours(48, 96), size, f"{r.name}: traffic ×{size:.1f}")
    if kind == "task_share_shift":
        r = pick(lambda r: len(r.tasks) > 1)
        task, size = rng.choice(r.tasks).name, rng.uniform(2.0, 3.0)
        return Anomaly(
            kind, (r.name,), start, start + hours(48, 96), size, f"{r.name}: task {task} ×{size:.1f}", task=task
        )
    if kind == "model_mix_shift":
        r, size = pick(), rng.uniform(0.3, 0.6)
        return Anomaly(kind, (r.name,), start, start + hours(48, 96), size, f"{r.name}: {size:.0%} of tier 1 moved")
    if kind == "provider_outage":
        counts: dict[str, int] = defaultdict(int)
        for r in routes:
            for p in {models[m].provider for m in r.tiers}:
                counts[p] += 1
        provider = max(sorted(counts), key=lambda p: (counts[p], rng.random()))
        hit = tuple(r.name for r in routes if _uses(r, provider, models))
        size = rng.uniform(0.5, 0.95)
        label = f"{provider} fails {size:.0%} on {len(hit)} routes"
        return Anomaly(kind, hit, start, start + hours(1, 6), size, label, provider=provider)
    if kind == "error_burst":
        r, size = pick(), rng.uniform(0.08, 0.25)
        return Anomaly(
            kind, (r.name,), start, start + hours(2, 12), size, f"{r.name}: tier 1 provider fails {size:.0%}"
        )
    raise ValueError(f"unknown anomaly kind {kind!r}")


def month_of(seed: int) -> datetime:
    """The scored month of a seed: the months of 2025 in turn."""
    return datetime(2025, 1 + seed % 12, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


# -- the cells ------------------------------------------------------------------------------------


def _cycle(route: Route, hour: datetime) -> float:
    daily = 1 + 0.55 * math.sin(2 * math.pi * (hour.hour - 8 - route.phase) / 24)
    return daily * (0.7 if hour.weekday() >= 5 else 1.0)


class _Sink:
    """Cells of one hour and route, merged by their dimensions."""

    def __init__(self, hour: datetime, route: str, bounds: Sequence[float]) -> None:
        self.hour, self.route, self.bounds = hour, route, bounds
        self.cells: dict[tuple[str, str, int, str], Cell] = {}
        self.task, self.tier, self.cost_factor, self.latency_factor = Task("", 1.0, 0, 0), 1, 1.0, 1.0

    def at(self, task: Task, tier: int, cost_factor: float, latency_factor: float) -> None:
        """What the next `add` calls log: the task type and tier, and the factors in force."""
        self.task, self.tier, self.cost_factor, self.latency_factor = task, tier, cost_factor, latency_factor

    def add(
        self,
        rng: random.Random,
        model: Model,
        outcome: str,
        n: int,
        first: bool,
        escalated: bool,
        confidence: float | None,
    ) -> None:
        task, tier, cost_factor, latency_factor = self.task, self.tier, self.cost_factor, self.latency_factor
        if n <= 0:
            return
        key = (task.name, model.id, tier, outcome)
        c = self.cells.get(key)
        if c is None:
            c = self.cells[key] = Cell(
                self.hour,
                self.route,
                task.name,
                model.id,
                model.provider,
                tier,
                outcome,
                buckets=[0] * (len(self.bounds) + 1),
            )
        c.count += n
        c.requests += n if first else 0
        c.escalations += n if escalated else 0
        noise = max(0.2, rng.gauss(1, 0.8 / math.sqrt(n)))
        if outcome == "error":
            tin = tout = 0
            median = 0.3 * model.latency_ms * latency_factor
        else:
            tin = round(n * task.tokens_in * cost_factor * noise)
            tout = round(n * task.tokens_out * cost_factor * max(0.2, rng.gauss(1, 0.8 / math.sqrt(n))))
            median = model.latency_ms * latency_factor * (1 + task.tokens_out / 2000)
        c.tokens_in += tin
        c.tokens_out += tout
        c.cost_usd += tin * model.price_in + tout * model.price_out
        if confidence is not None:
            c.confidence_sum += n * min(1.0, max(0.0, confidence + rng.gauss(0, 0.1 / math.sqrt(n))))
            c.confidence_count += n
        c.latency_sum_ms += n * median * math.exp(0.125)  # mean of a log-normal with σ 0.5
        for i, k in enumerate(_multinomial(rng, n, _lognormal_shares(median, 0.5, self.bounds))):
            c.buckets[i] += k


def _route_hour(
    rng: random.Random,
    route: Route,
    hour: datetime,
    e: Effect,
    models: Mapping[str, Model],
    alternative: Model,
    base_failure: Mapping[str, float],
    bounds: Sequence[float],
) -> list[Cell]:
    sink = _Sink(hour, route.name, bounds)
    level = route.per_hour * _cycle(route, hour) * e.volume * max(0.5, rng.gauss(1, 0.05))
    last = len(route.tiers) - 1
    for task in route.tasks:
        arrivals = _poisson(rng, level * task.share * e.task_volume.get(task.name, 1.0))
        for t, model_id in enumerate(route.tiers):
            if arrivals <= 0:
                break
            primary, fallback = models[model_id], models[route.fallbacks[t]]
            shares = [(primary, arrivals)]
            if t == 0 and e.moved > 0:
                moved = _binom(rng, arrivals, e.moved)
                shares = [(primary, arrivals - moved), (alternative, moved)]
            q = min(0.95, route.not_pass[t] + e.not_pass_add.get(t, 0.0))
            confidence = route.confidence + e.confidence_add if t == 0 else 0.85
            escalating = 0
            for model, a in shares:
                fail = e.failure.get(model.provider, base_failure[model.provider])
                if t == 0:
                    fail = max(fail, e.tier1_failure)
                failed = _binom(rng, a, fail)
                sink.at(task, t + 1, e.cost, e.latency.get(t, 1.0))
                sink.add(rng, model, "error", failed, t == 0, t > 0, None)
                # The fallback answers what the primary failed; a fallback on a failing provider fails too.
                fb_fail = _binom(rng, failed, e.failure.get(fallback.provider, base_failure[fallback.provider]))
                sink.add(rng, fallback, "error", fb_fail, False, False, None)
                for serving, k, first, esc in (
                    (model, a - failed, t == 0, t > 0),
                    (fallback, failed - fb_fail, False, False),
                ):
                    if k <= 0:
                        continue
                    bad = _binom(rng, k, q)
                    low = _binom(rng, bad, 0.6)
                    sink.add(rng, serving, "ok", k - bad, first, esc, confidence + 0.08)
                    sink.add(rng, serving, "low_confidence", low, first, esc, confidence - 0.3)
                    sink.add(rng, serving, "validation_failed", bad - low, first, esc, confidence)
                    if t < last:
                        escalating += bad
            arrivals = escalating
    return list(sink.cells.values())


def traffic_cells(
    seed: int,
    routes: Sequence[Route],
    models: Mapping[str, Model],
    start: datetime,
    end: datetime,
    bounds: Sequence[float],
) -> list[Cell]:
    """Clean traffic of `routes` for the hours [start, end) (the evaluation benchmark's)."""
    rng = random.Random(seed)
    base_failure = {m.provider: rng.uniform(0.01, 0.02) for m in models.values()}
    cheapest = min(models.values(), key=lambda m: m.price_in + m.price_out)
    cells: list[Cell] = []
    hour = start
    while hour < end:
        for r in routes:
            cells += _route_hour(rng, r, hour, Effect(), models, cheapest, base_failure, bounds)
        hour += timedelta(hours=1)
    return cells


def scenario_build(
    seed: int,
    *,
    clean: bool,
    models: Mapping[str, Model],
    bounds: Sequence[float],
    days: int | None = None,
    kinds: Sequence[str] | None = None,
) -> tuple[Scenario, list[Cell]]:
    """The scenario of `seed` (a clean month, or six anomalies and a budget overrun) and its cells,
    from the warm-up's first hour to the month's last. `days` scores only the month's first days,
    `kinds` injects those kinds instead of six taken in turn (a quick scenario for tests)."""
    rng = random.Random(seed * 7919 + (1 if clean else 0))
    routes = policy_routes(rng, models)
    month_start = month_of(seed)
    month_end = _next_month(month_start)
    if days is not None:
        month_end = min(month_end, month_start + timedelta(days=days))
    days = (month_end - month_start).days
    base_failure = {m.provider: rng.uniform(0.01, 0.02) for m in models.values()}
    anomalies: list[Anomaly] = []
    if not clean:
        order = list(KIND_NAMES)
        offset = (seed * ANOMALIES_PER_MONTH) % len(order)
        chosen = list(kinds) if kinds is not None else (order[offset:] + order[:offset])[:ANOMALIES_PER_MONTH]
        rng.shuffle(chosen)
        slot = timedelta(days=days / len(chosen))
        lead = (6, 30) if slot >= timedelta(days=2) else (1, max(1, int(slot.total_seconds() // 14400)))
        for i, kind in enumerate(chosen):
            slot_start = month_start + slot * i
            start = (slot_start + timedelta(hours=rng.randint(*lead))).replace(minute=0, second=0, microsecond=0)
            slot_end = (slot_start + slot - timedelta(hours=12)).replace(minute=0, second=0, microsecond=0)
            a = _anomaly(rng, kind, start, slot_end, routes, models)
            anomalies.append(a if a.end <= slot_end else Anomaly(**{**a.__dict__, "end": slot_end}))
    cheapest = min(models.values(), key=lambda m: m.price_in + m.price_out)
    alternatives = {
        r.name: next(
            (m for m in sorted(models.values(), key=lambda m: m.price_in) if m.provider != models[r.tiers[0]].provider),
            cheapest,
        )
        for r in routes
    }
    cells: list[Cell] = []
    hour = month_start - timedelta(days=WARMUP_DAYS)
    while hour < month_end:
        for r in routes:
            cells += _route_hour(
                rng, r, hour, effect(anomalies, r, hour), models, alternatives[r.name], base_failure, bounds
            )
        hour += timedelta(hours=1)

    # The budget: a clean month spends 60–75% of it; an anomaly month overruns it by 5–30%, from a
    # cost growth on one or two routes starting between day 5 and day 16 (before it: 75–90% pace).
    spent = sum(c.cost_usd for c in cells if c.hour >= month_start)
    if clean:
        budget = spent / rng.uniform(0.60, 0.75)
    else:
        overrun = rng.uniform(0.05, 0.30)
        pace = rng.uniform(0.75, 0.90)
        budget = spent / pace
        start = month_start + timedelta(days=rng.randint(4, 15), hours=rng.randint(0, 23))
        if start >= month_end - timedelta(days=1):  # a short scenario: from its first third
            start = month_start + (month_end - month_start) / 3
        hit = tuple(r.name for r in rng.sample(list(routes), rng.randint(1, 2)))
        grown = sum(c.cost_usd for c in cells if c.hour >= start and c.route in hit)
        factor = 1 + (budget * (1 + overrun) - spent) / grown
        for c in cells:
            if c.hour >= start and c.route in hit:
                c.cost_usd *= factor
                c.tokens_in = round(c.tokens_in * factor)
                c.tokens_out = round(c.tokens_out * factor)
        label = f"+{overrun:.0%} over budget, cost ×{factor:.2f} on {', '.join(hit)} from {start:%d %H}h"
        anomalies.append(Anomaly(BUDGET_OVERRUN, (*hit, ""), start, month_end, factor, label))
    realised = sum(c.cost_usd for c in cells if c.hour >= month_start)
    scenario = Scenario(
        seed, clean, month_start, month_end, routes, models, tuple(anomalies), budget, realised / budget - 1
    )
    return scenario, cells


# -- scoring --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Raised:
    """An alert notification the evaluation sent: opened or reopened."""

    detector: str
    route: str
    at: datetime
    severity: str


@dataclass
class Detection:
    anomaly: Anomaly
    first: Raised | None = None
    detectors: set[str] = field(default_factory=set)

    @property
    def hours(self) -> float | None:
        if self.first is None:
            return None
        return max(0.0, (self.first.at - self.anomaly.start).total_seconds() / 3600)


@dataclass
class MonthScore:
    scenario: Scenario
    detections: list[Detection]
    false: list[Raised]
    forecast_lead_days: float | None  # budget overrun: days before month end of the first forecast alert


def _matches(a: Anomaly, r: Raised) -> bool:
    return r.route in a.routes and a.start <= r.at < a.end + timedelta(hours=MATCH_GRACE_HOURS)


def score(scenario: Scenario, raised: Sequence[Raised], *, forecast_detector: str = "budget_forecast") -> MonthScore:
    """Match every raised alert to the injected causes: the first alert on an affected route from
    the anomaly's start to a day after its end detects it; an alert matching none is false."""
    detections = [Detection(a) for a in scenario.anomalies]
    false: list[Raised] = []
    for r in sorted(raised, key=lambda r: r.at):
        hit = [d for d in detections if _matches(d.anomaly, r)]
        if not hit:
            false.append(r)
        for d in hit:
            d.detectors.add(r.detector)
            if d.first is None:
                d.first = r
    lead = None
    if any(a.kind == BUDGET_OVERRUN for a in scenario.anomalies):
        forecasts = [r.at for r in raised if r.detector == forecast_detector and r.route == ""]
        if forecasts:
            lead = (scenario.month_end - min(forecasts)).total_seconds() / 86400
    return MonthScore(scenario, detections, false, lead)


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "–"


def _p90(values: Sequence[float]) -> str:
    if not values:
        return "–"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]:.0f}"


def tables(months: Sequence[MonthScore]) -> str:
    """The markdown tables of docs/alerts.md: recall per anomaly kind, false alerts per detector,
    the budget forecast's lead."""
    lines = [
        (
            "| anomaly kind | injected | detected ≤ 24 h | recall ≤ 24 h | detected at all | median h | p90 h "
            "| detectors that fired first (count) |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    by_kind: dict[str, list[Detection]] = defaultdict(list)
    for m in months:
        for d in m.detections:
            by_kind[d.anomaly.kind].append(d)
    for kind in (*KIND_NAMES, BUDGET_OVERRUN):
        ds = by_kind.get(kind, [])
        if not ds:
            continue
        hours = [h for d in ds if (h := d.hours) is not None]
        within = sum(1 for h in hours if h <= DETECT_WITHIN_HOURS)
        first: dict[str, int] = defaultdict(int)
        for d in ds:
            if d.first is not None:
                first[d.first.detector] += 1
        who = ", ".join(f"{k} {v}" for k, v in sorted(first.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(
            f"| {kind} | {len(ds)} | {within} | {within / len(ds):.2f} | {len(hours)} | {_median(hours)} | "
            f"{_p90(hours)} | {who or '–'} |"
        )
    clean = [m for m in months if m.scenario.clean]
    dirty = [m for m in months if not m.scenario.clean]
    detectors = sorted({r.detector for m in months for r in m.false})
    clean_days = sum(m.scenario.route_days for m in clean)
    dirty_days = sum(m.scenario.route_days for m in dirty)
    lines += [
        "",
        (
            f"False alerts per 100 route-days ({len(clean)} clean months, {clean_days} route-days; "
            f"{len(dirty)} anomaly months, {dirty_days} route-days, counting alerts that match no injected cause):"
        ),
        "",
        "| detector | clean months | anomaly months |",
        "|---|---|---|",
    ]

    def rate(ms: Sequence[MonthScore], days: int, detector: str | None) -> str:
        n = sum(1 for m in ms for r in m.false if detector is None or r.detector == detector)
        return f"{100 * n / days:.2f} ({n})" if days else "–"

    for det in detectors:
        lines.append(f"| {det} | {rate(clean, clean_days, det)} | {rate(dirty, dirty_days, det)} |")
    lines.append(f"| **all** | {rate(clean, clean_days, None)} | {rate(dirty, dirty_days, None)} |")
    leads = [(m.scenario.seed, m.scenario.overrun, m.forecast_lead_days) for m in dirty]
    if leads:
        ok = sum(1 for _, _, lead in leads if lead is not None and lead >= 7)
        lines += [
            "",
            f"Budget overruns forecast ≥ 7 days before month end: {ok}/{len(leads)} seeds "
            f"(overrun, days of lead): "
            + ", ".join(f"{o:+.0%} {'–' if lead is None else f'{lead:.1f}'}" for _, o, lead in leads),
        ]
    return "\n".join(lines)
