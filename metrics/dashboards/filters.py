"""What a dashboard shows: the filters (one policy, optional route, task type and model, a date
range), read from a page's query string with the problems it had, written back as one, and the
choices the filter bar offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from django.utils import timezone

from metrics.rules.periods import FIRST_DATE, LAST_DATE
from routing.models import Policy

DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class DashboardFilters:
    """What a dashboard shows: one policy, optional route/task type/model, dates [start, end]."""

    policy: Policy | None
    start: date
    end: date  # inclusive
    route: str = ""
    task_type: str = ""
    model: str = ""

    @property
    def start_dt(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_dt(self) -> datetime:
        """Exclusive end: midnight after the last day."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def document(self) -> dict[str, Any]:
        """The live policy document ({} when the policy has none yet)."""
        if self.policy is None or self.policy.live_version is None:
            return {}
        return self.policy.live_version.document or {}

    def previous(self) -> DashboardFilters:
        """The same number of days immediately before this range."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    def params(self, **changes: Any) -> dict[str, str]:
        """The query parameters that reproduce these filters (empty values left out)."""
        values = {
            "policy": self.policy.slug if self.policy else "",
            "route": self.route,
            "task_type": self.task_type,
            "model": self.model,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }
        values.update({k: (v.isoformat() if isinstance(v, date) else str(v)) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}

    def querystring(self, **changes: Any) -> str:
        return urlencode(self.params(**changes))

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.slug if self.policy else None,
            "route": self.route or None,
            "task_type": self.task_type or None,
            "model": self.model or None,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


class DashboardSelector(Protocol):
    """A page's data from its filters (a `dashboard_<page>` function). A protocol rather than a
    `Callable`: a `Callable` class attribute is read as a method (bound to the instance) by mypy,
    and the pages and APIs hold theirs as `staticmethod`s."""

    def __call__(self, f: DashboardFilters, /) -> dict[str, Any]: ...


def policy_choices() -> list[Policy]:
    """Every policy with its live version (one query)."""
    return list(Policy.objects.select_related("live_version").order_by("slug"))


def filter_date_parse(value: str | None) -> date | None:
    """A YYYY-MM-DD filter date between FIRST_DATE and LAST_DATE, else None."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day is not None and FIRST_DATE <= day <= LAST_DATE else None


TEXT_FILTERS = ("route", "task_type", "model")
MAX_TEXT_FILTER = 200


def filter_text_parse(value: str | None) -> str | None:
    """A route, task type or model filter, stripped ("" for none); None when it can't name one
    (NUL bytes, which PostgreSQL text refuses, or longer than any stored name)."""
    text = (value or "").strip()
    return None if "\x00" in text or len(text) > MAX_TEXT_FILTER else text


def dashboard_filters_parse(
    params: Mapping[str, str], policies: list[Policy], *, today: date | None = None
) -> tuple[DashboardFilters, list[str]]:
    """Filters from URL query parameters, plus messages about values that were ignored.

    Defaults: the first policy, the last 30 days ending today (UTC). A bad date, an unknown
    policy or a range longer than a year falls back to the default and says so.
    """
    today = today or timezone.now().astimezone(UTC).date()
    problems: list[str] = []
    by_slug = {p.slug: p for p in policies}
    slug = (params.get("policy") or "").strip()
    policy = by_slug.get(slug) if slug else None
    if slug and policy is None:
        problems.append(f"Unknown policy '{slug}': showing {policies[0].slug if policies else 'nothing'}.")
    if policy is None and policies:
        policy = policies[0]
    end = filter_date_parse(params.get("end")) or today
    start = filter_date_parse(params.get("start")) or end - timedelta(days=DEFAULT_DAYS - 1)
    if any(params.get(name) and filter_date_parse(params.get(name)) is None for name in ("start", "end")):
        problems.append(
            f"Dates must look like 2025-01-31, between {FIRST_DATE.year} and {LAST_DATE.year}: using the default range."
        )
    if start > end:
        problems.append("The start date is after the end date: swapped them.")
        start, end = end, start
    if (end - start).days + 1 > MAX_DAYS:
        problems.append(f"Ranges are limited to {MAX_DAYS} days: showing the last {MAX_DAYS}.")
        start = end - timedelta(days=MAX_DAYS - 1)
    texts: dict[str, str] = {}
    for name in TEXT_FILTERS:
        text = filter_text_parse(params.get(name))
        if text is None:
            problems.append(f"That {name.replace('_', ' ')} can't exist: showing every one.")
        texts[name] = text or ""
    return DashboardFilters(policy=policy, start=start, end=end, **texts), problems


def dashboard_filters_strict(params: Mapping[str, str], policies: list[Policy]) -> DashboardFilters:
    """Filters from query parameters where a bad one is an error naming it, not a fallback (the
    JSON API, the CSV exports): NotFound for an unknown policy (or none at all), InvalidInput for
    a bad date or text filter. A range longer than MAX_DAYS still keeps its last MAX_DAYS days."""
    from controlplane.errors import InvalidInput, NotFound

    slug = params.get("policy")
    if slug and slug not in {p.slug for p in policies}:
        raise NotFound(f"No policy '{slug}'.", {"policy": ["not found"]})
    for name in ("start", "end"):
        value = params.get(name)
        if value and filter_date_parse(value) is None:
            raise InvalidInput(
                "Invalid filters.", {name: [f"expected a date, YYYY-MM-DD, from {FIRST_DATE} to {LAST_DATE}"]}
            )
    for name in TEXT_FILTERS:
        if filter_text_parse(params.get(name)) is None:
            raise InvalidInput("Invalid filters.", {name: [f"at most {MAX_TEXT_FILTER} characters, no NUL bytes"]})
    f, _ = dashboard_filters_parse(params, policies)
    if f.policy is None:
        raise NotFound("No policy exists yet.", {"policy": ["not found"]})
    return f


def filter_options(f: DashboardFilters) -> dict[str, list[str]]:
    """Routes, task types and models named by the live document (plus any value already chosen)."""
    doc = f.document
    routes = set((doc.get("routes") or {}).keys())
    task_types = set((doc.get("task_types") or {}).keys())
    models: set[str] = set()
    for route in (doc.get("routes") or {}).values():
        for tier in route.get("tiers") or []:
            models.add(tier.get("model", ""))
            models.update(tier.get("fallbacks") or [])
        for arm in (route.get("split") or {}).get("arms") or []:
            if arm.get("model"):
                models.add(arm["model"])
    for value, bucket in ((f.route, routes), (f.task_type, task_types), (f.model, models)):
        if value:
            bucket.add(value)
    return {"routes": sorted(routes - {""}), "task_types": sorted(task_types - {""}), "models": sorted(models - {""})}
