"""What-if, the Django side: read a period's rollup sums (through `metrics.rollups.selectors`),
the catalog's prices (`metrics.ingest.pricing`) and the live and draft documents, then call the
pure core (`metrics.whatif.core.whatif_compute`). It never reads raw decisions: one GROUP BY over
the hourly rollups per estimate. Also the period check of the API and the report's entry point.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Sum

from controlplane import compute
from controlplane.errors import InvalidInput
from metrics.ingest.pricing import prices
from metrics.models import BUCKET_FIELDS
from metrics.rollups.selectors import rollup_cells
from metrics.rules.periods import FIRST_DATE, LAST_DATE
from metrics.whatif.core import Cell, whatif_compute
from metrics.whatif.results import WhatIf, whatif_summary
from routing import selectors, services
from routing.models import Policy
from signalbox_client import engine

MAX_DAYS = 93


def whatif_period(start: date, end: date) -> tuple[datetime, datetime]:
    """[start, end] (dates, UTC, end inclusive) as a half-open datetime range; InvalidInput names
    the field when the range is reversed, too long or out of bounds."""
    for name, day in (("start", start), ("end", end)):
        if not FIRST_DATE <= day <= LAST_DATE:
            raise InvalidInput("Invalid period.", {name: [f"must be between {FIRST_DATE} and {LAST_DATE}"]})
    if end < start:
        raise InvalidInput("Invalid period.", {"end": [f"must not be before start ({start})"]})
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise InvalidInput("Invalid period.", {"end": [f"the period is {days} days; at most {MAX_DAYS} are allowed"]})
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def whatif_cells(policy: Policy, start: datetime, end: datetime) -> tuple[Cell, ...]:
    """The period's rollup sums per (task type, route, tier, model): one GROUP BY, its size set by
    the policy's shape, not by the traffic."""
    dims = ("task_type", "route", "tier", "model")
    rows = (
        rollup_cells(policy_id=policy.pk, start=start, end=end)
        .values(*dims)
        .order_by(*dims)
        .annotate(
            s_count=Sum("count"),
            s_requests=Sum("requests"),
            s_escalations=Sum("escalations"),
            s_cost=Sum("cost_usd"),
            s_unpriced=Sum("unpriced"),
            s_tin=Sum("tokens_in"),
            s_tout=Sum("tokens_out"),
            s_latency=Sum("latency_sum_ms"),
            **{f"s_{name}": Sum(name) for name in BUCKET_FIELDS},
        )
    )
    return tuple(
        Cell(
            task_type=r["task_type"],
            route=r["route"],
            tier=r["tier"],
            model=r["model"],
            count=int(r["s_count"] or 0),
            requests=int(r["s_requests"] or 0),
            escalations=int(r["s_escalations"] or 0),
            cost_usd=float(r["s_cost"] or 0),
            unpriced=int(r["s_unpriced"] or 0),
            tokens_in=int(r["s_tin"] or 0),
            tokens_out=int(r["s_tout"] or 0),
            latency_sum_ms=float(r["s_latency"] or 0),
            buckets=tuple(int(r[f"s_{name}"] or 0) for name in BUCKET_FIELDS),
        )
        for r in rows
    )


def whatif_estimate(*, policy: Policy, document: Any, start: datetime, end: datetime) -> WhatIf:
    """Replay [start, end) of `policy`'s logged traffic through `document` (a draft) and compare
    with what happened. Raises InvalidInput (field paths of the document) or TooLarge."""
    snapshot = services.document_check(document)
    with compute.interruptible():
        compiled = engine.compile_policy(document, snapshot)
    live_document = selectors.live_document(policy)
    live_compiled = None
    if live_document is not None:
        try:
            live_snapshot = selectors.models_snapshot(engine.referenced_models(live_document))
            with compute.interruptible():
                live_compiled = engine.compile_policy(live_document, live_snapshot)
        except engine.PolicyError:
            live_compiled = None  # a live document that no longer compiles: no calibration figure
    cells = whatif_cells(policy, start, end)
    priced_at = end - timedelta(microseconds=1)
    book = prices(frozenset(engine.referenced_models(document)) | {c.model for c in cells})
    epoch = priced_at.timestamp()

    def price(model: str, tokens_in: float, tokens_out: float) -> float | None:
        return book.cost(model, epoch, tokens_in, tokens_out)

    with compute.interruptible():
        return whatif_compute(
            policy=policy.slug,
            document=document,
            compiled=compiled,
            live_document=live_document,
            live_compiled=live_compiled,
            cells=cells,
            price=price,
            start=start,
            end=end,
            priced_at=priced_at,
        )


def whatif_for_report(policy: Policy, month_start: date, month_end: date) -> dict[str, Any] | None:
    """The policy's draft against what happened in the month, JSON-ready, for the monthly
    report's recommendations; None when the policy has no draft.

    Dates are UTC days with `month_end` the month's last day (inclusive). A draft that no longer
    validates gives `{"error": message, "errors": {path: [...]}}` instead of an estimate.
    """
    draft = selectors.policy_draft(policy)
    if draft is None:
        return None
    start, end = whatif_period(month_start, month_end)
    try:
        result = whatif_estimate(policy=policy, document=draft.document, start=start, end=end)
    except InvalidInput as exc:
        return {"error": exc.message, "errors": exc.errors, "draft_revision": draft.revision}
    data = result.to_dict()
    data["draft_revision"] = draft.revision
    data["summary"] = whatif_summary(result)
    return data
