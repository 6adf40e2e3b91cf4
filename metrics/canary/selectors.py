"""Reads of a policy's splits: the declared arms, the versions that ran the current split, and
each arm's hourly cells from the dimension rollups, judged by `metrics.stats.canary`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from metrics.rollups.selectors import dimension_hourly_totals
from metrics.rules.latency import buckets_of, latency_quantile
from metrics.rules.numbers import count as _int
from metrics.rules.numbers import num as _num
from metrics.schema import DIMENSION_ARM
from metrics.stats.canary import ArmInput, CanaryVerdict, HourCell, canary_verdict
from signalbox_client.engine.types import PROVIDER_ERRORS


@dataclass(frozen=True, slots=True)
class SplitArm:
    name: str
    weight: int
    kind: str  # "control", "route" or "model"
    target: str | None  # the arm's route or model


@dataclass(frozen=True, slots=True)
class Split:
    """A route's split in the live document."""

    route: str
    key: str
    arms: tuple[SplitArm, ...]
    control: str
    guardrails: Mapping[str, Any]

    @property
    def routes(self) -> list[str]:
        """The routes the split's records carry: its own and those of arms sending elsewhere."""
        return sorted({self.route, *(a.target for a in self.arms if a.kind == "route" and a.target)})

    def signature(self) -> tuple[tuple[str, int, str, str | None], ...]:
        return tuple((a.name, a.weight, a.kind, a.target) for a in self.arms)


def split_of(route: str, spec: Mapping[str, Any]) -> Split:
    arms = []
    for arm in spec.get("arms") or []:
        kind = "route" if "route" in arm else "model" if "model" in arm else "control"
        arms.append(SplitArm(arm["name"], int(arm["weight"]), kind, arm.get("route") or arm.get("model")))
    control = next((a.name for a in arms if a.kind == "control"), arms[0].name if arms else "")
    return Split(route, str(spec.get("key", "")), tuple(arms), control, spec.get("guardrails") or {})


def document_splits(document: Mapping[str, Any] | None) -> list[Split]:
    """Every route's split in a policy document, by route name."""
    routes = (document or {}).get("routes") or {}
    return [split_of(name, r["split"]) for name, r in sorted(routes.items()) if isinstance(r, dict) and r.get("split")]


def split_versions(policy: Any, split: Split) -> list[int]:
    """The published versions, newest first back from the live one, that ran this split with the
    same arms and weights: the canary's records are theirs (a changed split starts a new canary)."""
    from routing.models import PolicyVersion

    if policy.live_version_id is None:
        return []
    versions: list[int] = []
    rows = (
        PolicyVersion.objects.filter(
            policy_id=policy.pk, status=PolicyVersion.Status.PUBLISHED, number__lte=policy.live_version.number
        )
        .order_by("-number")
        .values_list("number", "document")
        .iterator(chunk_size=20)
    )
    for number, document in rows:
        spec = (((document or {}).get("routes") or {}).get(split.route) or {}).get("split")
        if not spec or split_of(split.route, spec).signature() != split.signature():
            break
        if number is not None:
            versions.append(number)
    return versions


@dataclass(frozen=True, slots=True)
class SplitVerdict:
    split: Split
    versions: list[int]
    verdict: CanaryVerdict
    hours: dict[str, list[dict[str, Any]]]  # per arm, per hour: requests and cost per request

    def arm_quantiles(self, name: str) -> dict[str, float | None]:
        arm = next(a for a in self.verdict.arms if a.name == name)
        buckets = list(arm.latency_buckets)
        return {
            "p50": latency_quantile(buckets, 0.5) if buckets else None,
            "p95": latency_quantile(buckets, 0.95) if buckets else None,
        }


def split_verdict(policy: Any, split: Split, start: datetime, end: datetime) -> SplitVerdict:
    """The verdict of one split over [start, end) (1 query for the versions, 1 for the cells)."""
    versions = split_versions(policy, split)
    rows = dimension_hourly_totals(
        policy_id=policy.pk,
        dim_key=DIMENSION_ARM,
        start=start,
        end=end,
        group_by=("dim_value", "outcome"),
        filters={
            "route__in": split.routes,
            "policy_version__in": versions,
            "dim_value__in": [a.name for a in split.arms],
        },
    )
    cells: dict[str, dict[Any, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        hour = cells[row["dim_value"]].setdefault(
            row["hour"], {"requests": 0, "attempts": 0, "ok": 0, "escalations": 0, "errors": 0, "cost": 0.0,
                          "latency": 0.0, "buckets": [0] * len(buckets_of({}))}
        )  # fmt: skip
        attempts = _int(row["count"])
        hour["requests"] += _int(row["requests"])
        hour["attempts"] += attempts
        hour["escalations"] += _int(row["escalations"])
        hour["cost"] += _num(row["cost_usd"])
        hour["latency"] += _num(row["latency_sum_ms"])
        if row["outcome"] == "ok":
            hour["ok"] += attempts
        elif row["outcome"] in PROVIDER_ERRORS:
            hour["errors"] += attempts
        hour["buckets"] = [a + b for a, b in zip(hour["buckets"], buckets_of(row), strict=True)]
    arms = []
    series: dict[str, list[dict[str, Any]]] = {}
    for arm in split.arms:
        by_hour = cells.get(arm.name, {})
        hours = [
            HourCell(h["requests"], h["attempts"], h["ok"], h["escalations"], h["errors"], h["cost"], h["latency"],
                     tuple(h["buckets"]))
            for _, h in sorted(by_hour.items())
        ]  # fmt: skip
        arms.append(ArmInput.of_hours(arm.name, arm.weight, hours))
        series[arm.name] = [
            {"hour": when.isoformat(), "requests": h["requests"], "cost_usd": h["cost"]}
            for when, h in sorted(by_hour.items())
        ]
    return SplitVerdict(split, versions, canary_verdict(arms, split.control), series)


def canary_splits(policy: Any, start: datetime, end: datetime, *, route: str = "") -> list[SplitVerdict]:
    """The verdict of every split of the policy's live version (or the one on `route`)."""
    if policy is None or policy.live_version_id is None:
        return []
    splits = document_splits(policy.live_version.document)
    return [split_verdict(policy, s, start, end) for s in splits if not route or s.route == route]


# How far back the guardrail detector reads a canary's records (the split's versions narrow it).
CANARY_LOOKBACK = timedelta(days=30)


def canary_guarded_splits(policy: Any, *, start: datetime, end: datetime) -> list[SplitVerdict]:
    """The verdicts of the live version's splits that declare guardrails (no query without one)."""
    if policy is None or policy.live_version_id is None:
        return []
    guarded = [s for s in document_splits(policy.live_version.document) if s.guardrails]
    return [split_verdict(policy, s, start, end) for s in guarded]
