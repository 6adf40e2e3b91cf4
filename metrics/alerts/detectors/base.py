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
from typing import Any, ClassVar

from metrics.alerts.reads import RouteTotals
from metrics.alerts.windows import Windows
from metrics.models import SEVERITY_RANK
from metrics.stats import Finding
from metrics.stats.canary import CanaryVerdict

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
    """One route as the drift detectors see it: its window totals and its part of the live document."""

    route: str
    totals: RouteTotals
    doc: Mapping[str, Any]

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


class Detector(ABC):
    """An alert detector: `evaluate` gives at most one verdict per route or budget of the policy."""

    name: ClassVar[str]

    @abstractmethod
    def evaluate(self, context: Context) -> list[Evaluation]: ...


class RouteDetector(Detector):
    """A detector judging each route on its own, from the checks `checks` runs on it."""

    def evaluate(self, context: Context) -> list[Evaluation]:
        verdicts = (combine(self.name, view.route, self.checks(view)) for view in context.routes)
        return [e for e in verdicts if e is not None]

    @abstractmethod
    def checks(self, view: RouteView) -> Checks: ...


class BudgetDetector(Detector):
    """A detector judging each budget on its own (its route is the budget's scope)."""

    def evaluate(self, context: Context) -> list[Evaluation]:
        verdicts = (combine(self.name, view.scope, self.checks(view)) for view in context.budgets)
        return [e for e in verdicts if e is not None]

    @abstractmethod
    def checks(self, view: BudgetView) -> Checks: ...
