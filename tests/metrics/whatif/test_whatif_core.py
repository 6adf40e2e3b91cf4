"""The what-if's pure core: the replay math over plain rollup sums, a compiled document and a price
function, without Django or a database."""

from __future__ import annotations

import copy
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from metrics.rules import bands as band_rules
from metrics.schema import BUCKET_FIELDS
from metrics.whatif.core import Cell, whatif_compute
from metrics.whatif.results import WhatIf, whatif_summary
from signalbox_client import engine

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 8, tzinfo=UTC)
PRICES = {"small": 0.001, "big": 0.01, "huge": 0.1}  # USD per attempt, whatever the tokens

LIVE: dict[str, Any] = {
    "schema_version": 1,
    "default_route": "main",
    "task_types": {"qa": "main"},
    "routes": {
        "main": {
            "tiers": [{"model": "small"}, {"model": "big"}],
            "escalate": {"min_confidence": 0.6, "on_validation_failure": True, "max_depth": 1},
        }
    },
}


def cell(tier: int, model: str, *, requests: int = 0, escalations: int = 0, bucket: int = 3) -> Cell:
    count = requests + escalations
    buckets = [0] * len(BUCKET_FIELDS)
    buckets[bucket] = count
    return Cell(
        task_type="qa",
        route="main",
        tier=tier,
        model=model,
        count=count,
        requests=requests,
        escalations=escalations,
        cost_usd=count * PRICES[model],
        unpriced=0,
        tokens_in=1000 * count,
        tokens_out=200 * count,
        latency_sum_ms=150.0 * count,
        buckets=tuple(buckets),
    )


# 100 requests on tier 1, 25 of them escalated to tier 2: an observed rate of 25%.
CELLS = (cell(1, "small", requests=100), cell(2, "big", escalations=25, bucket=5))


def compute(draft: dict[str, Any], cells: tuple[Cell, ...] = CELLS, prices: dict[str, float] = PRICES) -> WhatIf:
    return whatif_compute(
        policy="demo",
        document=draft,
        compiled=engine.compile_policy(draft),
        live_document=LIVE,
        live_compiled=engine.compile_policy(LIVE),
        cells=cells,
        price=lambda model, _tokens_in, _tokens_out: prices.get(model),
        start=START,
        end=END,
        priced_at=END,
    )


def test_core__imports_no_django() -> None:
    """The core and its results load in a fresh interpreter without Django or the project's apps."""
    code = (
        "import sys, metrics.whatif.core, metrics.whatif.results\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'routing'))\n"
        "assert not loaded, loaded\n"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_compute__live_document__reproduces_what_happened() -> None:
    result = compute(copy.deepcopy(LIVE))

    (row,) = result.rows
    assert row.comparison.actual.cost_usd == pytest.approx(100 * 0.001 + 25 * 0.01)
    assert row.comparison.draft.cost_usd == pytest.approx(100 * (0.001 + 0.25 * 0.01))
    assert row.comparison.draft.escalation_rate == pytest.approx(0.25)
    assert [s.next_rate_source for s in row.paths[0].steps] == ["observed", None]
    assert result.total.delta_cost_usd == pytest.approx(0, abs=1e-12)
    assert result.total.live_modelled_cost_usd == pytest.approx(0.35)
    assert row.share == 1.0


def test_compute__new_tier_without_band__default_band_midpoint_from_the_rules() -> None:
    draft = copy.deepcopy(LIVE)
    draft["routes"]["main"]["tiers"].append({"model": "huge"})
    draft["routes"]["main"]["escalate"]["max_depth"] = 2

    result = compute(draft)

    steps = result.rows[0].paths[0].steps
    band = band_rules.assumed_band(band_rules.route_doc(draft, "main"), 1)
    assert [s.next_rate_source for s in steps] == ["observed", "default band", None]
    assert steps[1].next_rate == band.midpoint == pytest.approx(0.075)
    assert steps[2].reach == pytest.approx(0.25 * 0.075)
    assert result.rows[0].comparison.draft.cost_usd == pytest.approx(100 * (0.001 + 0.25 * 0.01 + 0.25 * 0.075 * 0.1))
    assert any("'main' tier 2→3" in a and "7.5%" in a for a in result.assumptions)


def test_compute__model_without_price__counted_apart_and_no_cost_delta() -> None:
    result = compute(copy.deepcopy(LIVE), prices={"small": 0.001})

    draft = result.total.draft
    assert draft.unpriced_attempts == pytest.approx(25)
    assert draft.cost_usd == pytest.approx(100 * 0.001)
    assert result.total.delta_cost_usd is None
    assert result.unpriced_models == ("big",)
    assert "saving is not known" in whatif_summary(result)


def test_compute__no_requests__empty_with_message() -> None:
    result = compute(copy.deepcopy(LIVE), cells=())

    assert result.empty
    assert result.total.actual.requests == 0
    assert "No requests were logged for 'demo'" in result.message
    assert whatif_summary(result) == result.message
