"""The one interface every alert detector implements, and what it is given and gives back.

A `Detector` has a `name` (one of `DETECTORS`, the alert's `detector` field) and
`evaluate(context) -> list[Evaluation]`: at most one verdict per route or budget of the policy in
`context`. Most detectors run a few named checks per route (`RouteDetector`) or per budget
(`BudgetDetector`) and `combine` them into that verdict. Detectors are pure reads: the evaluator
(`metrics.alerts.evaluation`) applies their verdicts to alerts.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from metrics.alerts.reads import RouteTotals, tier_hours, tier_series_baseline
from metrics.alerts.windows import Windows
from metrics.models import SEVERITY_RANK
from metrics.stats import Finding
from metrics.stats.canary import CanaryVerdict
from metrics.stats.fdr import benjamini_hochberg

Checks = list[tuple[str, Finding]]  # (check name, its finding), in the order they are shown


def json_safe(value: Any) -> Any:
    """Evidence as strict JSON: infinities and NaN (a zero baseline) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class Evaluation:
    """One detector's verdict on one route: the finding that speaks for it and each check's status.

    A detector can run several checks (tier 1→2 and 2→3; against the baseline and against the
    expectation; daily and monthly budget). `check` names the one whose finding is shown; an open
    alert resolves when the check that opened it says "ok" (or every check does).
    """

    detector: str
    route: str
    finding: Finding
    check: str
    checks: Mapping[str, str]

    @property
    def evidence(self) -> dict[str, Any]:
        return json_safe({**self.finding.evidence.to_dict(), "check": self.check, "checks": dict(self.checks)})


def combine(detector: str, route: str, named: Sequence[tuple[str, Finding]]) -> Evaluation | None:
    """The firing check of highest severity; else the first ok when every check is ok; else the
    first check without enough data."""
    if not named:
        return None
    firing = [(n, f) for n, f in named if f.fired]
    if firing:
        name, finding = max(firing, key=lambda nf: SEVERITY_RANK[nf[1].severity])
    elif all(f.status == "ok" for _, f in named):
        name, finding = named[0]
    else:
        name, finding = next((n, f) for n, f in named if f.status == "insufficient_data")
    return Evaluation(detector, route, replace(finding, detector=detector), name, {n: f.status for n, f in named})


@dataclass(frozen=True)
class RouteView:
    """One route as the drift detectors see it: its window totals and its part of the live document.

    `series_hours` are the hours of the slow-drift series (`Windows.series_start` to the current
    hour) and `overlap_hours` those of them inside the drift baseline; `alpha`, when set, is the
    level every check with a p-value screens at before the evaluation's false-discovery-rate
    control (`discoveries`) judges them together (None: each test's own default level).
    """

    route: str
    totals: RouteTotals
    doc: Mapping[str, Any]
    series_hours: Sequence[datetime] = ()
    overlap_hours: Sequence[datetime] = ()
    alpha: float | None = None

    def level(self, default: float) -> float:
        """The screening level of a p-valued check whose own default is `default`."""
        return self.alpha if self.alpha is not None else default

    def hourly(self, tier: int) -> list[list[int]]:
        """The tier's counts per hour of the series (`metrics.alerts.reads.SERIES`); read-only,
        built once per tier (several checks read the same tier)."""
        if tier not in self._hourly:
            self._hourly[tier] = tier_hours(self.totals, tier, self.series_hours)
        return self._hourly[tier]

    @cached_property
    def _hourly(self) -> dict[int, list[list[int]]]:
        return {}

    def series_baseline(self, tier: int) -> list[int]:
        """The tier's counts over the series' baseline (the drift baseline before the series)."""
        return tier_series_baseline(self.totals, tier, self.overlap_hours)

    @property
    def who(self) -> str:
        return f"route {self.route}"

    @property
    def expect(self) -> Mapping[str, Any]:
        return self.doc.get("expectations") or {}


