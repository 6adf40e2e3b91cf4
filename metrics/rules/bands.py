"""Expected escalation bands: what rate of escalation from tier t to t+1 a route considers healthy.

A route with n tiers has n-1 transitions. The band of transition i (tier i+1 → i+2) is the one the
policy declares at `routes.<r>.expectations.escalation_bands[i]`; where it declares none, the
healthy default of that transition, when Signalbox has one (tier 1→2 and 2→3); deeper transitions
without a declared band have **no band**: their rate is shown but not judged (no status colour, no
alert, no savings recommendation). What-if, which needs a rate where none was observed, assumes
the deepest default band for those (`assumed_band`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# Healthy escalation rates where a route's expectations are silent: tier 1→2, tier 2→3.
DEFAULT_ESCALATION_BANDS: tuple[tuple[float, float], ...] = ((0.20, 0.30), (0.05, 0.10))

BandSource = Literal["policy", "default", "assumed"]
# The verdict on a transition's rate.
IN_BAND, BELOW_BAND, ABOVE_BAND, NO_DATA, NO_BAND = "in band", "below band", "above band", "no data", "no band"


@dataclass(frozen=True, slots=True)
class Band:
    """The healthy range [lo, hi] of one transition's escalation rate, and where it comes from."""

    lo: float
    hi: float
    source: BandSource

    @property
    def midpoint(self) -> float:
        return (self.lo + self.hi) / 2

    def status(self, rate: float | None) -> str:
        if rate is None:
            return NO_DATA
        if rate < self.lo:
            return BELOW_BAND
        if rate > self.hi:
            return ABOVE_BAND
        return IN_BAND

    def as_dict(self) -> dict[str, Any]:
        """The band as the API and the report show it."""
        return {"min": self.lo, "max": self.hi, "source": self.source}

    @property
    def text(self) -> str:
        return f"{self.lo:.0%}–{self.hi:.0%}"


def status(band: Band | None, rate: float | None) -> str:
    """The verdict on a transition's rate: in/below/above band, no data, or no band to judge by."""
    return NO_BAND if band is None else band.status(rate)


def transitions(route_doc: Mapping[str, Any], observed_tiers: int = 0) -> int:
    """How many tier transitions a route has: its tiers minus one. A route the document does not
    know (removed since, or no document) has as many as its traffic shows."""
    tiers = route_doc.get("tiers")
    n = len(tiers) if isinstance(tiers, list) and tiers else observed_tiers
    return max(n - 1, 0)


def declared(route_doc: Mapping[str, Any]) -> list[Band]:
    """The bands the route declares, in transition order (min and max ordered, whatever the document)."""
    out = []
    for band in (route_doc.get("expectations") or {}).get("escalation_bands") or []:
        lo, hi = float(band["min"]), float(band["max"])
        out.append(Band(min(lo, hi), max(lo, hi), "policy"))
    return out


def band_of(route_doc: Mapping[str, Any], transition: int) -> Band | None:
    """The band of transition `transition` (0 = tier 1→2): declared, else default, else None."""
    own = declared(route_doc)
    if transition < len(own):
        return own[transition]
    if transition < len(DEFAULT_ESCALATION_BANDS):
        lo, hi = DEFAULT_ESCALATION_BANDS[transition]
        return Band(lo, hi, "default")
    return None


def escalation_bands(route_doc: Mapping[str, Any], observed_tiers: int = 0) -> list[Band | None]:
    """One entry per transition of the route: its band, or None where it has none."""
    return [band_of(route_doc, i) for i in range(transitions(route_doc, observed_tiers))]


def assumed_band(route_doc: Mapping[str, Any], transition: int) -> Band:
    """The band a model of the route takes when no rate was observed: the transition's own band,
    else the deepest default band (marked `assumed`)."""
    band = band_of(route_doc, transition)
    if band is not None:
        return band
    lo, hi = DEFAULT_ESCALATION_BANDS[-1]
    return Band(lo, hi, "assumed")


def route_doc(document: Mapping[str, Any] | None, route: str) -> Mapping[str, Any]:
    """A route's settings in a policy document ({} when the document or the route is absent)."""
    return ((document or {}).get("routes") or {}).get(route) or {}
