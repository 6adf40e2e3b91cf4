"""Every reader survives whatever the protocol accepts: Hypothesis draws batches of decision records
inside the protocol's limits (any tier and attempt, an escalation with no lower attempt, every
outcome, unknown models, missing confidence, NUL-free unicode names, arms and attributes, days
across two months), sends them through the client endpoint, folds the rollups, and asks every
reader: each dashboard page and metrics API endpoint (canary and attribution included), the monthly
report as a page, JSON and every CSV, alert evaluation of every policy, and what-if. None may
answer 500 or crash; a record the protocol accepts must never break a reader."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.dashboards.views import PAGES
from metrics.reports.tables import TABLES
from signalbox_client import protocol
from tests import factories
from tests.metrics.conftest import record

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

NOW = datetime.now(UTC)
names = st.one_of(
    st.sampled_from(["extraction", "general", "long_context"]),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=12),
)
records = st.lists(
    st.fixed_dictionaries(
        {
            "route": names,
            "task_type": names,
            "model": st.sampled_from([*factories.CATALOG, "a-model-nobody-priced", "<b>gpt</b>"]),
            "provider": st.sampled_from(["openai", "anthropic", "", "x" * protocol.MAX_PROVIDER]),
            "tier": st.integers(1, protocol.MAX_TIER),
            "attempt": st.integers(1, 6) | st.just(protocol.MAX_ATTEMPT),
            "outcome": st.sampled_from(protocol.OUTCOMES),
            "confidence": st.none() | st.floats(0, 1),
            "latency_ms": st.floats(0, protocol.MAX_LATENCY_MS),
            "tokens_in": st.integers(0, protocol.MAX_TOKENS - 1),
            "tokens_out": st.integers(0, 10_000),
            "cost_usd": st.none() | st.floats(0, protocol.MAX_COST_USD),
            "hours_ago": st.integers(0, 40 * 24),
            "arm": st.none() | st.sampled_from(["control", "canary", "ü"]),
            "team": st.none() | names,
        }
    ),
    min_size=1,
    max_size=40,
)


def as_record(drawn: dict[str, Any]) -> dict[str, Any]:
    fields = dict(drawn)
    ts = NOW - timedelta(hours=fields.pop("hours_ago"), minutes=1)
    arm, team = fields.pop("arm"), fields.pop("team")
    reason: dict[str, Any] = {"route_by": "task_type", "tier_by": "start"}
    if arm is not None:
        reason["split"] = {"key": "request_id", "arm": arm}
    attributes = {"team": team} if team is not None else {}
    if fields["cost_usd"] is None:
        fields.pop("cost_usd")
    return record(
        **fields,
        event_id=str(uuid.uuid4()),
        timestamp=ts.isoformat().replace("+00:00", "Z"),
        reason=reason,
        attributes=attributes,
    )


def readers(slug: str) -> list[str]:
    """Every GET a routing review makes of one policy's data."""
    months = sorted({(NOW - timedelta(days=d)).strftime("%Y-%m") for d in (0, 40)})
    query = f"?policy={slug}"
    urls = [f"/dashboards/{name}/{query}".replace("/overview/", "/") for name, _ in PAGES]
    urls += [f"/dashboards/attribution/{query}&dimension={d}" for d in ("arm", "client", "team")]
    urls += [
        f"/api/v1/metrics/{name}/{query}"
        for name in ("overview", "cost", "escalation", "quality", "latency", "budget", "worksheet", "canary")
    ]
    urls += [f"/api/v1/metrics/attribution/{query}&dimension={d}" for d in ("arm", "client", "team")]
    for month in months:
        urls += [f"/reports/{slug}/{month}/", f"/reports/{slug}/{month}/report.json"]
        urls += [f"/reports/{slug}/{month}/{table}.csv" for table in TABLES]
        urls.append(f"/api/v1/metrics/reports/{slug}/{month}/")
    return urls


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=records)
def test_any_accepted_batch__every_reader_answers_without_a_500(
    batch: list[dict[str, Any]],
    scoped: tuple[Any, str],
    post: Any,
    client: Any,
    make_user: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    policy, secret = scoped
    if not policy.live_version.document.get("dimensions"):
        factories.publish(policy, {**factories.document(), "dimensions": ["team"]})
    with django_capture_on_commit_callbacks(execute=True):
        response = post([as_record(r) for r in batch], secret)
    assert response.status_code == 200, response.content[:300]
    assert response.json()["rejected"] == 0, response.json()["results"][:3]

    client.force_login(make_user("viewer"))
    failures = {}
    for url in readers(policy.slug):
        answer = client.get(url)
        if answer.status_code >= 500:
            failures[url] = answer.status_code
    whatif = client.post(
        "/api/v1/metrics/whatif/",
        {
            "policy": policy.slug,
            "document": factories.document(),
            "start": (NOW - timedelta(days=40)).date().isoformat(),
            "end": NOW.date().isoformat(),
        },
        content_type="application/json",
    )
    if whatif.status_code >= 500:
        failures["whatif"] = whatif.status_code
    out = io.StringIO()
    call_command("alerts_evaluate", stdout=out)  # exits 1 (CommandError) when a policy's evaluation failed

    assert failures == {}
    assert "Evaluated" in out.getvalue()