@dataclass(frozen=True)
class BudgetView:
    """One budget (a route's, the policy's with scope "", or a dimension value's with scope
    `key=value` and `dimension` (key, value)) and the hourly spend it is judged on."""

    scope: str
    budget: Mapping[str, Any]
    spend: Mapping[datetime, float]
    windows: Windows
    thresholds: Sequence[float]
    dimension: tuple[str, str] | None = None

    @property
    def who(self) -> str:
        if self.dimension is not None:
            return f"{self.dimension[0]} '{self.dimension[1]}' budget"
        return f"route {self.scope} budget" if self.scope else "policy budget"

    @property
    def daily(self) -> float | None:
        return float(self.budget["daily_usd"]) if self.budget.get("daily_usd") else None

    @property
    def monthly(self) -> float | None:
        return float(self.budget["monthly_usd"]) if self.budget.get("monthly_usd") else None

    def since(self, start: datetime) -> float:
        return sum(v for h, v in self.spend.items() if h >= start)


@dataclass(frozen=True)
class CanaryView:
    """One split of the live version, judged arm against control (`metrics.canary.selectors`)."""

    route: str
    guardrails: Mapping[str, Any]
    versions: Sequence[int]
    verdict: CanaryVerdict


@dataclass(frozen=True)
class Context:
    """What the detectors judge for one policy at one moment: every route of its live document (and
    every route with traffic in the windows), and every budget it declares."""

    windows: Windows
    routes: Sequence[RouteView]
    budgets: Sequence[BudgetView]
    canaries: Sequence[CanaryView] = ()
    false_discovery_rate: float | None = None


class Detector(ABC):
    """An alert detector: `evaluate` gives at most one verdict per route or budget of the policy.

    A detector made of named checks implements `checked` (each route's or budget's checks, before
    they are combined), so the evaluation can judge every check's p-value together
    (`discoveries`); `evaluate` combines them. One that is not overrides `evaluate` instead.
    """

    name: ClassVar[str]

    def checked(self, context: Context) -> list[tuple[str, Checks]] | None:
        """(route, its checks) for each route or budget judged; None when the detector's
        verdicts are not made of checks."""
        return None

    def evaluate(self, context: Context) -> list[Evaluation]:
        named = self.checked(context)
        if named is None:
            raise NotImplementedError(f"{type(self).__name__} implements neither checked nor evaluate")
        verdicts = (combine(self.name, route, checks) for route, checks in named)
        return [e for e in verdicts if e is not None]


class RouteDetector(Detector):
    """A detector judging each route on its own, from the checks `checks` runs on it."""

    def checked(self, context: Context) -> list[tuple[str, Checks]] | None:
        return [(view.route, self.checks(view)) for view in context.routes]

    @abstractmethod
    def checks(self, view: RouteView) -> Checks: ...


class BudgetDetector(Detector):
    """A detector judging each budget on its own (its route is the budget's scope)."""

    def checked(self, context: Context) -> list[tuple[str, Checks]] | None:
        return [(view.scope, self.checks(view)) for view in context.budgets]

    @abstractmethod
    def checks(self, view: BudgetView) -> Checks: ...


def discoveries(checked: Sequence[tuple[str, str, Checks]], q: float) -> list[tuple[str, str, Checks]]:
    """Benjamini–Hochberg at false discovery rate `q` over every check with a p-value in one
    evaluation (detectors × routes × tiers × checks): a firing check whose p-value is above the
    cutoff is not a discovery and says "ok" instead, with the reason in its summary and evidence.
    Checks without a p-value (bands, ratios, budgets) are left as they are."""
    tested = [
        f.evidence.p_value
        for _, _, checks in checked
        for _, f in checks
        if f.evidence.p_value is not None and f.status != "insufficient_data"
    ]
    if not tested:
        return list(checked)
    cutoff = benjamini_hochberg(tested, q)
    fdr = {"q": q, "tests": len(tested), "cutoff": cutoff}
    out = []
    for detector, route, checks in checked:
        kept: Checks = []
        for name, f in checks:
            p = f.evidence.p_value
            if f.fired and p is not None and p > cutoff:
                evidence = replace(f.evidence, numbers={**f.evidence.numbers, "false_discovery_rate": fdr})
                summary = (
                    f"{f.summary}; not a discovery at false discovery rate {q:g} over the evaluation's "
                    f"{len(tested)} tests (cutoff p ≤ {cutoff:.2g})"
                )
                f = replace(f, status="ok", severity="info", summary=summary, evidence=evidence)
            kept.append((name, f))
        out.append((detector, route, kept))
    return out
