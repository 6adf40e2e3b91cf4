"""Multiple-testing control within one evaluation: the Benjamini–Hochberg step-up procedure.

One evaluation of a policy runs a few hundred tests (routes × tiers × detectors × checks). Judged
one by one at a fixed level, the number of false alerts grows with the number of tests; judged
together with Benjamini–Hochberg at a false discovery rate q, the expected share of false alerts
among the alerts is at most q (for independent or positively dependent tests), and when nothing
changed at all the chance of any alert is at most q.
"""

from __future__ import annotations

from collections.abc import Sequence

# The default false discovery rate of one evaluation (`ALERTS_FALSE_DISCOVERY_RATE`): with nothing
# changed, at most this chance that an evaluation raises any alert from a test with a p-value, so at
# most 720 × 0.001 ≈ 0.7 such alerts a month for a policy evaluated hourly, fewer in practice as
# consecutive evaluations share 23 of their 24 hours. With ~120 tests in an evaluation a lone
# signal needs p ≤ 0.001/120 ≈ 8e-6, the per-test 1e-5 the detectors used on their own.
DEFAULT_FALSE_DISCOVERY_RATE = 1e-3


def benjamini_hochberg(p_values: Sequence[float], q: float) -> float:
    """The BH cutoff: the largest p_(k) with p_(k) ≤ k·q/m (p sorted ascending, m tests); every
    p-value at or below it is a discovery. 0.0 when there is none (nothing is rejected; a p-value
    of exactly 0 still is)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    ordered = sorted(p_values)
    m = len(ordered)
    cutoff = 0.0
    for k, p in enumerate(ordered, start=1):
        if p <= k * q / m:
            cutoff = p
    return cutoff
