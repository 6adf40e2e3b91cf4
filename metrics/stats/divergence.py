"""Distances between categorical distributions: Jensen–Shannon divergence and PSI."""

from __future__ import annotations

import math
from collections.abc import Mapping

# Additive (Jeffreys / Krichevsky–Trofimov) pseudo-count per category: small enough not to move
# well-populated categories, large enough that an empty category gives a finite log ratio.
DEFAULT_PSEUDOCOUNT = 0.5


def smoothed_distributions(
    a: Mapping[str, float], b: Mapping[str, float], pseudocount: float = DEFAULT_PSEUDOCOUNT
) -> tuple[dict[str, float], dict[str, float]]:
    """Turn two count mappings into probability mappings over the union of their categories.

    Each category of the union gets ``pseudocount`` added in both, so a category seen in only one
    window has a small non-zero share in the other: p_i = (c_i + α) / (N + α·K).
    ``pseudocount=0`` gives the raw proportions. Both inputs need a positive total.
    """
    if pseudocount < 0:
        raise ValueError("pseudocount must be >= 0")
    keys = sorted(set(a) | set(b))
    out = []
    for counts in (a, b):
        if any(counts.get(k, 0) < 0 for k in keys):
            raise ValueError("counts must be non-negative")
        total = sum(counts.get(k, 0) for k in keys) + pseudocount * len(keys)
        if total <= 0:
            raise ValueError("each distribution needs a positive total")
        out.append({k: (counts.get(k, 0) + pseudocount) / total for k in keys})
    return out[0], out[1]


def _normalised(d: Mapping[str, float]) -> dict[str, float]:
    total = sum(d.values())
    if total <= 0 or any(v < 0 for v in d.values()):
        raise ValueError("need non-negative weights with a positive total")
    return {k: v / total for k, v in d.items()}


def jensen_shannon_divergence(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen–Shannon divergence in bits, in [0, 1].

    JSD(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M) with M = ½(P + Q) and KL(P‖M) = Σ p_i log2(p_i / m_i).
    Inputs are weights (counts or probabilities; each is normalised, missing keys are 0). It is
    symmetric, finite even when a category is empty on one side (m_i > 0 wherever p_i > 0), 0 for
    identical distributions and 1 for disjoint ones, which makes a fixed threshold readable.
    For small shifts JSD ≈ Σ (p_i − q_i)² / (8 ln 2 · m_i), i.e. PSI ≈ 8 ln 2 · JSD ≈ 5.5 · JSD.
    """
    p, q = _normalised(p), _normalised(q)
    total = 0.0
    for k in set(p) | set(q):
        pk, qk = p.get(k, 0.0), q.get(k, 0.0)
        m = 0.5 * (pk + qk)
        if pk > 0:
            total += 0.5 * pk * math.log2(pk / m)
        if qk > 0:
            total += 0.5 * qk * math.log2(qk / m)
    return min(1.0, max(0.0, total))


def population_stability_index(actual: Mapping[str, float], expected: Mapping[str, float]) -> float:
    """Population Stability Index: Σ (a_i − e_i) · ln(a_i / e_i), ``actual`` against ``expected``.

    It is the symmetrised KL divergence (J-divergence) in nats, ≥ 0 and unbounded; infinite when
    a category is empty on exactly one side, so pass smoothed distributions
    (``smoothed_distributions``). Credit-scoring convention reads < 0.1 as stable, 0.1–0.25 as a
    moderate shift worth a look, > 0.25 as a significant shift.
    """
    a, e = _normalised(actual), _normalised(expected)
    total = 0.0
    for k in set(a) | set(e):
        ak, ek = a.get(k, 0.0), e.get(k, 0.0)
        if ak == ek:
            continue
        if ak == 0.0 or ek == 0.0:
            return math.inf
        total += (ak - ek) * math.log(ak / ek)
    return total
