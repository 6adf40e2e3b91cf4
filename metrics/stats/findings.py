"""The common shape every detector returns: a ``Finding`` carrying the ``Evidence`` an alert prints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Severity = Literal["page", "ticket", "info"]
Status = Literal["alert", "ok", "insufficient_data"]
Number = int | float

SEVERITY_RANK: Mapping[str, int] = MappingProxyType({"info": 0, "ticket": 1, "page": 2})


def _frozen(numbers: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(numbers or {}))


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a detector looked at and what it measured, enough to reproduce the decision.

    ``window`` and ``baseline`` are human labels supplied by the caller ("the last 24 h",
    "the previous 7 days"); ``test`` names the method ("Wilson score interval, 95%");
    ``statistic``/``p_value``/``interval`` are filled when the method produces them; ``numbers``
    holds every input count and derived figure, JSON-ready.
    """

    test: str
    window: str
    baseline: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    interval: tuple[float, float] | None = None
    numbers: Mapping[str, Any] = field(default_factory=lambda: _frozen(None))

    def __post_init__(self) -> None:
        object.__setattr__(self, "numbers", _frozen(self.numbers))

    def to_dict(self) -> dict[str, Any]:
        """The evidence as plain JSON-ready data."""
        return {
            "test": self.test,
            "window": self.window,
            "baseline": self.baseline,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "interval": list(self.interval) if self.interval is not None else None,
            "numbers": dict(self.numbers),
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector's verdict on one window.

    ``status`` is "alert" when the detector fires, "ok" when it evaluated and found nothing, and
    "insufficient_data" when a minimum sample size was not met: an open alert should stay open
    (not auto-resolve) on "insufficient_data". ``severity`` says where an alert goes (page: wake
    someone; ticket: next working day; info: history and UI only) and is "info" when not alerting.
    ``summary`` is one sentence with the numbers, e.g. "tier 1→2 escalation 41% (95% CI 36–46%)
    is above the expected 20–30% over the last 24 h, n=412".
    """

    detector: str
    status: Status
    severity: Severity
    summary: str
    evidence: Evidence

    @property
    def fired(self) -> bool:
        """True when the detector raises an alert."""
        return self.status == "alert"

    @property
    def numbers(self) -> Mapping[str, Any]:
        """Shortcut to ``evidence.numbers``."""
        return self.evidence.numbers

    def to_dict(self) -> dict[str, Any]:
        """The finding as plain JSON-ready data (for alert history and webhook payloads)."""
        return {
            "detector": self.detector,
            "status": self.status,
            "severity": self.severity,
            "summary": self.summary,
            "evidence": self.evidence.to_dict(),
        }


def most_severe(findings: list[Finding]) -> Finding | None:
    """The firing finding with the highest severity, or None when none fires."""
    firing = [f for f in findings if f.fired]
    if not firing:
        return None
    return max(firing, key=lambda f: SEVERITY_RANK[f.severity])


def pct(x: float, digits: int = 0) -> str:
    """Format a fraction as a percentage for summaries: 0.4123 -> "41%"."""
    return f"{100 * x:.{digits}f}%"


def pct_range(lo: float, hi: float, digits: int = 0) -> str:
    """Format an interval of fractions as "36–46%"."""
    return f"{100 * lo:.{digits}f}–{100 * hi:.{digits}f}%"
