"""Alert quality on simulated months: a scenario of `metrics.stats.scenarios` replayed through the
real rollups and evaluated hour by hour with `alerts_evaluate(at=…)`, then scored.

The scenario's hourly cells are written as rollup deltas into the rollup inbox, the table every
ingest writes its deltas to, and folded by `rollups_update` (the same statement, daily cells by the
same triggers): the evaluation reads exactly what it would read after ingesting the raw decisions
of those cells. Pre-aggregated cells instead of raw records keep building a seed (about 700,000
decisions) to seconds; the rollups cannot tell the difference, as every measure they hold is a sum.
Each seed gets its own policy (`sim-<seed>`, removed with its cells and alerts afterwards).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from metrics.alerts.evaluation import alerts_evaluate
from metrics.models import Alert, RollupDaily, RollupHourly, RollupInbox
from metrics.rollups.services import rollups_update
from metrics.schema import BUCKET_FIELDS, LATENCY_BOUNDS_MS, ROLLUP_DIMENSIONS, ROLLUP_MEASURES
from metrics.stats import scenarios
from routing import services as routing_services
from routing.demo import FIXTURES
from routing.models import CatalogModel, Policy

CATALOG_FILE = FIXTURES / "demo_catalog.json"  # always the bundled catalog: a seed means the same prices
_PRICES_FROM = datetime(2024, 1, 1, tzinfo=UTC)
_INBOX_COLUMNS = (*ROLLUP_DIMENSIONS, *ROLLUP_MEASURES)  # the inbox rows the replay COPYs in


def catalog_models() -> dict[str, scenarios.Model]:
    """The demo catalog's chat models with their list prices, imported into the catalog when absent
    (a policy may only name catalog models)."""
    entries = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    if CatalogModel.objects.filter(model_id__in=list(entries)).count() < len(entries):
        routing_services.catalog_import(
            entries=entries, source=CATALOG_FILE.name, user=None, effective_from=_PRICES_FROM
        )
    out = {}
    for model_id, e in sorted(entries.items()):
        price_in, price_out = float(e["input_cost_per_token"]), float(e["output_cost_per_token"])
        # Frontier models answer slower: 400 ms at the cheapest, up to ~2.4 s at the dearest.
        latency = 400 + 2000 * min(1.0, (price_in * 1e6) / 15)
        out[model_id] = scenarios.Model(model_id, e["litellm_provider"], price_in, price_out, latency)
    return out


def _copy_line(policy_id: int, version: int, c: scenarios.Cell) -> str:
    values = (
        c.hour.isoformat(),
        policy_id,
        version,
        c.route,
        c.task_type,
        c.model,
        c.provider,
        c.tier,
        c.outcome,
        c.count,
        c.requests,
        c.escalations,
        repr(c.cost_usd),
        0,
        c.tokens_in,
        c.tokens_out,
        repr(c.confidence_sum),
        c.confidence_count,
        repr(c.latency_sum_ms),
        *c.buckets,
    )
    return "\t".join(str(v) for v in values)


def _cells_write(policy_id: int, version: int, cells: Sequence[scenarios.Cell]) -> None:
    """The cells as rollup deltas in the inbox, folded into the rollups."""
    if connection.vendor == "postgresql":
        data = "".join(_copy_line(policy_id, version, c) + "\n" for c in cells).encode()
        with transaction.atomic(), connection.cursor() as cursor:
            copy_sql = f"COPY metrics_rollup_inbox ({', '.join(_INBOX_COLUMNS)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                copy.write(data)
    else:
        RollupInbox.objects.bulk_create(
            [
                RollupInbox(
                    hour=c.hour,
                    policy_id=policy_id,
                    policy_version=version,
                    route=c.route,
                    task_type=c.task_type,
                    model=c.model,
                    provider=c.provider,
                    tier=c.tier,
                    outcome=c.outcome,
                    count=c.count,
                    requests=c.requests,
                    escalations=c.escalations,
                    cost_usd=c.cost_usd,
                    tokens_in=c.tokens_in,
                    tokens_out=c.tokens_out,
                    confidence_sum=c.confidence_sum,
                    confidence_count=c.confidence_count,
                    latency_sum_ms=c.latency_sum_ms,
                    **dict(zip(BUCKET_FIELDS, c.buckets, strict=True)),
                )
                for c in cells
            ],
            batch_size=2000,
        )
    rollups_update(limit=50_000)
    if connection.vendor == "postgresql":
        # The planner's statistics of the freshly filled tables, as autovacuum keeps them in
        # production (stale, it sorts thousands of cells by route name instead of hashing them).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE metrics_rollup_hourly, metrics_rollup_daily")


def simulation_clear(slug: str) -> None:
    """Remove a simulated policy with its rollup cells and alerts."""
    for p in Policy.objects.filter(slug=slug):
        RollupHourly.objects.filter(policy_id=p.pk).delete()
        RollupDaily.objects.filter(policy_id=p.pk).delete()
        Alert.objects.filter(policy=p).delete()
        p.live_version = None
        p.save(update_fields=["live_version"])
        p.delete()


@dataclass(frozen=True)
class Run:
    month: scenarios.MonthScore
    evaluations: int
    evaluate_seconds: float
    cells: int


def scenario_run(
    seed: int,
    *,
    clean: bool,
    every_hours: int = 1,
    log: Callable[[str], None] | None = None,
    detail: bool = False,
    keep: bool = False,
    days: int | None = None,
    kinds: Sequence[str] | None = None,
) -> Run:
    """Build the scenario of `seed`, replay it through the rollups, evaluate its policy at the end
    of every `every_hours`-th hour of the month and score the alerts raised."""
    models = catalog_models()
    scenario, cells = scenarios.scenario_build(
        seed, clean=clean, models=models, bounds=LATENCY_BOUNDS_MS, days=days, kinds=kinds
    )
    slug = f"sim-{seed}{'-clean' if clean else ''}"
    simulation_clear(slug)
    policy = routing_services.policy_create(
        slug=slug, name=f"Simulated month {seed}", user=None, document=scenarios.policy_document(scenario)
    )
    version = routing_services.policy_publish(policy=policy, user=None, comment="simulated month")
    policy.refresh_from_db()
    _cells_write(policy.pk, version.number or 1, cells)
    raised: list[scenarios.Raised] = []
    counted: set[int] = set()
    at = scenario.month_start + timedelta(hours=every_hours) - timedelta(seconds=1)
    evaluations, spent = 0, 0.0
    while at < scenario.month_end:
        t0 = time.perf_counter()
        report = alerts_evaluate(policy=policy, at=at)
        spent += time.perf_counter() - t0
        evaluations += 1
        if report.failed:
            raise RuntimeError(f"evaluation failed at {at}: {report.failed[0].error}")
        for c in report.changes:
            # An alert counts when it notifies at ticket or page: opened or reopened so, or
            # escalated to it from info (then its first notification a reviewer would act on).
            if c.action == "resolved":
                counted.discard(c.alert_id)
            elif c.severity != "info" and (
                c.action in ("opened", "reopened") or (c.action == "escalated" and c.alert_id not in counted)
            ):
                counted.add(c.alert_id)
                raised.append(scenarios.Raised(c.detector, c.route, at, c.severity))
        at += timedelta(hours=every_hours)
    if not keep:
        simulation_clear(slug)
    month = scenarios.score(scenario, raised)
    if log is not None:
        kind = "clean" if clean else "anomalies"
        found = sum(1 for d in month.detections if d.hours is not None and d.hours <= scenarios.DETECT_WITHIN_HOURS)
        log(
            f"seed {seed} ({kind}, {scenario.month_start:%Y-%m}): {len(cells)} cells, {evaluations} evaluations "
            f"in {spent:.1f} s; detected {found}/{len(month.detections)} within 24 h, {len(month.false)} false alerts"
        )
        if detail:
            for d in month.detections:
                a = d.anomaly
                when = "missed" if d.hours is None else f"{d.hours:.0f} h by {d.first.detector if d.first else ''}"
                log(f"  {a.kind} {a.start:%d %H}h–{a.end:%d %H}h {a.label}: {when} {sorted(d.detectors)}")
            for r in month.false:
                log(f"  false: {r.detector} {r.route or '(policy)'} at {r.at:%d %H}h ({r.severity})")
    return Run(month, evaluations, spent, len(cells))


def report_text(runs: Sequence[Run], *, command: str) -> str:
    """The scorer's tables for docs/alerts.md, with how they were made."""
    out = io.StringIO()
    months = [r.month for r in runs]
    evaluations = sum(r.evaluations for r in runs)
    seconds = sum(r.evaluate_seconds for r in runs)
    out.write(f"`{command}`: {len(months)} simulated months, {evaluations} hourly evaluations ")
    out.write(f"({1000 * seconds / max(1, evaluations):.0f} ms each on average).\n\n")
    out.write(scenarios.tables(months))
    out.write("\n")
    return out.getvalue()
