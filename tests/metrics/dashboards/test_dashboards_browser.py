"""A real headless Chromium opens every dashboard: no console errors, every chart drawn by
plotly.js, and a screenshot of each page under test-output/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from routing import services
from routing.models import PolicyVersion
from tests import factories
from tests.metrics.dashboards.test_dashboards import PAGES, seed_demo_rollups

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def demo_data(transactional_db: Any, make_user: Any) -> Any:
    doc = factories.document(budget={"daily_usd": 4, "monthly_usd": 90, "downgrade_at": 0.9})
    doc["routes"]["general"]["expectations"] = {
        "escalation_bands": [{"min": 0.05, "max": 0.15}],
        "min_pass_rate": 0.9,
        "max_cost_per_request_usd": 0.003,
        "latency_p95_ms": 2500,
    }
    policy = factories.policy("checkout", doc=doc)
    factories.publish(policy, {**doc, "default_route": "extraction"}, comment="send unknown tasks to extraction")
    services.policy_rollback(policy=policy, to_number=1, user=None, comment="extraction got expensive")
    now = datetime.now(UTC)
    for number, days_ago in ((1, 24), (2, 12), (3, 5)):
        PolicyVersion.objects.filter(policy=policy, number=number).update(
            published_at=now - timedelta(days=days_ago, hours=3)
        )
    seed_demo_rollups(policy, days=60)
    make_user("viewer", username="lead")
    return policy


def test_every_dashboard__drawn_without_console_errors(demo_data: Any, browser: Any) -> None:
    page = browser.page
    browser.log_in("lead")
    for name in PAGES:
        path = "/dashboards/" if name == "overview" else f"/dashboards/{name}/"
        response = page.goto(f"{browser.url}{path}?policy=checkout")
        assert response is not None, name
        assert response.status == 200, name
        charts = page.locator(".sb-chart[data-figure]")
        for i in range(charts.count()):
            charts.nth(i).locator(".main-svg").first.wait_for(state="attached", timeout=10_000)
            assert charts.nth(i).locator(".main-svg").count() >= 1, f"{name}: chart {i} not drawn"
        if name not in ("worksheet", "alerts"):
            assert charts.count() >= 1, f"{name}: no charts"
        browser.screenshot(f"dash-{name}")
    # the admin links back to the dashboards
    page.goto(f"{browser.url}/dashboards/alerts/?policy=checkout")
    assert page.locator("text=No alerts").count() >= 1
    assert browser.errors == []
